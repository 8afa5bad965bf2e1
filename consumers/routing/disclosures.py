"""The disclosure ledger: one record per event delivered to a department, and the report a citizen can be given.

Why a ledger: a citizen may ask who was told about their registration, what, when and under which law. The router
writes a disclosure in the same Kafka transaction as the delivery (``consumers.routing.router``), so the ledger and the
department topics cannot disagree. Records are JSON, keyed by entry key, and hold no personal values: the entry key,
the department, the event id and type, the dotted paths of the fields disclosed, the time and the legal gateway.

``entry_report`` reads only the partition the entry key hashes to (murmur2, the publisher's partitioner), with
``read_committed``, so it sees exactly the disclosures of committed deliveries.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError, TopicPartition

from civreg.cluster import watermarks
from civreg.kafka_config import consumer_config
from civreg.settings import Settings
from schemas.topics import disclosure_topic

__all__ = ["Disclosure", "entry_disclosures", "murmur2_partition", "plain_field", "render_html", "render_text"]


@dataclass(frozen=True)
class Disclosure:
    """One delivery of one event to one department."""

    entry_key: str
    department: str
    controller: str
    event_id: str
    event_type: str
    fields: tuple[str, ...]
    disclosed_at: datetime
    legal_gateway: str

    def to_json(self) -> bytes:
        """The ledger record."""
        record = {**self.__dict__, "fields": list(self.fields), "disclosed_at": self.disclosed_at.isoformat()}
        return orjson.dumps(record)  # compact JSON, UTF-8; one per delivery, so orjson (json took 5x as long)

    @classmethod
    def from_json(cls, data: bytes) -> Disclosure:
        """A ledger record read back."""
        raw: dict[str, Any] = json.loads(data)
        raw["fields"] = tuple(raw["fields"])
        raw["disclosed_at"] = datetime.fromisoformat(raw["disclosed_at"])
        return cls(**raw)


def _murmur2(data: bytes) -> int:
    """Kafka's murmur2 (the Java client's default partitioner, librdkafka's ``murmur2_random`` for keyed messages)."""
    length = len(data)
    seed, m, r = 0x9747B28C, 0x5BD1E995, 24
    h = (seed ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    tail = length % 4
    base = length - tail
    if tail >= 3:
        h ^= data[base + 2] << 16
    if tail >= 2:
        h ^= data[base + 1] << 8
    if tail >= 1:
        h ^= data[base]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def murmur2_partition(key: bytes, partitions: int) -> int:
    """The partition a keyed message goes to: ``toPositive(murmur2(key)) % partitions``."""
    return (_murmur2(key) & 0x7FFFFFFF) % partitions


def entry_disclosures(settings: Settings, entry_key: str, *, timeout: float = 30.0) -> list[Disclosure]:
    """Every committed disclosure of ``entry_key``, oldest first, from its one ledger partition."""
    topic = disclosure_topic(settings.topic_prefix)
    consumer = Consumer(
        consumer_config(
            settings,
            f"{settings.topic_prefix}.disclosure-report",
            role="disclosures",
            **{
                "enable.partition.eof": True,
            },
        )
    )
    try:
        metadata = consumer.list_topics(topic, timeout=timeout).topics[topic]
        if metadata.error is not None:
            raise RuntimeError(f"ledger topic {topic} is not readable: {metadata.error}")
        partition = murmur2_partition(entry_key.encode(), len(metadata.partitions))
        low, high = watermarks(consumer, topic, partition, timeout=timeout)
        consumer.assign([TopicPartition(topic, partition, low)])
        found: list[Disclosure] = []
        while low < high:  # to the end of the partition (read_committed: aborted writes are never seen)
            message = consumer.poll(timeout)
            if message is None:
                break
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    break
                continue
            if message.key() == entry_key.encode():
                found.append(Disclosure.from_json(message.value() or b"{}"))
        return found
    finally:
        consumer.close()


_WORDS = {
    "nino": "National Insurance number",
    "nhs_number": "NHS number",
    "driving_licence_number": "driving licence number",
    "passport_number": "passport number",
    "party_1": "first party",
    "party_2": "second party",
    "partner_1": "first partner",
    "partner_2": "second partner",
    "surname_after": "surname after",
    "entry": "register entry",
    "corrected": "corrected entry",
}
_ENVELOPE = {"event_id", "version", "recorded_at", "register_office", "kind", "reason"}


def plain_field(path: str) -> str:
    """A dotted path in plain words: ``death.deceased.family_name`` -> ``family name (deceased)``."""
    parts = path.split(".")
    leaf = _WORDS.get(parts[-1], parts[-1].replace("_", " "))
    context = [_WORDS.get(p, p.replace("_", " ")) for p in parts[1:-1] if p not in ("person", "identifiers", "address")]
    if parts[0] == "entry":
        return f"register entry: {leaf}"
    return f"{leaf} ({', '.join(context)})" if context else leaf


def _groups(disclosures: list[Disclosure]) -> list[tuple[Disclosure, list[str]]]:
    return [
        (
            d,
            sorted(
                {plain_field(p) for p in d.fields if p.split(".")[0] not in _ENVELOPE and p.split(".")[0] != "entry"}
            ),
        )
        for d in disclosures
    ]


def render_text(entry_key: str, disclosures: list[Disclosure]) -> str:
    """The citizen's report as plain text."""
    if not disclosures:
        return f"Registration {entry_key} has not been shared with any body.\n"
    lines = [f"Registration {entry_key} was shared with these bodies:", ""]
    for disclosure, fields in _groups(disclosures):
        lines.append(
            f"- {disclosure.controller} ({disclosure.department}), {disclosure.disclosed_at:%d %B %Y %H:%M} UTC"
        )
        lines.append(f"  what: {disclosure.event_type}")
        lines.append(f"  under: {disclosure.legal_gateway}")
        lines.append(f"  fields: {', '.join(fields) or 'only which entry it was'}")
    return "\n".join(lines) + "\n"


def render_html(entry_key: str, disclosures: list[Disclosure]) -> str:
    """The citizen's report as a printable HTML page."""
    rows = "".join(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td><ul>{}</ul></td><td>{}</td></tr>".format(
            html.escape(d.controller),
            html.escape(f"{d.disclosed_at:%d %B %Y}"),
            html.escape(d.event_type),
            "".join(f"<li>{html.escape(f)}</li>" for f in fields) or "<li>only which entry it was</li>",
            html.escape(d.legal_gateway),
        )
        for d, fields in _groups(disclosures)
    )
    body = (
        f"<table><thead><tr><th>Shared with</th><th>On</th><th>What</th><th>Fields</th><th>Under</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        if disclosures
        else "<p>This registration has not been shared with any body.</p>"
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Who your registration was shared with"
        "</title><style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid"
        " #999;padding:.4em;vertical-align:top}@media print{body{margin:0}}</style></head><body>"
        f"<h1>Who your registration was shared with</h1><p>Registration {html.escape(entry_key)}: your registration "
        "was shared with these bodies, these details, on these dates, under these laws.</p>"
        f"{body}</body></html>\n"
    )
