"""Encode and decode events in the Confluent wire format: magic byte 0, 4-byte big-endian schema id, Avro body.

The schema id comes from a ``SchemaResolver``: the local catalogue, or a Confluent-compatible registry
(``schemas.registry``) when one is configured. Decoding reads with the writer's schema and resolves into this
codebase's reader schema, so a consumer on an older contract still reads newer events.

Why decoding is fast: what to do with a schema id (its writer schema, whether resolution is needed, which model) is
worked out once per id and kept, so a message costs one dict lookup and one fastavro read. When the writer schema
equals the reader's, no resolution is asked for: fastavro would otherwise compare the two schemas on every call.
"""

from __future__ import annotations

import io
import struct
from typing import Any, Protocol, runtime_checkable

import fastavro
from pydantic import ValidationError

from schemas.avro_subset import Filler, subset_filler
from schemas.avro_writer import RecordWriter, compile_writer
from schemas.catalogue import EVENT_TYPES, NAMESPACE, event_schema
from schemas.errors import CivregError
from schemas.models import EVENT_MODELS, Event, RegistrationCorrected
from schemas.rules import rule_text
from schemas.topics import registration_topic

__all__ = [
    "MAGIC_BYTE",
    "Codec",
    "DecodeError",
    "LocalSchemaCatalogue",
    "ResolverUnavailable",
    "SchemaResolver",
    "SubjectResolver",
    "UnknownSchemaId",
]

MAGIC_BYTE = 0
_HEADER = struct.Struct(">BI")  # unsigned magic byte, so a bad one reads 0-255
_ReadPlan = tuple[dict[str, Any], dict[str, Any] | None, Filler | None, type[Event]]
"""Writer schema, reader schema (only when fastavro must resolve), defaults to add (a plain subset), model."""


class DecodeError(ValueError):
    """A message that cannot become an event. ``reason`` is a short stable code for dead-letter headers."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class UnknownSchemaId(LookupError):
    """The schema id in a message is not known to the resolver."""


class ResolverUnavailable(CivregError, RuntimeError):
    """The resolver cannot answer now (registry unreachable): retry later. Not the message's fault, so never a
    reason to dead-letter it: the id may well be valid."""


class SchemaResolver(Protocol):
    """Where schema ids come from (local catalogue or registry)."""

    def schema_id(self, event_type: str) -> int:
        """The id to write in messages of ``event_type``."""
        ...

    def writer_schema(self, schema_id: int) -> dict[str, Any]:
        """The parsed schema a message with ``schema_id`` was written with; raises UnknownSchemaId, or
        ResolverUnavailable when it cannot tell now."""
        ...


@runtime_checkable
class SubjectResolver(SchemaResolver, Protocol):
    """A resolver whose ids depend on the topic too (a registry's subjects are ``<topic>-<record>``)."""

    def subject_schema_id(self, event_type: str, topic: str) -> int:
        """The id to write in messages of ``event_type`` sent to ``topic``."""
        ...


class LocalSchemaCatalogue:
    """Ids 1..6 for the schemas in this checkout, for running without a registry.

    The bytes are standard wire format; only the id space is local, so mixing these messages with a registry's
    would be wrong. Use a registry in any shared environment.
    """

    def __init__(self) -> None:
        self._ids = {event_type: index for index, event_type in enumerate(EVENT_TYPES, start=1)}
        self._by_id = {index: event_schema(event_type).parsed for event_type, index in self._ids.items()}

    def schema_id(self, event_type: str) -> int:
        """Local id of ``event_type``."""
        return self._ids[event_type]

    def writer_schema(self, schema_id: int) -> dict[str, Any]:
        """Parsed schema for a local id."""
        try:
            return self._by_id[schema_id]
        except KeyError:
            raise UnknownSchemaId(f"schema id {schema_id} is not in the local catalogue") from None


def to_avro(event: Event) -> dict[str, Any]:
    """The record fastavro writes; the union in a correction names its branch so no guessing is needed."""
    record = event.model_dump()
    if isinstance(event, RegistrationCorrected):
        record["corrected"] = (f"{NAMESPACE}.{type(event.corrected).__name__}", record["corrected"])
    return record


class Codec:
    """Wire-format codec for every event type.

    ``topic_prefix`` lets ``encode`` find an event's topic itself (the registration topic of its register) when
    the caller does not say; a registry resolver needs the topic for the subject.
    """

    def __init__(self, resolver: SchemaResolver | None = None, *, topic_prefix: str | None = None) -> None:
        self._resolver: SchemaResolver = resolver or LocalSchemaCatalogue()
        self._subject_resolver = self._resolver if isinstance(self._resolver, SubjectResolver) else None
        self._topic_prefix = topic_prefix
        self._readers = {event_schema(t).full_name: (event_schema(t).parsed, EVENT_MODELS[t]) for t in EVENT_TYPES}
        # schema id -> how to read it, filled on first use: the writer schema, the reader schema when fastavro must
        # resolve the two, what to add when the writer is a plain field subset of the reader (a department's
        # projection: ``schemas.avro_subset``, read without resolution), and the model.
        self._plans: dict[int, _ReadPlan] = {}
        # Encoding plans, filled on first use: the compiled Avro writer per event type (``schemas.avro_writer``:
        # fastavro's bytes, without its per-record schema walk), and the 5-byte header per (event type, topic), so
        # an event costs one model dump and one compiled write.
        self._writers: dict[str, RecordWriter] = {}
        self._headers: dict[tuple[str, str | None], bytes] = {}

    @property
    def resolver(self) -> SchemaResolver:
        """Where this codec's schema ids come from."""
        return self._resolver

    def encode(self, event: Event, topic: str | None = None) -> bytes:
        """Wire-format bytes for ``event``, with the schema id of its subject on ``topic``."""
        if topic is None and self._topic_prefix is not None:
            topic = registration_topic(event.family, self._topic_prefix)
        return self.header(event.event_type, topic) + self.encode_body(event)

    def header(self, event_type: str, topic: str | None = None) -> bytes:
        """The 5-byte wire-format header (magic byte, schema id) of ``event_type`` on ``topic``; cached."""
        key = (event_type, topic)
        header = self._headers.get(key)
        if header is None:
            if topic is not None and self._subject_resolver is not None:
                schema_id = self._subject_resolver.subject_schema_id(event_type, topic)
            else:
                schema_id = self._resolver.schema_id(event_type)
            header = self._headers[key] = _HEADER.pack(MAGIC_BYTE, schema_id)
        return header

    def encode_body(self, event: Event) -> bytes:
        """The Avro body of ``event`` without the header: the same whatever the schema id, so it can be written
        before the registry is asked (``civreg publish`` encodes while validating)."""
        writer = self._writers.get(event.event_type)
        if writer is None:
            writer = self._writers[event.event_type] = compile_writer(event_schema(event.event_type).parsed)
        return writer(to_avro(event))

    def decode(self, data: bytes | None) -> Event:
        """The event in ``data``; raises DecodeError saying why it cannot be read (ResolverUnavailable: retry)."""
        record, model = self._read(data)
        try:
            return model.model_validate(record)
        except ValidationError as exc:
            raise DecodeError("contract-violation", describe_validation_error(exc)) from exc

    def decode_record(self, data: bytes | None) -> dict[str, Any]:
        """The Avro record in ``data`` as this codebase's reader schema sees it, not yet validated as an event."""
        return self._read(data)[0]

    def _read(self, data: bytes | None) -> tuple[dict[str, Any], type[Event]]:
        if not data or len(data) < _HEADER.size:
            raise DecodeError("truncated", "message is shorter than the 5-byte wire-format header")
        magic, schema_id = _HEADER.unpack_from(data)
        if magic != MAGIC_BYTE:
            raise DecodeError("bad-magic-byte", f"first byte is {magic}, expected {MAGIC_BYTE}")
        plan = self._plans.get(schema_id)
        if plan is None:
            plan = self._plan(schema_id)
        writer, reader, filler, model = plan
        body = io.BytesIO(data)
        body.seek(_HEADER.size)
        try:
            record = fastavro.schemaless_reader(body, writer, reader)
        except Exception as exc:  # fastavro raises many types for corrupt bodies
            raise DecodeError("avro-body-invalid", f"{type(exc).__name__} reading schema id {schema_id}") from exc
        left_over = len(data) - body.tell()
        if left_over:  # the body is not what the schema id says (wrong id, or bytes appended)
            raise DecodeError("avro-body-invalid", f"{left_over} bytes left after the record of schema id {schema_id}")
        if not isinstance(record, dict):
            raise DecodeError("avro-body-invalid", f"schema id {schema_id} did not yield a record")
        return (record if filler is None else filler(record)), model

    def _plan(self, schema_id: int) -> _ReadPlan:
        """Work out once how to read messages with ``schema_id``; unknown ids are not kept (they may appear)."""
        try:
            writer = self._resolver.writer_schema(schema_id)
        except UnknownSchemaId as exc:
            raise DecodeError("unknown-schema-id", str(exc)) from exc
        name = writer.get("name", "")
        if name not in self._readers:
            raise DecodeError("unknown-event-type", f"schema id {schema_id} is for {name!r}, not an event type")
        reader, model = self._readers[name]
        if writer == reader:
            plan: _ReadPlan = (reader, None, None, model)
        elif (filler := subset_filler(writer, reader)) is not None:
            plan = (writer, None, filler, model)
        else:
            plan = (writer, reader, None, model)
        self._plans[schema_id] = plan
        return plan


def describe_validation_error(exc: ValidationError) -> str:
    """'field: rule' for each error in this project's words, without the offending values (they may be personal
    data; pydantic's own message for a bad UUID quotes part of it)."""
    errors = exc.errors(include_url=False, include_context=True, include_input=False)
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or '(record)'}: {rule_text(error)}" for error in errors
    )
