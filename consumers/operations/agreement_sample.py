"""A few messages of a department's own topic, read as the department, set beside its agreement.

Why: the proof a data protection officer asks for is the bytes themselves. Each sampled message is decoded with the
schema it was written with (from the registry: the router's projection of the agreement), not with the contract's
schema, which would show every withheld field as an empty slot; then every field it carries is checked against the
agreement's allow-list. Values are never returned, only their shape ("text, 9 chars"): this is a check of which
fields travel, and its output ends up in tickets and closing notes.
"""

from __future__ import annotations

import io
import struct
import uuid
from dataclasses import dataclass
from typing import Any

import fastavro
from confluent_kafka import Consumer, TopicPartition

from civreg.cluster import unread_ranges
from civreg.codec_from_settings import open_codec
from civreg.kafka_config import consumer_config
from civreg.settings import Settings
from consumers.runtime.agreements import Agreement, contract_paths
from schemas.codec import MAGIC_BYTE
from schemas.topics import department_topic

__all__ = ["SampledMessage", "sample_department_topic", "shape"]

_HEADER = struct.Struct(">BI")


@dataclass(frozen=True)
class SampledMessage:
    """One message of a department's topic: which fields it carries (their shapes, never values) and which the
    agreement allows."""

    partition: int
    offset: int
    event_type: str
    schema_id: int
    writer: str
    """Full name of the schema the message was written with."""
    carried: dict[str, str]
    """Every leaf field path in the message's bytes -> the shape of its value."""
    allowed: frozenset[str]
    """The agreement's leaf paths for this event type."""
    withheld: tuple[str, ...]
    """Leaf paths of the contract for this event type that the agreement does not name (never in the bytes)."""

    def is_allowed(self, path: str) -> bool:
        """Whether the agreement names ``path`` or a record it sits in."""
        parts = path.split(".")
        return any(".".join(parts[:i]) in self.allowed for i in range(1, len(parts) + 1))

    @property
    def outside_agreement(self) -> list[str]:
        """Fields in the bytes that the agreement does not allow: must be empty."""
        return sorted(path for path in self.carried if not self.is_allowed(path))


def shape(value: Any) -> str:
    """What a value looks like without what it is: safe to print, log and paste into a ticket."""
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "yes/no"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return f"text, {len(value)} chars"
    if isinstance(value, bytes):
        return f"bytes, {len(value)}"
    if isinstance(value, list):
        return f"list of {len(value)}"
    return type(value).__name__


def _leaves(record: Any, prefix: str, found: dict[str, str]) -> None:
    if isinstance(record, dict):
        for key, value in record.items():
            _leaves(value, f"{prefix}{key}.", found)
        return
    if isinstance(record, list) and record and all(isinstance(item, dict) for item in record):
        for item in record:
            _leaves(item, prefix, found)
        return
    found.setdefault(prefix.rstrip("."), shape(record))


def sample_department_topic(
    settings: Settings,
    agreement: Agreement,
    count: int = 1,
    *,
    event_type: str | None = None,
    timeout: float = 10.0,
) -> list[SampledMessage]:
    """Up to ``count`` messages from the start of the department's topic (only those of ``event_type``, if given),
    read with ``settings``' principal (the department's own login on a secure broker: nobody else may read it).

    Reads by assignment in the department's own group (the only group its ACLs allow) and commits nothing, so the
    department's consumer loses no position. Raises LookupError when the topic does not exist or is not visible.
    """
    topic = department_topic(agreement.department, settings.topic_prefix)
    codec = open_codec(settings)
    # Department.group_id: a department's group has its topic's name (its ACLs allow that group only).
    consumer = Consumer(consumer_config(settings, topic, role=f"agreement-sample-{uuid.uuid4().hex[:8]}"))
    try:
        metadata = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if metadata is None or metadata.error is not None:
            raise LookupError(f"department topic {topic} does not exist or this principal may not see it")
        ranges = unread_ranges(consumer, topic, list(metadata.partitions), timeout=timeout)
        ends = {partition: high for partition, (_low, high) in ranges.items()}
        starts = [TopicPartition(topic, partition, low) for partition, (low, _high) in ranges.items()]
        if not starts:
            return []
        consumer.assign(starts)
        sampled: list[SampledMessage] = []
        while ends and len(sampled) < count:
            messages = consumer.consume(100, timeout)
            if not messages:
                break
            for message in messages:
                if message.error() is not None:
                    continue
                partition, offset = message.partition() or 0, message.offset() or 0
                if partition in ends and offset + 1 >= ends[partition]:
                    del ends[partition]
                if len(sampled) < count:
                    sample = _sample(codec.resolver, agreement, partition, offset, message.value() or b"")
                    if event_type is None or sample.event_type == event_type:
                        sampled.append(sample)
        return sampled
    finally:
        consumer.close()


def _sample(resolver: Any, agreement: Agreement, partition: int, offset: int, data: bytes) -> SampledMessage:
    magic, schema_id = _HEADER.unpack_from(data)
    if magic != MAGIC_BYTE:
        raise ValueError(f"message {partition}/{offset}: first byte is {magic}, expected {MAGIC_BYTE}")
    writer: dict[str, Any] = resolver.writer_schema(schema_id)
    record = fastavro.schemaless_reader(io.BytesIO(data[_HEADER.size :]), writer, None)
    carried: dict[str, str] = {}
    _leaves(record, "", carried)
    name = str(writer.get("name", ""))
    event_type = name.rsplit(".", maxsplit=1)[-1]
    allowed = agreement.fields_allowed.get(event_type, frozenset())
    contract = contract_paths(event_type, agreement.registers) if event_type in agreement.event_types else {}
    records = {path.rsplit(".", 1)[0] for path in contract if "." in path}
    withheld = tuple(
        sorted(path for path in contract if path not in records and path not in allowed and not _under(path, allowed))
    )
    return SampledMessage(partition, offset, event_type, schema_id, name, carried, frozenset(allowed), withheld)


def _under(path: str, allowed: frozenset[str]) -> bool:
    parts = path.split(".")
    return any(".".join(parts[:i]) in allowed for i in range(1, len(parts)))
