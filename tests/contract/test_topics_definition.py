"""deploy/topics.yaml and the topic specs built from it, without a broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.topics import (
    DEFAULT_DEPARTMENTS,
    TopicDefinitionError,
    TopicKind,
    desired_topics,
    load_definitions,
)
from schemas.topics import acknowledgement_topic, dead_letter_topic, registration_topics


def test_yaml_loads_with_local_and_production_profiles() -> None:
    definitions = load_definitions()
    assert set(definitions.profiles) >= {"local", "production"}
    assert definitions.profiles["local"].replication_factor == 1
    assert definitions.profiles["production"].replication_factor == 3
    assert definitions.profiles["production"].min_insync_replicas == 2
    assert set(definitions.kinds) == set(TopicKind)


def test_suppression_is_a_default_department() -> None:
    assert "suppression" in DEFAULT_DEPARTMENTS


def test_every_topic_of_the_contract_is_declared() -> None:
    specs = desired_topics("civreg", ["suppression", "tax"])
    names = {spec.name for spec in specs}
    assert set(registration_topics("civreg").values()) <= names
    assert dead_letter_topic("suppression") in names
    assert dead_letter_topic("tax") in names
    assert acknowledgement_topic() in names
    assert len(names) == len(specs) == 4 + 2 + 1


@pytest.mark.parametrize("profile", ["local", "production"])
def test_registration_topics_keep_history_forever(profile: str) -> None:
    registration = [spec for spec in desired_topics(profile=profile) if spec.kind is TopicKind.REGISTRATION]
    assert len(registration) == 4
    for spec in registration:
        assert spec.config["retention.ms"] == "-1"
        assert spec.config["retention.bytes"] == "-1"
        assert spec.config["cleanup.policy"] == "delete"
        assert spec.partitions == 6


@pytest.mark.parametrize("profile", ["local", "production"])
@pytest.mark.parametrize("replication_factor", [None, 1, 2, 3, 5])
def test_min_insync_never_exceeds_replication(profile: str, replication_factor: int | None) -> None:
    for spec in desired_topics("civreg", ["suppression"], profile, replication_factor):
        min_isr = int(spec.config["min.insync.replicas"])
        assert 1 <= min_isr <= spec.replication_factor
        if replication_factor is not None:
            assert spec.replication_factor == replication_factor


def test_production_profile_replicates_three_ways_with_min_isr_two() -> None:
    for spec in desired_topics(profile="production"):
        assert spec.replication_factor == 3
        assert spec.config["min.insync.replicas"] == "2"


def test_prefix_and_duplicate_departments() -> None:
    specs = desired_topics("t123", ["suppression", "suppression"])
    assert all(spec.name.startswith("t123.") for spec in specs)
    assert [spec.name for spec in specs].count("t123.dead-letter.suppression") == 1


@pytest.mark.parametrize("department", ["", "Tax", "dvla licensing", "../x", "a" * 65])
def test_bad_department_names_are_refused(department: str) -> None:
    with pytest.raises(TopicDefinitionError):
        desired_topics(departments=[department])


def test_unknown_profile_is_refused() -> None:
    with pytest.raises(TopicDefinitionError, match="unknown profile"):
        desired_topics(profile="staging")


def test_illegal_prefix_is_refused() -> None:
    with pytest.raises(TopicDefinitionError, match="legal Kafka topic name"):
        desired_topics(prefix="civ reg")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "topics.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_malformed_yaml_is_a_definition_error(tmp_path: Path) -> None:
    with pytest.raises(TopicDefinitionError):
        load_definitions(_write(tmp_path, "profiles: [unclosed"))
    with pytest.raises(TopicDefinitionError, match="profiles"):
        load_definitions(_write(tmp_path, "topics: {}\n"))


def test_min_isr_belongs_to_the_profile_not_the_topic(tmp_path: Path) -> None:
    text = Path(__file__).resolve().parents[2].joinpath("deploy", "topics.yaml").read_text(encoding="utf-8")
    text = text.replace(
        'cleanup.policy: delete\n      retention.ms: "-1"',
        'cleanup.policy: delete\n      min.insync.replicas: "3"\n      retention.ms: "-1"',
        1,
    )
    with pytest.raises(TopicDefinitionError, match=r"min\.insync\.replicas"):
        load_definitions(_write(tmp_path, text))


def test_zero_partitions_is_refused(tmp_path: Path) -> None:
    text = Path(__file__).resolve().parents[2].joinpath("deploy", "topics.yaml").read_text(encoding="utf-8")
    with pytest.raises(TopicDefinitionError, match="partitions"):
        load_definitions(_write(tmp_path, text.replace("partitions: 6", "partitions: 0", 1)))
