"""Reading a department's projection with its writer schema alone plus the reader's defaults
(``schemas.avro_subset``) gives exactly the record fastavro's schema resolution gives, for every department and
event type; a writer that is not a plain field subset is left to resolution."""

from __future__ import annotations

import copy
import io
from typing import Any

import fastavro
import pytest

from consumers.departments import DEPARTMENTS
from consumers.runtime.agreements import agreement_for
from consumers.runtime.projection import projection
from producers.simulation import simulate_registrations
from schemas.avro_subset import subset_filler
from schemas.catalogue import EVENT_TYPES, event_schema
from schemas.codec import Codec
from schemas.models import EVENT_MODELS
from tests.support.factories import all_event_examples, projected_events

EVENTS = list(simulate_registrations(3000, 11)) + all_event_examples()


def _parse(schema: dict[str, Any]) -> dict[str, Any]:
    parsed = fastavro.parse_schema(schema)
    assert isinstance(parsed, dict)
    return parsed


def _read(body: bytes, writer: dict[str, Any], reader: dict[str, Any] | None) -> Any:
    return fastavro.schemaless_reader(io.BytesIO(body), writer, reader)


@pytest.mark.parametrize("name", sorted(DEPARTMENTS))
def test_a_projection_read_without_resolution_equals_the_resolved_record(name: str) -> None:
    agreement = agreement_for(name)
    compared: set[str] = set()
    for event in projected_events(agreement, EVENTS):
        projected = projection(agreement, event.event_type)
        reader = event_schema(event.event_type).parsed
        filler = subset_filler(projected.parsed, reader)
        body, _ = projected.encode(event)
        if filler is None:
            # Only a correction's union of four details records is left to resolution: which record a decoded
            # dict came from is not known after a plain read.
            assert event.event_type == "RegistrationCorrected", f"{name} {event.event_type}"
            continue
        resolved = _read(body, projected.parsed, reader)
        filled = filler(_read(body, projected.parsed, None))
        assert filled == resolved, event.event_type
        model = EVENT_MODELS[event.event_type]
        assert model.model_validate(filled) == model.model_validate(resolved)
        compared.add(event.event_type)
    assert compared == set(agreement.event_types) & set(EVENT_TYPES) - {"RegistrationCorrected"}


def test_an_older_writer_without_an_optional_field_gets_the_readers_default() -> None:
    """The survivor of a death was added with ``"default": null``: an old writer's events read as without one."""
    reader = event_schema("DeathRegistered").parsed
    old = copy.deepcopy(event_schema("DeathRegistered").schema)
    details = next(field for field in old["fields"] if field["name"] == "death")["type"]
    details["fields"] = [field for field in details["fields"] if field["name"] != "surviving_partner"]
    writer = _parse(old)
    filler = subset_filler(writer, reader)
    assert filler is not None
    event = next(e for e in EVENTS if e.event_type == "DeathRegistered")
    record = Codec().decode_record(Codec().encode(event))
    record["death"].pop("surviving_partner")
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, writer, record)
    body = buffer.getvalue()
    assert filler(_read(body, writer, None)) == _read(body, writer, reader)
    assert filler(_read(body, writer, None))["death"]["surviving_partner"] is None


def _changed(change: str) -> dict[str, Any]:
    """The DeathRegistered schema with one change that Avro resolution, not a plain read, must handle."""
    schema = copy.deepcopy(copy.deepcopy(event_schema("DeathRegistered").schema))
    entry = next(field for field in schema["fields"] if field["name"] == "entry")["type"]
    if change == "extra-field":  # a field the reader lacks: resolution drops it, a plain read would keep it
        entry["fields"].append({"name": "kept_by_writer_only", "type": "string", "default": ""})
    elif change == "enum":  # another symbol list: resolution maps symbols by name
        register = next(field for field in entry["fields"] if field["name"] == "register")["type"]
        register["symbols"] = [*register["symbols"], "ADOPTION"]
    elif change == "alias":
        entry["fields"][0] = {**entry["fields"][0], "name": "district_old_name"}
    return {"writer": schema, "reader": copy.deepcopy(event_schema("DeathRegistered").schema)}


@pytest.mark.parametrize("change", ["extra-field", "enum", "alias"])
def test_a_writer_that_is_not_a_plain_subset_is_left_to_resolution(change: str) -> None:
    pair = _changed(change)
    if change == "alias":  # the reader knows the writer's field under another name
        first = pair["reader"]["fields"][1]["type"]["fields"][0]
        first["aliases"] = ["district_old_name"]
    assert subset_filler(_parse(pair["writer"]), _parse(pair["reader"])) is None


def test_a_type_promotion_is_left_to_resolution() -> None:
    reader = copy.deepcopy(event_schema("DeathRegistered").schema)
    writer = copy.deepcopy(reader)
    version = next(field for field in writer["fields"] if field["name"] == "version")
    assert version["type"] == "int"
    reader_version = next(field for field in reader["fields"] if field["name"] == "version")
    reader_version["type"] = "long"
    assert subset_filler(_parse(writer), _parse(reader)) is None
