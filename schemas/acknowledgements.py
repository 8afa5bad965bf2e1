"""Acknowledgements: what each department did with each registration event, published for audit and tracing.

Kept apart from the registration events on purpose: ``schemas.catalogue.EVENT_TYPES`` and ``EVENT_MODELS`` list
what register offices publish, and code iterating them (the codec, contract tests, simulators) must not meet an
acknowledgement. The wire format is the same (Confluent: magic byte 0, 4-byte schema id, Avro body).

Schema ids: the ``resolver`` of ``AcknowledgementCodec`` (a ``schemas.codec.SchemaResolver``) gives the id to
write and the schema to read with. With a registry (``civreg.codec_from_settings.open_acknowledgement_codec``) it is
``schemas.registry.RegistryAcknowledgementSchema``: ActionTaken is registered under
``subject_name(acknowledgement_topic(prefix), action_taken_schema().full_name)`` like every event schema
(``civreg schemas register`` lists it), so readers outside the bus decode acknowledgements from the registry.
Without one, ``LOCAL_SCHEMA_ID``.
"""

from __future__ import annotations

import io
import json
import struct
import warnings
from functools import cache
from typing import Any, Literal, get_args
from uuid import UUID

import fastavro
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from schemas.catalogue import AVRO_DIR, EventSchema, standalone_schema
from schemas.codec import MAGIC_BYTE, DecodeError, SchemaResolver, UnknownSchemaId, describe_validation_error
from schemas.topics import Register

__all__ = [
    "ACTION_TAKEN",
    "LOCAL_SCHEMA_ID",
    "OUTCOMES",
    "AckOutcome",
    "AcknowledgementCodec",
    "ActionTaken",
    "LocalAcknowledgementSchema",
    "action_taken_schema",
]

ACTION_TAKEN = "ActionTaken"
LOCAL_SCHEMA_ID = 100
"""Outside the local event ids (1..6), so a registration topic message is never mistaken for one."""

_HEADER = struct.Struct(">BI")
AckOutcome = Literal["applied", "no_matching_record", "needs_review", "dead_lettered"]
"""The symbols of the Avro enum; the same values as ``consumers.runtime.Outcome`` (a test keeps them equal)."""
OUTCOMES: tuple[str, ...] = get_args(AckOutcome)


@cache
def action_taken_schema() -> EventSchema:
    """The standalone ActionTaken schema (shared types such as Register inlined), as a registry stores it."""
    raw = json.loads((AVRO_DIR / "acknowledgements" / f"{ACTION_TAKEN}.avsc").read_text(encoding="utf-8"))
    schema = standalone_schema(raw)
    parsed = fastavro.parse_schema(schema)
    assert isinstance(parsed, dict)
    return EventSchema(ACTION_TAKEN, f"{raw['namespace']}.{raw['name']}", schema, parsed)


# "register" is the Avro field name; it shadows ABCMeta.register, which models never use (as in schemas.models).
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message='Field name "register"', category=UserWarning)

    class ActionTaken(BaseModel):
        """One department's outcome for one event; mirrors ActionTaken.avsc field for field."""

        model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

        event_id: UUID
        department: str = Field(min_length=1, max_length=64)
        event_type: str = Field(min_length=1, max_length=64)
        register: Register = Field()
        entry_version: int = Field(ge=1, le=2_147_483_647)
        outcome: AckOutcome
        note: str = Field(max_length=500)
        reviewed: bool
        decided_at: AwareDatetime
        acknowledged_at: AwareDatetime

        @property
        def key(self) -> bytes:
            """The Kafka key: the event id, so every acknowledgement of one event shares a partition."""
            return str(self.event_id).encode()


class LocalAcknowledgementSchema:
    """The one local schema id, for running without a registry (a ``SchemaResolver``)."""

    def schema_id(self, event_type: str) -> int:
        """``LOCAL_SCHEMA_ID`` for ActionTaken."""
        if event_type != ACTION_TAKEN:
            raise UnknownSchemaId(f"{event_type!r} is not an acknowledgement schema")
        return LOCAL_SCHEMA_ID

    def writer_schema(self, schema_id: int) -> dict[str, Any]:
        """The parsed ActionTaken schema for the local id."""
        if schema_id != LOCAL_SCHEMA_ID:
            raise UnknownSchemaId(f"schema id {schema_id} is not the local acknowledgement schema")
        return action_taken_schema().parsed


def _record(ack: ActionTaken) -> dict[str, Any]:
    record = ack.model_dump()
    record["event_id"] = str(ack.event_id)
    record["register"] = ack.register.value
    return record


class AcknowledgementCodec:
    """ActionTaken in the Confluent wire format."""

    def __init__(self, resolver: SchemaResolver | None = None) -> None:
        self._resolver: SchemaResolver = resolver or LocalAcknowledgementSchema()
        self._reader = action_taken_schema().parsed

    def encode(self, ack: ActionTaken) -> bytes:
        """Wire-format bytes of one acknowledgement."""
        buffer = io.BytesIO()
        buffer.write(_HEADER.pack(MAGIC_BYTE, self._resolver.schema_id(ACTION_TAKEN)))
        fastavro.schemaless_writer(buffer, self._reader, _record(ack))
        return buffer.getvalue()

    def decode(self, data: bytes | None) -> ActionTaken:
        """The acknowledgement in ``data``; raises DecodeError saying why not."""
        if not data or len(data) < _HEADER.size:
            raise DecodeError("truncated", "message is shorter than the 5-byte wire-format header")
        magic, schema_id = _HEADER.unpack_from(data)
        if magic != MAGIC_BYTE:
            raise DecodeError("bad-magic-byte", f"first byte is {magic}, expected {MAGIC_BYTE}")
        try:
            writer = self._resolver.writer_schema(schema_id)
        except UnknownSchemaId as exc:
            raise DecodeError("unknown-schema-id", str(exc)) from exc
        try:
            record = fastavro.schemaless_reader(io.BytesIO(data[_HEADER.size :]), writer, self._reader)
        except Exception as exc:  # fastavro raises many types for corrupt bodies
            raise DecodeError("avro-body-invalid", f"{type(exc).__name__} reading schema id {schema_id}") from exc
        try:
            return ActionTaken.model_validate(record)
        except ValidationError as exc:
            raise DecodeError("contract-violation", describe_validation_error(exc)) from exc
