"""Inspect and re-drive a department's dead letters.

A dead letter is an obligation nobody has met yet (say, a death a department could not apply because of a bug
since fixed). ``list_dead_letters`` reads the department's dead-letter topic and shows why each message is there,
from its headers only (never the message body, which holds personal data). ``redrive`` copies chosen letters back
to the registration topic they came from: the department applies them again (an event whose recorded outcome is
``dead_lettered`` is not treated as a duplicate), while every other department, having already applied the event,
skips it by its event id. Messages that never decoded are left out unless asked for: re-driving them would only
dead-letter them again in every department.

The router's dead letters (``-d router``, topic ``<prefix>.dead-letter.router``) are registrations it could not
decode (an unknown schema id, a contract violation): each of its lanes reading that register writes one, naming
itself in ``civreg.department``. Re-driven (``include_undecodable``, after the fix: the schema registered, the
producer mended) each goes back ONCE to the registration topic it came from, and every lane routes it afresh. The
router writes its dead letters in its Kafka transactions, so reading its topic to the end allows for commit markers.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import Consumer, Message, Producer, TopicPartition

from civreg.cluster import unread_ranges
from civreg.kafka_config import consumer_config, producer_config
from civreg.settings import Settings
from schemas.topics import dead_letter_topic

__all__ = ["DeadLetterInfo", "list_dead_letters", "redrive"]


@dataclass(frozen=True)
class DeadLetterInfo:
    """Why one message is on a dead-letter topic (from its headers; no personal data)."""

    partition: int
    offset: int
    reason: str
    error_class: str
    error_message: str
    original_topic: str
    original_partition: int
    original_offset: int
    dead_lettered_at: str
    event_id: str | None
    event_type: str | None
    department: str = ""
    """Who dead-lettered it: the department, or on the router's topic the lane (the department it was routing for)."""

    @property
    def original(self) -> tuple[str, int, int]:
        """Where the message was read: one registration copied back once, whichever lanes dead-lettered it."""
        return (self.original_topic, self.original_partition, self.original_offset)


def _headers(message: Message) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in list(message.headers() or []):
        headers[str(name)] = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")
    return headers


def _info(message: Message) -> DeadLetterInfo:
    headers = _headers(message)
    return DeadLetterInfo(
        partition=message.partition() or 0,
        offset=message.offset() or 0,
        reason=headers.get("civreg.reason", ""),
        error_class=headers.get("civreg.error.class", ""),
        error_message=headers.get("civreg.error.message", ""),
        original_topic=headers.get("civreg.original.topic", ""),
        original_partition=int(headers.get("civreg.original.partition", "-1")),
        original_offset=int(headers.get("civreg.original.offset", "-1")),
        dead_lettered_at=headers.get("civreg.dead-lettered-at", ""),
        event_id=headers.get("civreg.event-id"),
        event_type=headers.get("civreg.event-type"),
        department=headers.get("civreg.department", ""),
    )


def _read(settings: Settings, department: str, timeout: float) -> list[Message]:
    """Every message now on the department's dead-letter topic, from each partition's start to its end."""
    topic = dead_letter_topic(department, settings.topic_prefix)
    consumer = Consumer(
        consumer_config(
            settings, f"{settings.topic_prefix}.dead-letter-reader.{uuid.uuid4().hex}", role="dead-letter-reader"
        )
    )
    try:
        metadata = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if metadata is None or metadata.error is not None:
            raise LookupError(f"dead-letter topic {topic} does not exist (run `civreg topics apply`)")
        ranges = unread_ranges(consumer, topic, list(metadata.partitions), timeout=timeout)
        ends = {partition: high for partition, (_low, high) in ranges.items()}
        starts = [TopicPartition(topic, partition, low) for partition, (low, _high) in ranges.items()]
        if not starts:
            return []
        consumer.assign(starts)
        messages: list[Message] = []
        idle_since = time.monotonic()
        while ends:
            batch = consumer.consume(500, min(timeout, 1.0))
            for message in batch:
                if message.error() is not None:
                    continue
                partition, offset = message.partition() or 0, message.offset() or 0
                messages.append(message)
                if partition in ends and offset + 1 >= ends[partition]:
                    del ends[partition]
            if batch:
                idle_since = time.monotonic()
                continue
            # Nothing more to read: a transactional topic's last offset is a commit marker, never a message.
            for position in consumer.position([TopicPartition(topic, partition) for partition in ends]):
                if position.offset >= ends[position.partition]:
                    del ends[position.partition]
            if time.monotonic() - idle_since >= timeout:
                break
        return sorted(messages, key=lambda m: (m.partition() or 0, m.offset() or 0))
    finally:
        consumer.close()


def list_dead_letters(settings: Settings, department: str, timeout: float = 10.0) -> list[DeadLetterInfo]:
    """Why each message on the department's dead-letter topic is there, oldest first per partition."""
    return [_info(message) for message in _read(settings, department, timeout)]


def redrive(
    settings: Settings,
    department: str,
    *,
    event_ids: Iterable[str] | None = None,
    include_undecodable: bool = False,
    timeout: float = 10.0,
) -> list[DeadLetterInfo]:
    """Copy dead letters (all decodable ones, or those of ``event_ids``) back to their original topics.

    Returns the letters re-driven: one per original message (the router's lanes each dead-letter the same one).
    Each copy keeps the key and body and carries ``civreg.redriven-from`` naming the dead letter it came from; the
    broker's acknowledgement is awaited before returning.
    """
    wanted = None if event_ids is None else {str(uuid.UUID(event_id)) for event_id in event_ids}
    chosen: list[tuple[Message, DeadLetterInfo]] = []
    originals: set[tuple[str, int, int]] = set()
    for message in _read(settings, department, timeout):
        info = _info(message)
        if info.event_id is None and not include_undecodable:
            continue
        if wanted is not None and info.event_id not in wanted:
            continue
        if not info.original_topic or info.original in originals:
            continue
        originals.add(info.original)
        chosen.append((message, info))
    if not chosen:
        return []
    producer = Producer(producer_config(settings, role=f"redrive-{department}"))
    failures: list[str] = []
    source = dead_letter_topic(department, settings.topic_prefix)
    for message, info in chosen:
        producer.produce(
            info.original_topic,
            key=message.key(),
            value=message.value(),
            headers=[("civreg.redriven-from", f"{source}/{info.partition}/{info.offset}".encode())],
            on_delivery=lambda error, _msg: failures.append(error.str()) if error is not None else None,
        )
    remaining = producer.flush(timeout * 3)
    if remaining or failures:
        raise RuntimeError(f"{remaining + len(failures)} re-driven message(s) not acknowledged: {failures[:3]}")
    return [info for _, info in chosen]
