"""The local Kafka runner against a real broker of its own (not the session broker from conftest).

It owns its broker because it tests start/stop themselves: a stopped broker must leave no JVM behind.
Every test calls ``start()`` first (a no-op when running), so the tests do not depend on their order.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

from civreg.kafka_config import admin_config, consumer_config, producer_config
from civreg.settings import Settings
from deploy.local.jvm import free_port
from deploy.local.kafka import LocalKafka, LocalKafkaError, probe_cluster
from deploy.topics import TopicAction, apply_topics
from schemas.topics import Register, registration_topic

REPO = Path(__file__).resolve().parents[2]


def _settings(home: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "home": home,
        "cache_dir": REPO / ".cache",
        "local_port": free_port(),
        "local_controller_port": free_port(),
        "bootstrap_servers": None,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def _pid_gone(pid: int) -> bool:
    if sys.platform.startswith("linux"):
        stat = Path(f"/proc/{pid}/stat")
        return not stat.exists() or stat.read_text().rsplit(")", 1)[-1].split()[0] == "Z"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    kafka = LocalKafka(_settings(tmp_path_factory.mktemp("local-kafka")))
    kafka.ensure_jars()
    try:
        yield kafka
    finally:
        kafka.stop()


# ---- no broker needed -----------------------------------------------------------------------------------


def test_server_properties_use_the_given_ports_and_dirs(tmp_path: Path) -> None:
    settings = _settings(tmp_path, local_port=29092, local_controller_port=29093)
    props = LocalKafka(settings).server_properties()
    assert "controller.quorum.voters=1@127.0.0.1:29093" in props
    assert "listeners=PLAINTEXT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093" in props
    assert f"log.dirs={tmp_path.resolve() / 'kafka' / 'data'}" in props
    assert "offsets.topic.replication.factor=1" in props
    assert "group.initial.rebalance.delay.ms=0" in props


def test_stale_pid_file_is_detected_and_removed(tmp_path: Path) -> None:
    kafka = LocalKafka(_settings(tmp_path))
    kafka.pid_path.parent.mkdir(parents=True)
    kafka.pid_path.write_text(f"{os.getpid()}\n")  # alive, but pytest is not our broker
    status = kafka.status()
    assert not status.running
    assert status.pid is None
    assert not kafka.pid_path.exists()
    assert kafka.stop() is False


def test_version_is_read_from_an_existing_installation(tmp_path: Path) -> None:
    libs = tmp_path / "kafka" / "libs"
    libs.mkdir(parents=True)
    for name in ("kafka_2.13-3.9.1-test.jar", "kafka_2.13-3.9.1.jar", "kafka-clients-3.9.1.jar"):
        (libs / name).touch()
    kafka = LocalKafka(_settings(tmp_path / "home", kafka_home=tmp_path / "kafka"))
    assert kafka.libs_dir == libs.resolve()
    assert kafka.jars_present()
    assert kafka.version == "3.9.1"


def test_missing_java_names_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(LocalKafkaError, match="Java 17"):
        LocalKafka(_settings(tmp_path, cache_dir=tmp_path / "cache")).ensure_jars()


def test_missing_maven_names_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    java = LocalKafka(_settings(tmp_path)).java_executable()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "java").symlink_to(java)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(LocalKafkaError, match="apt-get install maven"):
        LocalKafka(_settings(tmp_path, cache_dir=tmp_path / "cache")).ensure_jars()


# ---- real broker ----------------------------------------------------------------------------------------


@pytest.mark.kafka
def test_start_is_idempotent_and_answers(broker: LocalKafka) -> None:
    started = time.monotonic()
    status = broker.start(timeout=120)
    assert status.running and status.pid is not None
    assert status.version == broker.settings.kafka_version
    assert broker.pid_path.read_text().strip() == str(status.pid)
    assert time.monotonic() - started < 120
    again = broker.start(timeout=120)
    assert again.pid == status.pid
    probe = probe_cluster(broker.settings)
    assert probe.reachable and probe.broker_count == 1


@pytest.mark.kafka
def test_produce_and_consume_one_message(broker: LocalKafka) -> None:
    broker.start(timeout=120)
    settings = broker.settings.model_copy(update={"topic_prefix": f"t{uuid.uuid4().hex[:10]}"})
    apply_topics(settings, ["suppression"])
    topic = registration_topic(Register.DEATH, settings.topic_prefix)

    producer = Producer(producer_config(settings))
    delivered: list[str] = []
    producer.produce(topic, key=b"entry-1", value=b"hello", on_delivery=lambda err, msg: delivered.append(str(err)))
    assert producer.flush(30) == 0
    assert delivered == ["None"]

    consumer = Consumer(consumer_config(settings, group_id=f"g-{uuid.uuid4().hex[:8]}"))
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 60
        message = None
        while message is None and time.monotonic() < deadline:
            candidate = consumer.poll(1.0)
            if candidate is not None and candidate.error() is None:
                message = candidate
        assert message is not None, "no message consumed within 60s"
        assert message.key() == b"entry-1"
        assert message.value() == b"hello"
    finally:
        consumer.close()


@pytest.mark.kafka
def test_apply_topics_is_idempotent_and_repairs_drift(broker: LocalKafka) -> None:
    broker.start(timeout=120)
    settings = broker.settings.model_copy(update={"topic_prefix": f"t{uuid.uuid4().hex[:10]}"})

    first = apply_topics(settings, ["suppression", "tax"])
    # 4 registration topics; per department its dead-letter and own topic; acknowledgements, ledger, router DLQ
    assert len(first.created) == 4 + 2 * 2 + 3
    second = apply_topics(settings, ["suppression", "tax"])
    assert not second.changed
    assert all(change.actions == (TopicAction.UNCHANGED,) for change in second.changes)

    births = registration_topic(Register.BIRTH, settings.topic_prefix)
    admin = AdminClient(admin_config(settings))
    drift = ConfigResource(
        ResourceType.TOPIC,
        births,
        incremental_configs=[ConfigEntry("retention.ms", "60000", incremental_operation=AlterConfigOpType.SET)],
    )
    for future in admin.incremental_alter_configs([drift]).values():
        future.result()
    # The change goes through the controller; wait until the broker's metadata shows it.
    deadline = time.monotonic() + 15
    while _retention(admin, births) != "60000" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _retention(admin, births) == "60000"

    repaired = apply_topics(settings, ["suppression", "tax", "pensions"])
    by_topic = {change.topic: change for change in repaired.changes}
    assert TopicAction.CONFIG_UPDATED in by_topic[births].actions
    assert by_topic[f"{settings.topic_prefix}.dead-letter.pensions"].actions == (TopicAction.CREATED,)
    deadline = time.monotonic() + 15
    while _retention(admin, births) != "-1" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _retention(admin, births) == "-1"


def _retention(admin: AdminClient, topic: str) -> str:
    futures = admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)])
    entries = next(iter(futures.values())).result()
    value: str = entries["retention.ms"].value
    return value


@pytest.mark.kafka
def test_early_death_quotes_the_broker_log(tmp_path: Path) -> None:
    kafka = LocalKafka(_settings(tmp_path))
    kafka.ensure_jars()
    kafka.data_dir.mkdir(parents=True)
    # A log dir formatted for another node: the broker refuses it and exits.
    (kafka.data_dir / "meta.properties").write_text(
        "version=1\ncluster.id=AAAAAAAAAAAAAAAAAAAAAA\nnode.id=2\ndirectory.id=BBBBBBBBBBBBBBBBBBBBBB\n"
    )
    with pytest.raises(LocalKafkaError, match="exited with code") as excinfo:
        kafka.start(timeout=60)
    assert "node" in str(excinfo.value).lower()
    assert not kafka.pid_path.exists()


@pytest.mark.kafka
def test_stop_leaves_no_jvm(broker: LocalKafka) -> None:
    status = broker.start(timeout=120)
    assert status.pid is not None
    started = time.monotonic()
    assert broker.stop() is True
    assert time.monotonic() - started < 35
    assert _pid_gone(status.pid)
    assert not broker.pid_path.exists()
    assert not broker.status().running
    assert broker.stop() is False
    assert not probe_cluster(broker.settings, timeout=1.0).reachable
