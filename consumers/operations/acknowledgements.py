"""Action-taken acknowledgements: every department says what it did with every event, and ``trace`` reads them back.

Publishing is an outbox. Recording an outcome (``Transaction.record_outcome``) or a review decision also writes a
``civreg_unacknowledged`` row in the same transaction; after the commit the publisher sends an ``ActionTaken``
for each row, waits for the broker, and deletes the rows it sent. A crash anywhere leaves the rows, and the next
run sends them: at-least-once. Readers de-duplicate by (event id, department), keeping the latest decision.

Acknowledgements are keyed by event id, so all of one event's are on one partition, in order, and ``trace`` reads
only that partition. Nothing personal is published: event id, department, event type, register, entry version,
outcome, the department's note and two times.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from confluent_kafka import OFFSET_END, Consumer, KafkaError, KafkaException, Producer, TopicPartition

from civreg.cluster import watermarks
from civreg.codec_from_settings import open_acknowledgement_codec
from civreg.errors import CivregError
from civreg.kafka_config import consumer_config, producer_config
from civreg.logs import get_logger
from civreg.settings import Settings
from consumers.runtime.store import Store
from schemas.acknowledgements import AcknowledgementCodec, ActionTaken
from schemas.codec import DecodeError
from schemas.models import EntryReference
from schemas.topics import Register, acknowledgement_topic

if TYPE_CHECKING:
    from consumers.runtime.service import BatchReport, DepartmentConsumer

__all__ = [
    "AcknowledgementPublisher",
    "DepartmentAcknowledgement",
    "EventTrace",
    "TraceError",
    "entitled_departments",
    "partition_for_key",
    "trace_event",
]

log = get_logger(__name__)

_OWED = """
SELECT u.event_id, u.token, o.event_type, o.entry_key, o.version, o.outcome, o.note, o.processed_at, r.resolved_at
FROM civreg_unacknowledged u
JOIN civreg_event_outcomes o ON o.event_id = u.event_id
LEFT JOIN civreg_review_queue r ON r.event_id = u.event_id AND r.status = 'resolved'
"""


class AcknowledgementPublisher:
    """Publishes a department's owed acknowledgements to ``<prefix>.acknowledgements`` (see the module doc)."""

    def __init__(
        self,
        settings: Settings,
        department: str,
        store: Store,
        *,
        codec: AcknowledgementCodec | None = None,
        chunk: int = 5000,
        flush_timeout: float = 15.0,
    ) -> None:
        self.topic = acknowledgement_topic(settings.topic_prefix)
        self.department = department
        self._store = store
        self._codec = codec or open_acknowledgement_codec(settings)  # the registry's id when there is one
        self._chunk = chunk
        self._flush_timeout = flush_timeout
        config = producer_config(settings, role=f"ack-{department}")
        self._producer: Producer | None = Producer(config)
        self._log = log.bind(department=department, topic=self.topic)

    def attach(self, consumer: DepartmentConsumer) -> None:
        """Publish after each batch's database commit (the listener never stops the department)."""
        consumer.on_batch_committed(self.after_batch)

    def after_batch(self, _report: BatchReport) -> None:
        """Batch listener: publish what is owed (this batch's outcomes and anything left from before)."""
        self.publish_owed_or_defer()

    def publish_owed_or_defer(self) -> int:
        """``publish_owed``, but a failure only logs: the rows stay owed and the next call sends them."""
        try:
            return self.publish_owed()
        except Exception as exc:  # a broker or database hiccup must not stop applying events
            self._log.warning("acknowledgements-deferred", error_class=type(exc).__name__)
            return 0

    def publish_owed(self, event_id: str | None = None) -> int:
        """Send every owed acknowledgement (or only ``event_id``'s), wait for the broker, forget the sent ones."""
        sent = 0
        while True:
            if event_id is None:
                rows = self._store.read().execute(f"{_OWED} LIMIT ?", (self._chunk,))
            else:
                rows = self._store.read().execute(f"{_OWED} WHERE u.event_id = ?", (event_id,))
            if not rows:
                return sent
            delivered = self._produce(rows)
            if delivered:
                with self._store.transaction() as tx:
                    tx.execute_many("DELETE FROM civreg_unacknowledged WHERE event_id = ? AND token = ?", delivered)
            sent += len(delivered)
            if len(delivered) < len(rows):
                raise KafkaException(
                    KafkaError(KafkaError._MSG_TIMED_OUT, f"{len(rows) - len(delivered)} acknowledgement(s) not sent")
                )
            if event_id is not None or len(rows) < self._chunk:
                return sent

    def _produce(self, rows: list[Any]) -> list[tuple[str, str]]:
        assert self._producer is not None, "publisher is closed"
        delivered: list[tuple[str, str]] = []
        now = datetime.now(UTC)
        for row in rows:
            event_id, token = str(row[0]), str(row[1])
            reviewed = row[8] is not None
            ack = ActionTaken(
                event_id=uuid.UUID(event_id),
                department=self.department,
                event_type=str(row[2]),
                register=EntryReference.register_of_key(str(row[3])),
                entry_version=int(row[4]),
                outcome=str(row[5]),  # validated against the Avro enum's symbols
                note=str(row[6])[:500],
                reviewed=reviewed,
                decided_at=datetime.fromisoformat(str(row[8] if reviewed else row[7])),
                acknowledged_at=now,
            )

            def on_delivery(error: KafkaError | None, _message: Any, sent: tuple[str, str] = (event_id, token)) -> None:
                if error is None:
                    delivered.append(sent)

            self._producer.produce(self.topic, key=ack.key, value=self._codec.encode(ack), on_delivery=on_delivery)
            self._producer.poll(0)
        self._producer.flush(self._flush_timeout)
        return delivered

    def close(self) -> None:
        """Flush anything outstanding and release the client (idempotent)."""
        if self._producer is not None:
            self._producer.flush(self._flush_timeout)
            self._producer = None


# Tracing ----------------------------------------------------------------------------------------------------


class TraceError(CivregError, RuntimeError):
    """The acknowledgement topic cannot be read (missing, unreachable); the message says which and why."""


@dataclass(frozen=True)
class DepartmentAcknowledgement:
    """A department's latest decision about the event, and how many acknowledgements said so (or earlier)."""

    latest: ActionTaken
    acknowledgements: int


@dataclass
class EventTrace:
    """Which departments acknowledged one event, what each did, and who is still expected to."""

    event_id: str
    departments: dict[str, DepartmentAcknowledgement] = field(default_factory=dict)
    expected: tuple[str, ...] | None = None
    """Departments entitled to this event (from the register and event type in the acknowledgements)."""
    scanned: int = 0
    partitions: tuple[int, ...] = ()
    seconds: float = 0.0

    @property
    def register(self) -> Register | None:
        """The event's register, as the acknowledgements report it."""
        return next(iter(self.departments.values())).latest.register if self.departments else None

    @property
    def event_type(self) -> str | None:
        """The event's type, as the acknowledgements report it."""
        return next(iter(self.departments.values())).latest.event_type if self.departments else None

    @property
    def awaiting(self) -> tuple[str, ...]:
        """Entitled departments that have not acknowledged the event (yet)."""
        return tuple(name for name in self.expected or () if name not in self.departments)

    def add(self, ack: ActionTaken) -> None:
        """Keep the latest decision per department (a later decision, or the same one re-published)."""
        held = self.departments.get(ack.department)
        if held is None:
            self.departments[ack.department] = DepartmentAcknowledgement(ack, 1)
            return
        latest = ack if ack.decided_at >= held.latest.decided_at else held.latest
        self.departments[ack.department] = DepartmentAcknowledgement(latest, held.acknowledgements + 1)


def _murmur2(data: bytes) -> int:
    """Kafka's murmur2 (Java client ``Utils.murmur2``, librdkafka ``murmur2_random``), as a signed 32-bit int."""
    mask = 0xFFFFFFFF
    m, r = 0x5BD1E995, 24
    length = len(data)
    h = (0x9747B28C ^ length) & mask
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & mask
        k ^= k >> r
        k = (k * m) & mask
        h = (h * m) & mask
        h ^= k
    tail = length % 4
    base = length - tail
    if tail == 3:
        h ^= data[base + 2] << 16
    if tail >= 2:
        h ^= data[base + 1] << 8
    if tail >= 1:
        h ^= data[base]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h


def partition_for_key(key: bytes, partitions: int) -> int:
    """The partition the producer's partitioner puts ``key`` on (positive murmur2 modulo the partition count)."""
    return (_murmur2(key) & 0x7FFFFFFF) % partitions


def entitled_departments(register: Register, event_type: str, agreements_dir: Path) -> tuple[str, ...]:
    """Departments the router sends events of ``event_type`` on ``register``'s topic: every agreement on file whose
    allow-list names it (``Agreement.receives``, the router's own test). No agreement, or one that does not load
    (the router refuses to start on it), no delivery."""
    from consumers.runtime.agreements import AgreementError, load_agreement

    names = []
    for path in sorted(agreements_dir.glob("*.yaml")):
        try:
            agreement = load_agreement(path)
        except AgreementError:
            continue
        if agreement.receives(register, event_type):
            names.append(agreement.department)
    return tuple(sorted(names))


def trace_event(
    settings: Settings,
    event_id: str,
    *,
    since: datetime | None = None,
    all_partitions: bool = False,
    timeout: float = 30.0,
    on_progress: Callable[[int, int], None] | None = None,
    codec: AcknowledgementCodec | None = None,
) -> EventTrace:
    """Read the acknowledgement topic for one event: its key's partition (or all), from ``since`` (or the start).

    Cost: one partition's messages from the start offset to the end, filtered by key before decoding.
    ``on_progress(read, total)`` is called as it goes.
    """
    started = time.monotonic()
    trace = EventTrace(str(uuid.UUID(event_id)))
    topic = acknowledgement_topic(settings.topic_prefix)
    consumer = Consumer(
        consumer_config(
            settings,
            f"{settings.topic_prefix}.trace",  # never joins: partitions are assigned, nothing is committed
            role="trace",
            **{"enable.partition.eof": True, "fetch.max.bytes": 52_428_800},
        )
    )
    try:
        try:
            metadata = consumer.list_topics(topic, timeout=timeout)
        except KafkaException as exc:
            raise TraceError(f"cannot reach Kafka at {settings.effective_bootstrap_servers}: {exc}") from None
        described = metadata.topics.get(topic)
        if described is None or described.error is not None or not described.partitions:
            raise TraceError(f"topic {topic} does not exist (run 'civreg topics apply')")
        count = len(described.partitions)
        key = trace.event_id.encode()
        trace.partitions = tuple(range(count)) if all_partitions else (partition_for_key(key, count),)
        ranges = _ranges(consumer, topic, trace.partitions, since, timeout)
        reader = codec or open_acknowledgement_codec(settings)
        _scan(consumer, topic, key, trace, reader, ranges=ranges, timeout=timeout, on_progress=on_progress)
    finally:
        consumer.close()
    if trace.departments:
        first = next(iter(trace.departments.values())).latest
        trace.expected = entitled_departments(first.register, first.event_type, settings.config_files.agreements_dir)
    trace.seconds = time.monotonic() - started
    return trace


def _scan(
    consumer: Consumer,
    topic: str,
    key: bytes,
    trace: EventTrace,
    codec: AcknowledgementCodec,
    *,
    ranges: dict[int, tuple[int, int]],
    timeout: float,
    on_progress: Callable[[int, int], None] | None,
) -> None:
    """Read each partition's [start, end) range; decode only the messages with the event's key."""
    ends = {partition: end for partition, (_start, end) in ranges.items()}
    total = sum(end - start for start, end in ranges.values())
    if ends:
        consumer.assign([TopicPartition(topic, partition, start) for partition, (start, _end) in ranges.items()])
    last_progress = time.monotonic()
    while ends:
        messages = consumer.consume(10_000, 0.5)
        if messages:
            last_progress = time.monotonic()
        elif time.monotonic() - last_progress > timeout:
            raise TraceError(f"no progress reading {topic} for {timeout:.0f} s")
        for message in messages:
            partition = message.partition() or 0
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    raise TraceError(f"reading {topic}: {error.str()}")
                ends.pop(partition, None)
                continue
            trace.scanned += 1
            if message.key() == key:
                try:
                    trace.add(codec.decode(message.value()))
                except DecodeError as exc:
                    log.warning("unreadable-acknowledgement", offset=message.offset(), reason=exc.reason)
            if (message.offset() or 0) >= ends.get(partition, 0) - 1:
                ends.pop(partition, None)
        if on_progress is not None:
            on_progress(trace.scanned, total)


def _ranges(
    consumer: Consumer, topic: str, partitions: tuple[int, ...], since: datetime | None, timeout: float
) -> dict[int, tuple[int, int]]:
    """[start, end) offsets to read per partition; partitions with nothing to read are left out."""
    starts = _start_offsets(consumer, topic, list(partitions), since, timeout)
    ranges: dict[int, tuple[int, int]] = {}
    for partition in partitions:
        _low, high = watermarks(consumer, topic, partition, timeout=timeout)
        if starts[partition] < high:
            ranges[partition] = (starts[partition], high)
    return ranges


def _start_offsets(
    consumer: Consumer, topic: str, partitions: list[int], since: datetime | None, timeout: float
) -> dict[int, int]:
    """Where to start reading each partition: its first offset, or the first at or after ``since``."""
    if since is None:
        return {p: watermarks(consumer, topic, p, timeout=timeout)[0] for p in partitions}
    millis = int(since.timestamp() * 1000)
    found = consumer.offsets_for_times([TopicPartition(topic, p, millis) for p in partitions], timeout=timeout)
    starts: dict[int, int] = {}
    for tp in found:
        # -1 (OFFSET_END): no message at or after ``since``: nothing to read there.
        starts[tp.partition] = (
            watermarks(consumer, topic, tp.partition, timeout=timeout)[1]
            if tp.offset in (-1, OFFSET_END)
            else tp.offset
        )
    return starts
