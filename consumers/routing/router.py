"""The router: reads the registration topics and writes each department only what its agreement allows.

Why a router: a department's process must never hold what its agreement withholds, so the projection happens before
anything reaches it. For each department the router runs a *lane*: a consumer in its own group
(``<router group>.<department>``, on the registers the agreement covers) and a transactional producer
(``transactional.id`` the same name). Per batch, in ONE Kafka transaction (consume-transform-produce):

1. each agreed event, projected to its agreed fields (``consumers.runtime.projection``), to the department's topic,
   keyed by entry key (a birth corrected to a stillbirth becomes a withdrawal, header ``civreg-withdrawal``);
2. one disclosure per delivery to the ledger topic (``consumers.routing.disclosures``), keyed by entry key;
3. a message that cannot be decoded to the router's dead-letter topic, with the reason in headers;
4. the consumer's offsets (``send_offsets_to_transaction`` with its group metadata).

Readers use ``read_committed``, so a router killed at any instant and restarted neither loses nor duplicates an event
on a department topic, and the ledger and the deliveries cannot disagree. A new department's lane has a new group,
which starts at the beginning of the registration topics: its topic is back-filled from the whole log.

A schema registry outage (a schema id not cached yet) aborts the batch's transaction; the lane then waits it out in
its group as the department consumer does (``consumers.runtime.registry_outage``: partitions paused, polling on,
retries with backoff), while the other lanes go on: never a dead letter, never an exit.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from civreg.cluster import committed_log_ranges
from civreg.codec_from_settings import open_codec
from civreg.kafka_config import admin_config, consumer_config, error_text, producer_config
from civreg.logs import get_logger
from civreg.settings import Settings
from consumers.routing.disclosures import Disclosure
from consumers.runtime.agreements import WITHDRAWAL_HEADER, Agreement, Withdrawal, load_agreements
from consumers.runtime.batches import take_batch
from consumers.runtime.dead_letters import DeadLetter
from consumers.runtime.projection import ProjectionWriter
from consumers.runtime.registry_outage import RegistryOutage
from schemas.codec import Codec, DecodeError, ResolverUnavailable, to_avro
from schemas.models import Event
from schemas.topics import (
    dead_letter_topic,
    department_topic,
    disclosure_topic,
    registration_topic,
    router_group,
)

__all__ = ["ROUTER", "WITHDRAWAL_HEADER", "Router", "RouterReport", "lane_group"]

log = get_logger(__name__)
ROUTER = "router"


def lane_group(department: str, prefix: str) -> str:
    """The router's consumer group (and transactional id) for one department."""
    return f"{router_group(prefix)}.{department}"


@dataclass
class RouterReport:
    """What the router did (no personal data): per department, events routed and withheld, dead letters."""

    routed: Counter[str] = field(default_factory=Counter)
    withheld: Counter[tuple[str, str]] = field(default_factory=Counter)
    dead_letters: Counter[str] = field(default_factory=Counter)
    transactions: int = 0
    transaction_seconds: float = 0.0


BatchListener = Callable[[str, RouterReport, float], None]


class _Decoded:
    """A decoded registration and, worked out on first use, its Avro record (the input of every lane's projection:
    one model dump per event, not one per delivery). Read only: projections copy before changing it."""

    __slots__ = ("_record", "event")

    def __init__(self, event: Event) -> None:
        self.event = event
        self._record: dict[str, Any] | None = None

    def record(self) -> dict[str, Any]:
        if self._record is None:
            self._record = to_avro(self.event)
        return self._record


class _SharedDecoder:
    """Decodes each registration once for every lane: the lanes read the same messages, mostly within one pass.

    Keyed by the message's bytes (the event is a function of them: the schema id is in them, and events are
    frozen), the most recent ``size`` kept. A message that does not decode is not kept: each lane dead-letters it.
    """

    def __init__(self, codec: Codec, size: int) -> None:
        self.codec = codec
        self.size = size
        self._events: dict[bytes, _Decoded] = {}

    def decode(self, data: bytes | None) -> _Decoded:
        if data is None:
            return _Decoded(self.codec.decode(data))
        decoded = self._events.get(data)
        if decoded is None:
            decoded = self._events[data] = _Decoded(self.codec.decode(data))
            if len(self._events) > self.size:
                del self._events[next(iter(self._events))]  # the oldest (dicts keep insertion order)
        return decoded


class _Lane:
    """One department: its consumer, its transactional producer, its agreement."""

    def __init__(
        self, agreement: Agreement, settings: Settings, codec: Codec, writer: ProjectionWriter, decoder: _SharedDecoder
    ) -> None:
        self.agreement = agreement
        self.department = agreement.department
        prefix = settings.topic_prefix
        self.group = lane_group(self.department, prefix)
        self.topics = sorted(registration_topic(register, prefix) for register in agreement.registers)
        self.topic = department_topic(self.department, prefix)
        self.ledger = disclosure_topic(prefix)
        self.dead_letters = dead_letter_topic(ROUTER, prefix)
        self.codec = codec
        self.decoder = decoder
        self.writer = writer
        self.consumer = Consumer(consumer_config(settings, self.group, role=f"router-{self.department}"))
        self.producer = Producer(
            producer_config(settings, role=f"router-{self.department}", **{"transactional.id": self.group})
        )
        self.producer.init_transactions(30)
        self.consumer.subscribe(self.topics)
        self.assigned = False
        self._started = 0.0
        self._offsets: dict[tuple[str, int], int] = {}
        self.registry_outage = RegistryOutage(self.consumer)

    def close(self) -> None:
        self.consumer.close()
        self.producer.flush(10)

    def route(self, messages: list[Message], report: RouterReport) -> None:
        """Route one batch in one transaction; an error aborts it and rewinds to the last committed offsets."""
        self.start(messages, report)
        self.commit(report)

    def start(self, messages: list[Message], report: RouterReport) -> None:
        """Begin the batch's transaction and write its deliveries, disclosures and dead letters (not yet visible to
        any read-committed reader); ``commit`` ends it. An error aborts it and rewinds."""
        self._started = time.monotonic()
        self.producer.begin_transaction()
        try:
            offsets: dict[tuple[str, int], int] = {}
            for message in messages:
                topic, partition, offset = message.topic(), message.partition(), message.offset()
                assert topic is not None and partition is not None and offset is not None
                offsets[(topic, partition)] = offset + 1
                self._route_one(message, report)
        except Exception:
            self.abort()
            raise
        self._offsets = offsets

    def commit(self, report: RouterReport) -> None:
        """Add the batch's offsets to its transaction and commit it (blocking calls that release the GIL, so lanes
        commit side by side); an error aborts it and rewinds."""
        try:
            self.producer.send_offsets_to_transaction(
                [TopicPartition(t, p, o) for (t, p), o in self._offsets.items()],
                self.consumer.consumer_group_metadata(),
                30,
            )
            self.producer.commit_transaction(30)
        except Exception:
            self.abort()
            raise
        report.transactions += 1
        report.transaction_seconds += time.monotonic() - self._started

    def abort(self) -> None:
        """Abort the open transaction and read again from what the last committed one stored."""
        self.producer.abort_transaction(30)
        self.rewind()

    def _route_one(self, message: Message, report: RouterReport) -> None:
        try:
            decoded = self.decoder.decode(message.value())
        except DecodeError as exc:
            # The headers every dead letter carries (``civreg dead-letters list -d router`` reads them), with the
            # lane that met it as ``civreg.department``: each lane of the message's register writes its own.
            letter = DeadLetter(
                topic=str(message.topic()),
                partition=message.partition() or 0,
                offset=message.offset() or 0,
                key=message.key(),
                value=message.value(),
                reason=exc.reason,
                error_class=type(exc).__name__,
                error_message=exc.detail,
            )
            self.producer.produce(
                self.dead_letters, key=letter.key, value=letter.value, headers=letter.headers(self.department)
            )
            report.dead_letters[exc.reason] += 1
            log.warning("dead-lettered", department=self.department, reason=exc.reason, offset=message.offset())
            return
        event = decoded.event
        withheld = self.agreement.withheld_because(event)
        if withheld is not None:
            report.withheld[(self.department, withheld)] += 1
            return
        entry_key = event.entry.key
        key = entry_key.encode()
        headers: list[tuple[str, str | bytes | None]]
        if self.writer.projects and not self.agreement.withdraws(event):
            # The fast path: the decoded event (validated once, by decoding) written with its projection's schema;
            # no minimised copy is built or validated again (see ProjectionWriter.project), and its Avro record is
            # made once for every lane.
            event_type = event.event_type
            value, fields = self.writer.project(self.agreement, event, decoded.record())
            headers = [("civreg.event_type", event_type)]
        else:  # a withdrawal, or no registry: the minimised event itself
            delivered = self.agreement.minimise(event)
            event_type = delivered.event_type
            value, fields = self.writer.encode(self.agreement, delivered), self.agreement.disclosed(delivered)
            headers = [("civreg.event_type", event_type)]
            if isinstance(delivered, Withdrawal):
                headers.append((WITHDRAWAL_HEADER, "true"))
        self.producer.produce(self.topic, key=key, value=value, headers=headers)
        disclosure = Disclosure(
            entry_key=entry_key,
            department=self.department,
            controller=self.agreement.controller,
            event_id=str(event.event_id),
            event_type=event_type,
            fields=tuple(fields),
            disclosed_at=datetime.now(UTC),
            legal_gateway=self.agreement.legal_gateway,
        )
        self.producer.produce(self.ledger, key=key, value=disclosure.to_json())
        report.routed[self.department] += 1

    def rewind(self) -> None:
        """After an abort, read again from the group's committed offsets (what the last transaction committed)."""
        assignment = self.consumer.assignment()
        if not assignment:
            return
        for committed in self.consumer.committed(assignment, timeout=30):
            offset = committed.offset if committed.offset >= 0 else 0
            self.consumer.seek(TopicPartition(committed.topic, committed.partition, offset))

    def caught_up(self, ends: dict[tuple[str, int], tuple[int, int]]) -> bool:
        """True when the lane has routed EVERY partition of its registration topics to ``ends`` (read committed).

        Every partition, not only the assigned ones: a lane that holds half its partitions (a rebalance, a dead
        member's session not yet expired) is not at the end of the log. Called only between batches, so nothing
        read is unrouted: a held partition's position counts (it moves past transactional markers and aborted
        records, which the committed offset stops short of), otherwise the committed offset, at least the log start.
        """
        mine = {key: bounds for key, bounds in ends.items() if key[0] in self.topics}
        if not mine or not {topic for topic, _ in mine} >= set(self.topics):
            return False  # a topic not in the metadata yet: not at its end
        reached: dict[tuple[str, int], int] = {}
        assignment = self.consumer.assignment()
        for tp in self.consumer.position(assignment) if assignment else []:
            if tp.offset >= 0:
                reached[(tp.topic, tp.partition)] = tp.offset
        behind = [key for key, (low, high) in mine.items() if max(reached.get(key, low), low) < high]
        if not behind:
            return True
        # One offset fetch for the partitions the position does not settle (not held, or not fetched yet).
        try:
            committed = self.consumer.committed([TopicPartition(t, p) for t, p in behind], timeout=10)
        except KafkaException as exc:  # e.g. offsets of a killed router's open transaction, not yet aborted
            log.info("caught-up-check-deferred", department=self.department, error=error_text(exc))
            return False
        for tp in committed:
            low, high = mine[(tp.topic, tp.partition)]
            if max(tp.offset, reached.get((tp.topic, tp.partition), low), low) < high:
                return False
        return True

    def lag(self) -> int:
        total = 0
        for partition in self.consumer.position(self.consumer.assignment()):
            low, high = self.consumer.get_watermark_offsets(partition, cached=True)
            if high >= 0:
                total += max(high - (partition.offset if partition.offset >= 0 else low), 0)
        return total


class Router:
    """Every department's lane, polled in turn until stopped (or, with ``until_caught_up``, until at the end).

    Each pass takes what every lane has already fetched, waiting on none (``consumers.runtime.batches``); only when
    all are idle does it wait, on one lane in turn, up to ``poll_timeout`` for its first record. That wait is short
    (20 ms) because a record arriving on another lane meanwhile waits for it: the old 0.2 s wait for a full batch
    on each of six lanes in turn held a record up to 1.2 s at steady load. The pass's transactions are then
    committed side by side (``_commit``), so a pass lasts about one lane's commit round trips, not six.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        agreements: dict[str, Agreement] | None = None,
        codec: Codec | None = None,
        batch_size: int = 500,
        poll_timeout: float = 0.02,
        check_interval: float = 1.0,
    ) -> None:
        self.settings = settings
        self.check_interval = check_interval
        self._checked_at = float("-inf")
        self._admin: AdminClient | None = None
        self.agreements = agreements or load_agreements(settings.config_files.agreements_dir)
        self.codec = codec or open_codec(settings)
        self.writer = ProjectionWriter(self.codec, settings.topic_prefix)
        self.batch_size = batch_size
        self.poll_timeout = poll_timeout
        self.totals = RouterReport()
        self._listeners: list[BatchListener] = []
        self._stopping = False
        self._pool: ThreadPoolExecutor | None = None  # commits the lanes' transactions side by side
        decoder = _SharedDecoder(self.codec, size=2 * batch_size * max(len(self.agreements), 1))
        self.lanes = [_Lane(a, settings, self.codec, self.writer, decoder) for _, a in sorted(self.agreements.items())]

    @property
    def ready(self) -> bool:
        """Every lane holds its partitions."""
        return all(lane.consumer.assignment() for lane in self.lanes)

    def on_batch(self, listener: BatchListener) -> None:
        """Call ``listener(department, batch report, transaction seconds)`` after each committed transaction."""
        self._listeners.append(listener)

    def lag(self) -> dict[str, int]:
        """Messages each department's lane has still to route."""
        return {lane.department: lane.lag() for lane in self.lanes}

    def lane_lag(self, department: str) -> int | None:
        """Messages one department's lane has still to route (None when the router has no such lane)."""
        return next((lane.lag() for lane in self.lanes if lane.department == department), None)

    def stop(self) -> None:
        """Finish the transaction in hand, then return from ``run``."""
        self._stopping = True

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT finish the transaction in hand and exit cleanly."""

        def handle(signum: int, _frame: FrameType | None) -> None:
            log.info("stopping", signal=signal.Signals(signum).name)
            self.stop()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    def run(self, *, until_caught_up: bool = False) -> RouterReport:
        """Route until stopped; with ``until_caught_up``, return once every lane is at the end of its topics."""
        log.info("routing", departments=[lane.department for lane in self.lanes])
        waits_on = 0
        try:
            while not self._stopping:
                # What every lane has already fetched, without waiting on any of them.
                started: list[tuple[_Lane, RouterReport]] = []
                waiting = False
                try:
                    for lane in self.lanes:
                        if self._waits_for_registry(lane, 0):
                            waiting = True
                            continue
                        messages = [m for m in take_batch(lane.consumer, self.batch_size, 0) if _is_record(m)]
                        if messages and (report := self._start(lane, messages)) is not None:
                            started.append((lane, report))
                except Exception:
                    for lane, _ in started:  # never leave a lane's transaction open behind an error
                        with contextlib.suppress(Exception):
                            lane.abort()
                    raise
                if started:
                    self._commit(started)
                    continue
                if not self.lanes:
                    continue
                if not waiting and until_caught_up and self._caught_up():
                    break
                # Idle: wait on one lane, in turn, until its first record or ``poll_timeout``. Short, because a
                # record arriving on another lane meanwhile waits for it (the router's latency when idle).
                lane = self.lanes[waits_on % len(self.lanes)]
                waits_on += 1
                if self._waits_for_registry(lane, self.poll_timeout):
                    continue
                messages = [m for m in take_batch(lane.consumer, self.batch_size, self.poll_timeout) if _is_record(m)]
                if messages and (report := self._start(lane, messages)) is not None:
                    self._commit([(lane, report)])
        finally:
            self.close()
        return self.totals

    def _caught_up(self) -> bool:
        """Every lane at the end of the whole log: one offsets query for all registration topics per check, and
        at most one check every ``check_interval`` seconds (each lane polls meanwhile, so nothing waits on it)."""
        now = time.monotonic()
        if now - self._checked_at < self.check_interval:
            return False
        self._checked_at = now
        ends = self.log_ends()
        return all(lane.caught_up(ends) for lane in self.lanes)

    def log_ends(self) -> dict[tuple[str, int], tuple[int, int]]:
        """(log start, last stable offset) of every partition of the registration topics the lanes read, in one
        metadata and one offsets round trip (read committed: a transaction still open is not yet the end)."""
        if self._admin is None:
            self._admin = AdminClient(admin_config(self.settings, role="router"))
        topics = sorted({topic for lane in self.lanes for topic in lane.topics})
        return committed_log_ranges(self._admin, topics)

    def _waits_for_registry(self, lane: _Lane, timeout: float) -> bool:
        """True while ``lane`` waits out a registry outage: its partitions are paused and this poll (at most
        ``timeout``) only keeps it in its group and serves rebalances; a record it returns anyway (a partition
        assigned meanwhile) is read again, since the retry starts from the committed offsets. When the backoff is
        up, the lane goes back to its committed offsets, fetches again and returns False (try the batch again)."""
        outage = lane.registry_outage
        if outage.waiting and not outage.due:
            lane.consumer.consume(self.batch_size, min(timeout, outage.until_retry()))
            return True
        if outage.due:
            lane.rewind()  # what was read before the pause, again, from the last committed transaction
            outage.resume()
        return False

    def _start(self, lane: _Lane, messages: list[Message]) -> RouterReport | None:
        """Begin ``lane``'s transaction for the batch. Without the registry (a schema id not cached yet) the
        transaction is aborted and the lane waits it out in its group (``RegistryOutage``, as the department consumer
        does): never a dead letter, never an exit, the other lanes go on; returns None then."""
        report = RouterReport()
        outage = lane.registry_outage
        try:
            lane.start(messages, report)
        except ResolverUnavailable as exc:  # aborted; the lane is back at its committed offsets
            retry_in = outage.failed()
            log.warning(
                "schema-registry-unavailable",
                department=lane.department,
                attempt=outage.attempts,
                retry_in_seconds=round(retry_in, 1),
                error=str(exc),
                detail="partitions paused; the batch is routed again from the committed offsets",
            )
            return None
        if outage.recovered():
            log.info("schema-registry-back", department=lane.department, detail="partitions resumed")
        return report

    def _commit(self, started: list[tuple[_Lane, RouterReport]]) -> None:
        """Commit the pass's transactions side by side: each is a few broker round trips (offsets to the group
        coordinator, the commit, its markers), which one after another made the router's pass, and so every
        record's wait, as long as all lanes' round trips added up. Each lane is still one transaction per batch."""
        if len(started) == 1:
            lane, report = started[0]
            lane.commit(report)
            self._account(lane, report)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=len(self.lanes), thread_name_prefix="router-commit")
        futures = [(lane, report, self._pool.submit(lane.commit, report)) for lane, report in started]
        errors = [error for _, _, future in futures if (error := future.exception()) is not None]
        for lane, report, future in futures:
            if future.exception() is None:
                self._account(lane, report)
        if errors:
            raise errors[0]

    def _account(self, lane: _Lane, report: RouterReport) -> None:
        self.totals.routed.update(report.routed)
        self.totals.withheld.update(report.withheld)
        self.totals.dead_letters.update(report.dead_letters)
        self.totals.transactions += report.transactions
        self.totals.transaction_seconds += report.transaction_seconds
        for listener in self._listeners:
            listener(lane.department, report, report.transaction_seconds)

    def close(self) -> None:
        """Release every lane's clients (idempotent)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        lanes, self.lanes = self.lanes, []
        for lane in lanes:
            lane.close()
        if lanes:
            log.info("stopped", routed=dict(self.totals.routed), transactions=self.totals.transactions)


def _is_record(message: Message) -> bool:
    error = message.error()
    if error is None:
        return True
    if error.code() == KafkaError._PARTITION_EOF:
        return False
    if error.fatal():
        raise KafkaException(error)
    log.warning("kafka-error", error=error.str())
    return False


def run_router(
    settings: Settings,
    *,
    until_caught_up: bool = False,
    handle_signals: bool = True,
    batch_size: int = 500,
    metrics_port: int | None = None,
) -> RouterReport:
    """Run the router from settings (``civreg route``): /metrics, /healthz, /readyz on ``metrics_port``."""
    from civreg.cluster import require_topics
    from civreg.metrics import Check, OperatorsEndpoint, default_metrics

    prefix = settings.topic_prefix
    agreements = load_agreements(settings.config_files.agreements_dir)
    topics = {registration_topic(r, prefix) for a in agreements.values() for r in a.registers}
    topics |= {department_topic(d, prefix) for d in agreements} | {disclosure_topic(prefix)}
    require_topics(settings, sorted(topics | {dead_letter_topic(ROUTER, prefix)}))
    router = Router(settings, agreements=agreements, batch_size=batch_size)
    if handle_signals:
        router.install_signal_handlers()
    metrics = default_metrics()

    def record(department: str, report: RouterReport, seconds: float) -> None:
        metrics.record_routing(
            department,
            routed=report.routed[department],
            withheld={reason: n for (_, reason), n in report.withheld.items()},
            dead_letters=dict(report.dead_letters),
            seconds=seconds,
            lag=router.lane_lag(department),  # this lane's only: every lane's per transaction cost 6x the calls
        )

    router.on_batch(record)
    port = settings.metrics_port if metrics_port is None else metrics_port
    if not port:
        return router.run(until_caught_up=until_caught_up)

    def ready() -> Check:
        return Check(True, "routing") if router.ready else Check(False, "waiting for partitions")

    with OperatorsEndpoint(metrics, port=port, host=settings.metrics_host, ready=ready):
        return router.run(until_caught_up=until_caught_up)
