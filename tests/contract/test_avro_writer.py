"""The compiled Avro writer writes exactly fastavro's bytes: for every event type, for edge values, and for a value
it does not expect (which fastavro then writes)."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producers.simulation import simulate_registrations
from schemas.avro_writer import compile_writer
from schemas.catalogue import EVENT_TYPES, event_schema
from schemas.codec import to_avro
from tests.support.factories import all_event_examples

EVENTS = list(simulate_registrations(3000, 7)) + all_event_examples()
WRITERS = {t: compile_writer(event_schema(t).parsed) for t in EVENT_TYPES}


def fastavro_bytes(schema: dict[str, Any], record: Any) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(schema, named_schemas={}), record)
    return buffer.getvalue()


def test_every_event_type_is_met() -> None:
    assert {e.event_type for e in EVENTS} == set(EVENT_TYPES)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_same_bytes_as_fastavro_for_every_simulated_event(event_type: str) -> None:
    schema = event_schema(event_type).parsed
    for event in (e for e in EVENTS if e.event_type == event_type):
        record = to_avro(event)
        assert WRITERS[event_type](record) == fastavro_bytes(schema, record)


def test_a_union_of_records_without_tuple_notation_is_written_by_fastavro() -> None:
    correction = next(e for e in EVENTS if e.event_type == "RegistrationCorrected")
    record = correction.model_dump()  # ``corrected`` as a bare dict: fastavro chooses the branch, as it always did
    assert isinstance(record["corrected"], dict)
    schema = event_schema("RegistrationCorrected").parsed
    assert WRITERS["RegistrationCorrected"](record) == fastavro_bytes(schema, record)


EDGE_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "test.Edge",
    "fields": [
        {"name": "number", "type": "long"},
        {"name": "small", "type": "int"},
        {"name": "text", "type": "string"},
        {"name": "flag", "type": "boolean"},
        {"name": "maybe", "type": ["null", "string"], "default": None},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "items", "type": {"type": "array", "items": "string"}},
        {"name": "colour", "type": {"type": "enum", "name": "test.Colour", "symbols": ["RED", "GREEN"]}},
        {"name": "absent", "type": ["null", "long"]},
    ],
}
EDGE = compile_writer(EDGE_SCHEMA)


@settings(max_examples=300, deadline=None)
@given(
    number=st.integers(-(2**63), 2**63 - 1),
    small=st.integers(-(2**31), 2**31 - 1),
    text=st.text(max_size=300),
    flag=st.booleans(),
    maybe=st.none() | st.text(max_size=80),
    day=st.dates(min_value=date(1, 1, 1)),
    at=st.datetimes(min_value=datetime(1800, 1, 1), max_value=datetime(2400, 1, 1), timezones=st.just(UTC)),
    uuid=st.uuids(),
    items=st.lists(st.text(max_size=20), max_size=70),
    colour=st.sampled_from(["RED", "GREEN"]),
)
def test_edge_values_give_fastavro_bytes(
    number: int,
    small: int,
    text: str,
    flag: bool,
    maybe: str | None,
    day: date,
    at: datetime,
    uuid: UUID,
    items: list[str],
    colour: str,
) -> None:
    record = {
        "number": number,
        "small": small,
        "text": text,
        "flag": flag,
        "maybe": maybe,
        "day": day,
        "at": at,
        "id": uuid,
        "items": items,
        "colour": colour,
    }
    assert EDGE(record) == fastavro_bytes(EDGE_SCHEMA, record)


def test_a_missing_field_without_default_or_null_is_refused() -> None:
    with pytest.raises(KeyError):
        EDGE({"small": 1})
