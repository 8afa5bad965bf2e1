"""The compatibility checker (pure): each Avro resolution rule, each level, messages naming field and rule; the
policy file; subject names."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from deploy.schema_policy import POLICY_PATH, CompatibilityPolicy, PolicyError, load_policy
from schemas.catalogue import AVRO_DIR, EVENT_TYPES, event_schema, named_types
from schemas.compatibility import AvroSchema, CompatibilityLevel, check_evolution, incompatibilities
from schemas.registry import contract_subjects, redact_url, subject_name

FULL_T = CompatibilityLevel.FULL_TRANSITIVE


def death_v1() -> dict[str, Any]:
    return json.loads(event_schema("DeathRegistered").schema_str)


def details(schema: dict[str, Any]) -> dict[str, Any]:
    """The DeathDetails record inside a DeathRegistered schema."""
    return next(field for field in schema["fields"] if field["name"] == "death")["type"]


def field_of(record: dict[str, Any], name: str) -> dict[str, Any]:
    return next(field for field in record["fields"] if field["name"] == name)


def evolve(new: dict[str, Any], *old: dict[str, Any], level: CompatibilityLevel = FULL_T) -> list[str]:
    previous = [(f"version {n}", AvroSchema(schema)) for n, schema in enumerate(old, start=1)]
    return [str(v) for v in check_evolution(AvroSchema(new), previous, level)]


def record(name: str, *fields: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "record", "name": name, "namespace": "t", "fields": list(fields), **extra}


# --- the contract's own schemas -------------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_event_schema_is_fully_compatible_with_itself(event_type: str) -> None:
    schema = AvroSchema(event_schema(event_type).schema)
    assert check_evolution(schema, [("itself", schema)], FULL_T) == []


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_files_with_shared_types_by_reference_read_like_the_inlined_schema(event_type: str) -> None:
    raw = json.loads((AVRO_DIR / "events" / f"{event_type}.avsc").read_text(encoding="utf-8"))
    by_reference = AvroSchema(raw, named_types())
    inlined = AvroSchema(event_schema(event_type).schema)
    assert incompatibilities(by_reference, inlined) == []
    assert incompatibilities(inlined, by_reference) == []
    assert by_reference.full_name == event_schema(event_type).full_name


# --- rule by rule ---------------------------------------------------------------------------------------------


def test_an_optional_field_with_a_default_is_fully_compatible() -> None:
    v2 = death_v1()
    details(v2)["fields"].append({"name": "informant", "type": ["null", "string"], "default": None})
    assert evolve(v2, death_v1()) == []


def test_a_field_added_without_a_default_breaks_backward_naming_the_field() -> None:
    v2 = death_v1()
    details(v2)["fields"].append({"name": "informant", "type": "string"})
    problems = evolve(v2, death_v1())
    assert len(problems) == 1
    assert "(backward: the new schema cannot read data written with version 1)" in problems[0]
    assert "field 'death.informant'" in problems[0]
    assert "[field-missing-without-default]" in problems[0]


def test_a_field_removed_without_a_default_breaks_forward_naming_the_field() -> None:
    v2 = death_v1()
    v2["fields"] = [field for field in v2["fields"] if field["name"] != "register_office"]
    problems = evolve(v2, death_v1())
    assert problems == [
        "FULL_TRANSITIVE broken (forward: consumers on version 1 cannot read data written with the new schema): "
        "field 'register_office': version 1 requires it (no default) but the new schema does not write it "
        "[field-missing-without-default]"
    ]


def test_a_field_removed_that_had_a_default_is_fully_compatible() -> None:
    v1 = death_v1()
    details(v1)["fields"].append({"name": "informant", "type": ["null", "string"], "default": None})
    assert evolve(death_v1(), v1) == []


def test_a_changed_type_breaks_both_directions_naming_the_nested_field() -> None:
    v2 = death_v1()
    field_of(details(v2), "date_of_death")["type"] = "string"
    problems = evolve(v2, death_v1())
    assert len(problems) == 2
    assert all("field 'death.date_of_death'" in p and "[type-changed]" in p for p in problems)
    assert "version 1 writes int (date), which the new schema's string cannot read" in problems[0]


def test_promotion_reads_one_way_only() -> None:
    old = record("R", {"name": "n", "type": "int"})
    new = record("R", {"name": "n", "type": "long"})
    assert evolve(new, old, level=CompatibilityLevel.BACKWARD) == []
    forward = evolve(new, old, level=CompatibilityLevel.FORWARD)
    assert len(forward) == 1 and "field 'n'" in forward[0] and "writes long" in forward[0]


def test_an_added_enum_symbol_breaks_forward_unless_the_reader_has_a_default() -> None:
    old = record("R", {"name": "sex", "type": {"type": "enum", "name": "Sex", "symbols": ["F", "M"]}})
    new = copy.deepcopy(old)
    field_of(new, "sex")["type"]["symbols"].append("X")
    assert evolve(new, old, level=CompatibilityLevel.BACKWARD) == []
    forward = evolve(new, old, level=CompatibilityLevel.FORWARD)
    assert len(forward) == 1 and "symbol(s) X" in forward[0] and "[enum-symbol-unknown]" in forward[0]
    field_of(old, "sex")["type"]["default"] = "F"
    assert evolve(new, old) == []


def test_a_union_losing_a_branch_breaks_forward_and_a_narrowed_union_backward() -> None:
    old = record("R", {"name": "v", "type": ["null", "string", "int"]})
    new = record("R", {"name": "v", "type": ["null", "string"]})
    problems = evolve(new, old)
    assert any("(backward" in p and "[union-branch-missing]" in p and "may write int" in p for p in problems)
    assert all("field 'v'" in p for p in problems)
    assert evolve(old, new, level=CompatibilityLevel.BACKWARD) == []


def test_a_renamed_record_needs_an_alias() -> None:
    old = record("Old", {"name": "a", "type": "string"})
    renamed = record("New", {"name": "a", "type": "string"})
    assert any("[type-changed]" in p for p in evolve(renamed, old, level=CompatibilityLevel.BACKWARD))
    aliased = record("New", {"name": "a", "type": "string"}, aliases=["t.Old"])
    assert evolve(aliased, old, level=CompatibilityLevel.BACKWARD) == []


def test_a_renamed_field_reads_through_its_alias() -> None:
    old = record("R", {"name": "surname", "type": "string"})
    new = record("R", {"name": "family_name", "type": "string", "aliases": ["surname"]})
    assert evolve(new, old, level=CompatibilityLevel.BACKWARD) == []


def test_fixed_size_and_array_items_are_checked() -> None:
    old = record(
        "R",
        {"name": "h", "type": {"type": "fixed", "name": "H", "size": 16}},
        {"name": "lines", "type": {"type": "array", "items": "string"}},
    )
    new = record(
        "R",
        {"name": "h", "type": {"type": "fixed", "name": "H", "size": 32}},
        {"name": "lines", "type": {"type": "array", "items": "int"}},
    )
    problems = evolve(new, old, level=CompatibilityLevel.BACKWARD)
    assert any("field 'h'" in p and "[fixed-size-changed]" in p for p in problems)
    assert any("field 'lines[]'" in p and "[type-changed]" in p for p in problems)


def test_recursive_types_terminate() -> None:
    node = record("Node", {"name": "next", "type": ["null", "Node"], "default": None})
    assert evolve(node, node) == []


# --- levels -----------------------------------------------------------------------------------------------------


def test_transitive_levels_check_every_earlier_version_and_plain_ones_only_the_latest() -> None:
    v1 = record("R", {"name": "a", "type": "string"})
    v2 = record("R", {"name": "a", "type": "string"}, {"name": "b", "type": "string", "default": ""})
    v3 = record("R", {"name": "a", "type": "string"}, {"name": "b", "type": "string"})  # default dropped
    assert evolve(v3, v1, v2, level=CompatibilityLevel.FULL) == []
    problems = evolve(v3, v1, v2, level=CompatibilityLevel.FULL_TRANSITIVE)
    assert problems and all("version 1" in p and "field 'b'" in p for p in problems)


def test_none_allows_anything_and_nothing_before_is_a_new_subject() -> None:
    v1 = record("R", {"name": "a", "type": "string"})
    v2 = record("R", {"name": "a", "type": "int"})
    assert evolve(v2, v1, level=CompatibilityLevel.NONE) == []
    assert evolve(v2, level=FULL_T) == []


@pytest.mark.parametrize(
    ("level", "backward", "forward", "transitive"),
    [
        (CompatibilityLevel.BACKWARD, True, False, False),
        (CompatibilityLevel.FORWARD_TRANSITIVE, False, True, True),
        (CompatibilityLevel.FULL, True, True, False),
        (CompatibilityLevel.NONE, False, False, False),
    ],
)
def test_level_directions(level: CompatibilityLevel, backward: bool, forward: bool, transitive: bool) -> None:
    assert (level.backward, level.forward, level.transitive) == (backward, forward, transitive)


# --- policy file -----------------------------------------------------------------------------------------------


def test_the_shipped_policy_is_full_transitive_for_every_subject() -> None:
    policy = load_policy(POLICY_PATH)
    assert policy.default is FULL_T
    assert {policy.level_for(subject.key) for subject in contract_subjects("civreg")} == {FULL_T}


def test_policy_overrides_exact_keys_first_then_patterns(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "default: full_transitive\n"
        "subjects:\n"
        "  'registrations.*-uk.gov.civreg.RegistrationVoided': BACKWARD_TRANSITIVE\n"
        "  registrations.deaths-uk.gov.civreg.RegistrationVoided: FULL\n",
        encoding="utf-8",
    )
    policy = load_policy(path)
    assert policy.level_for("registrations.deaths-uk.gov.civreg.RegistrationVoided") is CompatibilityLevel.FULL
    assert policy.level_for("registrations.births-uk.gov.civreg.RegistrationVoided") is (
        CompatibilityLevel.BACKWARD_TRANSITIVE
    )
    assert policy.level_for("registrations.births-uk.gov.civreg.BirthRegistered") is FULL_T
    subject = "env7.registrations.births-uk.gov.civreg.RegistrationVoided"
    assert policy.level_for_subject(subject, "env7") is CompatibilityLevel.BACKWARD_TRANSITIVE


def test_a_bad_level_in_the_policy_names_its_key(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("subjects:\n  registrations.deaths-x: SIDEWAYS\n", encoding="utf-8")
    with pytest.raises(PolicyError, match=r"subjects\.registrations\.deaths-x: 'SIDEWAYS' is not a compatibility"):
        load_policy(path)
    assert load_policy(tmp_path / "missing.yaml") == CompatibilityPolicy()


# --- subjects ---------------------------------------------------------------------------------------------------


def test_subjects_are_topic_record_names_and_corrections_travel_with_every_register() -> None:
    subjects = contract_subjects("env7")
    assert subject_name("env7.registrations.deaths", "uk.gov.civreg.DeathRegistered") in {s.subject for s in subjects}
    deaths = sorted(s.event_type for s in subjects if s.topic == "env7.registrations.deaths")
    assert deaths == ["DeathRegistered", "RegistrationCorrected", "RegistrationVoided"]
    assert len(subjects) == 13
    assert subjects[-1].subject == "env7.acknowledgements-uk.gov.civreg.acknowledgements.ActionTaken"
    assert all(s.subject == f"env7.{s.key}" for s in subjects)


def test_urls_lose_their_credentials_in_messages() -> None:
    assert redact_url("https://user:secret@registry.example:8081/apis") == "https://registry.example:8081/apis"
    assert redact_url("http://127.0.0.1:8081") == "http://127.0.0.1:8081"
