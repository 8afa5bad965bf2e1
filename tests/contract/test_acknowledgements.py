"""The acknowledgement contract: ActionTaken.avsc and its model agree, the codec round-trips in the Confluent wire
format, it stays out of the registration event catalogue, and its partitioning matches Kafka's producers."""

from __future__ import annotations

import io
import struct
import uuid
from datetime import UTC, datetime

import fastavro
import pytest

from consumers.operations.acknowledgements import EventTrace, _murmur2, partition_for_key
from consumers.runtime import Outcome
from schemas.acknowledgements import (
    LOCAL_SCHEMA_ID,
    OUTCOMES,
    AcknowledgementCodec,
    ActionTaken,
    action_taken_schema,
)
from schemas.catalogue import EVENT_TYPES
from schemas.codec import Codec, DecodeError, LocalSchemaCatalogue
from schemas.models import EVENT_MODELS
from schemas.topics import Register


def make_ack(**overrides: object) -> ActionTaken:
    fields: dict[str, object] = {
        "event_id": uuid.UUID("6f1c1d0e-8d5b-4c39-9a55-1b0c2f4e7a10"),
        "department": "tax",
        "event_type": "DeathRegistered",
        "register": Register.DEATH,
        "entry_version": 1,
        "outcome": "applied",
        "note": "taxpayer marked deceased",
        "reviewed": False,
        "decided_at": datetime(2024, 3, 14, 9, 30, 0, 123456, tzinfo=UTC),
        "acknowledged_at": datetime(2024, 3, 14, 9, 30, 1, tzinfo=UTC),
    }
    fields.update(overrides)
    return ActionTaken.model_validate(fields)


def test_the_schema_and_the_model_have_the_same_fields_in_order() -> None:
    schema = action_taken_schema().schema
    assert [field["name"] for field in schema["fields"]] == list(ActionTaken.model_fields)
    register = next(field for field in schema["fields"] if field["name"] == "register")
    assert register["type"]["symbols"] == [r.value for r in Register], "the shared Register type is inlined"


def test_outcome_symbols_are_the_runtimes_outcomes() -> None:
    schema = action_taken_schema().schema
    outcome = next(field for field in schema["fields"] if field["name"] == "outcome")
    assert tuple(outcome["type"]["symbols"]) == OUTCOMES == tuple(o.value for o in Outcome)


def test_acknowledgements_are_not_registration_events() -> None:
    assert "ActionTaken" not in EVENT_TYPES and "ActionTaken" not in EVENT_MODELS
    assert LOCAL_SCHEMA_ID not in {LocalSchemaCatalogue().schema_id(t) for t in EVENT_TYPES}


def test_round_trip_in_the_confluent_wire_format() -> None:
    ack = make_ack(reviewed=True, outcome="no_matching_record", note="reviewed: reviewer: no record matches")
    data = AcknowledgementCodec().encode(ack)
    magic, schema_id = struct.unpack_from(">BI", data)
    assert (magic, schema_id) == (0, LOCAL_SCHEMA_ID)
    body = fastavro.schemaless_reader(io.BytesIO(data[5:]), action_taken_schema().parsed)
    assert isinstance(body, dict) and body["department"] == "tax"
    assert AcknowledgementCodec().decode(data) == ack


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x00\x00", "truncated"),
        (b"\x01\x00\x00\x00\x64xx", "bad-magic-byte"),
        (b"\x00\x00\x00\x00\x02xx", "unknown-schema-id"),
        (b"\x00\x00\x00\x00\x64\xff", "avro-body-invalid"),
    ],
)
def test_unreadable_acknowledgements_say_why(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as raised:
        AcknowledgementCodec().decode(data)
    assert raised.value.reason == reason


def test_a_registration_event_is_never_read_as_an_acknowledgement() -> None:
    from tests.support.factories import make_death

    with pytest.raises(DecodeError) as raised:
        AcknowledgementCodec().decode(Codec().encode(make_death()))
    assert raised.value.reason == "unknown-schema-id"


def test_an_unknown_outcome_is_refused() -> None:
    with pytest.raises(ValueError, match="outcome"):
        make_ack(outcome="ignored")


# Kafka's murmur2 test vectors (clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java).
@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        (b"abc", 479470107),
    ],
)
def test_murmur2_is_kafkas(key: bytes, expected: int) -> None:
    value = _murmur2(key)
    assert (value - 2**32 if value >= 2**31 else value) == expected


def test_partitions_spread_and_stay_in_range() -> None:
    partitions = {partition_for_key(str(uuid.uuid4()).encode(), 6) for _ in range(200)}
    assert partitions == set(range(6))


def test_a_trace_keeps_each_departments_latest_decision() -> None:
    trace = EventTrace("6f1c1d0e-8d5b-4c39-9a55-1b0c2f4e7a10")
    queued = make_ack(outcome="needs_review", decided_at=datetime(2024, 3, 14, 9, 0, tzinfo=UTC))
    decided = make_ack(outcome="applied", reviewed=True, decided_at=datetime(2024, 3, 15, 9, 0, tzinfo=UTC))
    for ack in (queued, decided, queued):  # a re-published older acknowledgement does not win
        trace.add(ack)
    assert trace.departments["tax"].latest == decided
    assert trace.departments["tax"].acknowledgements == 3
    trace.expected = ("pensions", "tax")
    assert trace.awaiting == ("pensions",)
