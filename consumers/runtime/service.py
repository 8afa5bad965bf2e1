"""The department consumer: consume a batch, decode, dispatch, commit effects + outcomes + offsets, then Kafka.

Order of a batch, and why it is safe at every instant:

1. decode each message; one that cannot be decoded becomes a dead letter (PoisonMessage);
2. in ONE database transaction: each event goes through ``dispatch`` (agreement; an event id that already has an
   outcome is skipped, so a redelivery applies once; an entry version already held by another event is a duplicate
   if the content is the same and a ``conflicting-entry-version`` dead letter if not; each new event applied, its
   outcome recorded), then the next offset per partition is stored. The work is set-based: one query reads the
   outcomes and entry versions the whole batch is checked against, outcome and acknowledgement rows are written
   with one ``execute_many`` each. Events run without savepoints, pipelined (``Transaction.pipelined``: on
   PostgreSQL a write does not wait for its result); if a rule or a statement fails for one (PermanentError, a bug,
   a rejected statement, whose error the pipeline may raise later), the transaction is rolled back and the batch
   run again unpipelined with a savepoint per event, so that failure undoes only its event and dead-letters it;
3. before that transaction commits, write the batch's dead letters and wait for the broker's acknowledgement;
4. commit the transaction; only then commit offsets to Kafka (for lag monitoring: the database is the truth, and
   on (re)assignment the consumer seeks to the offsets stored there).

A crash before step 4's database commit redoes the batch (nothing was applied); a crash after it resumes from the
stored offsets (nothing is applied twice). A dead letter can be written twice if a crash falls between 3 and 4;
its headers carry the original offset, so that duplicate is recognisable.

An outage (the database or the schema registry unreachable) is waited out, however long, with backoff: never a dead
letter, never an exit. While it waits the consumer pauses its partitions and keeps polling, so it stays in its
group (``max.poll.interval.ms`` is not exceeded) and the rebalance protocol keeps working; ``/readyz`` and
``civreg_store_up`` show the outage, and each retry is logged.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_STORED,
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from tenacity import Retrying, retry_if_exception_type, wait_exponential_jitter

from civreg.cluster import committed_log_ranges
from civreg.codec_from_settings import open_codec
from civreg.kafka_config import admin_config, department_consumer_config, producer_config
from civreg.logs import get_logger
from civreg.settings import Settings
from civreg.stopping import install_stop_handlers, stop_requested, stop_signal
from consumers.runtime.agreements import WITHDRAWAL_HEADER, Agreement, Withdrawal, agreement_for
from consumers.runtime.batches import take_batch
from consumers.runtime.dead_letters import DeadLetter, DeadLetterWriter
from consumers.runtime.department import Department
from consumers.runtime.dispatch import Dispatched, EventFailed, dispatch
from consumers.runtime.errors import PermanentError, PoisonMessage, TransientError
from consumers.runtime.outcomes import Outcome
from consumers.runtime.registry_outage import RegistryOutage
from consumers.runtime.store import StatementError, Store
from schemas.codec import Codec, DecodeError, ResolverUnavailable
from schemas.models import Event, RegistrationVoided

__all__ = ["BatchReport", "DepartmentConsumer", "EventOutcome"]

log = get_logger(__name__)


@dataclass(frozen=True)
class EventOutcome:
    """One event's recorded outcome, as committed (for acknowledgements and metrics; no personal data)."""

    event_id: str
    event_type: str
    entry_key: str
    version: int
    outcome: Outcome
    note: str
    topic: str
    partition: int
    offset: int
    recorded_at: datetime
    published_at: datetime | None
    handler_seconds: float


@dataclass
class BatchReport:
    """What one committed batch did; passed to listeners (metrics, acknowledgements, progress, tests)."""

    messages: int = 0
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    duplicates: int = 0
    dead_letters: int = 0
    dead_letter_reasons: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    seconds: float = 0.0
    next_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    events: list[EventOutcome] = field(default_factory=list)
    withheld: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Events the data-sharing agreement kept from the department, per (event type, reason): not outcomes."""


BatchListener = Callable[[BatchReport], None]


@dataclass
class _Decoded:
    message: Message
    event: Event | None
    poison: PoisonMessage | None


class DepartmentConsumer:
    """Runs one department against the registration topics until stopped (or until caught up)."""

    def __init__(
        self,
        department: Department[Any],
        settings: Settings,
        store: Store,
        *,
        codec: Codec | None = None,
        batch_size: int = 500,
        poll_timeout: float = 0.5,
        max_attempts: int | None = None,
        agreement: Agreement | None = None,
    ) -> None:
        department.check_complete()
        self.agreement = agreement or agreement_for(department.name, settings.config_files.agreements_dir)
        if problems := self.agreement.problems(department):
            raise ValueError("; ".join(problems))
        self.department = department
        self.settings = settings
        self.store = store
        self.codec = codec or open_codec(settings)  # the registry when there is one (civreg.codec_from_settings)
        self.batch_size = batch_size
        self.poll_timeout = poll_timeout
        self.max_attempts = max_attempts  # None: retry a transient failure until it passes or the consumer stops
        self.totals = BatchReport()
        self._listeners: list[BatchListener] = []
        self._stopping = False
        self._assigned = False
        self._owned: set[tuple[str, int]] = set()
        self._applied_to: dict[tuple[str, int], int] = {}  # held partitions' stored next offsets, as last known
        prefix = settings.topic_prefix
        self._closed = False
        self._consumer = Consumer(
            department_consumer_config(settings, department.group_id(prefix), role=department.name)
        )
        self._admin: AdminClient | None = None  # for the caught-up check: every partition's log end
        self._held: list[Message] | None = None  # a batch waiting for the schema registry, its partitions paused
        self._registry_outage = RegistryOutage(self._consumer)
        self._waiting_said_at = -1e9
        self._member_id: str | None = None
        self._dead_letters = DeadLetterWriter(
            producer_config(settings, role=f"dead-letters-{department.name}"),
            department.dead_letter_topic(prefix),
            department.name,
        )
        self._log = log.bind(department=department.name)

    # Lifecycle ---------------------------------------------------------------------------------------------

    def on_batch_committed(self, listener: BatchListener) -> None:
        """Call ``listener`` after each batch's database commit (before the Kafka offset commit)."""
        self._listeners.append(listener)

    def stop(self) -> None:
        """Finish the current batch, then return from ``run``."""
        self._stopping = True

    @property
    def _should_stop(self) -> bool:
        """Asked to stop: by ``stop()``, or by SIGTERM/SIGINT through ``civreg.stopping``."""
        return self._stopping or stop_requested()

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT finish the batch in hand and exit cleanly (``civreg.stopping``; idempotent)."""
        install_stop_handlers()

    def run(self, *, until_caught_up: bool = False, max_idle_seconds: float | None = None) -> BatchReport:
        """Consume until stopped; with ``until_caught_up``, return once the store has read every partition of the
        department's topics to its end, whoever holds them now (``_caught_up``)."""
        topics = self.department.topics(self.settings.topic_prefix)
        self._consumer.subscribe(topics, on_assign=self._on_assign, on_revoke=self._on_revoke)
        self._log.info("consuming", topics=topics, group=self.department.group_id(self.settings.topic_prefix))
        idle_since = time.monotonic()
        try:
            while not self._should_stop:
                if self._held is not None:
                    self._poll_while_held()
                    idle_since = time.monotonic()
                    continue
                # The first record ends the wait; the rest is what has arrived (``consumers.runtime.batches``).
                messages = take_batch(self._consumer, self.batch_size, self.poll_timeout)
                records = [message for message in messages if self._is_record(message)]
                if records:
                    self._process(records)
                    idle_since = time.monotonic()
                    continue
                self._store_positions_past_markers()
                if until_caught_up and self._caught_up(topics):
                    break
                if max_idle_seconds is not None and time.monotonic() - idle_since > max_idle_seconds:
                    break
            if stop_requested():
                self._log.info("stopping", signal=stop_signal())
        finally:
            self.close()
        return self.totals

    def close(self) -> None:
        """Leave the group and release clients (idempotent)."""
        if not self._closed:
            self._closed = True
            self._consumer.close()
            self._dead_letters.close()
            self._admin = None
            self._log.info("stopped", **_summary(self.totals))

    # Assignment: the database's offsets are the truth ------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        try:
            stored: dict[tuple[str, int], int] | None = self.store.stored_offsets()
        except TransientError as exc:
            # The database is away (an outage being waited out): start from the group's committed offsets, which
            # are never ahead of the database's (they are committed after it); what is read again is skipped by
            # event id.
            self._log.warning("assigned-from-group-offsets", error=str(exc))
            stored = None
        for partition in partitions:
            if stored is None:
                partition.offset = OFFSET_STORED
                continue
            # A partition this database has never read starts at the beginning: a new department back-fills.
            partition.offset = stored.get((partition.topic, partition.partition), OFFSET_BEGINNING)
            if partition.offset >= 0:
                self._applied_to[(partition.topic, partition.partition)] = partition.offset
        consumer.incremental_assign(partitions)
        if self._held is not None:  # waiting for the registry: new partitions wait too, in order
            consumer.pause(partitions)
        self._member_id = consumer.memberid()
        self._owned.update((p.topic, p.partition) for p in partitions)
        self._assigned = True
        self._log.info("assigned", partitions=[f"{p.topic}[{p.partition}]@{p.offset}" for p in partitions])

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._held is not None:  # their new holder reads them from the stored offsets
            gone = {(p.topic, p.partition) for p in partitions}
            self._held = [message for message in self._held if (message.topic(), message.partition()) not in gone]
        consumer.incremental_unassign(partitions)
        # Not ready while it holds no partitions. Counted here, not asked of the client: on close() a static
        # member's handle is already being destroyed when this runs, and asking it raises.
        self._owned.difference_update((p.topic, p.partition) for p in partitions)
        for p in partitions:
            self._applied_to.pop((p.topic, p.partition), None)
        self._assigned = bool(self._owned)
        self._log.info("revoked", partitions=[f"{p.topic}[{p.partition}]" for p in partitions])

    def _store_positions_past_markers(self) -> None:
        """When idle, store (and commit) each held partition's position where it is past the stored offset.

        A transactional writer ends each transaction with a commit marker: a control record that takes an offset
        but is never delivered. The store's next offset then stops at the marker, one short of the log end, and
        lag, alerts and ``--until-caught-up`` would wait for it forever. The consumer's position moves past
        markers (and aborted records); here, with no batch in hand, everything before it has been applied, so
        the position is the true next offset. Stored in the shared store, so every member of the group sees it.
        """
        assignment = self._consumer.assignment()
        if not assignment or self._held is not None:
            return
        ahead = {
            (tp.topic, tp.partition): tp.offset
            for tp in self._consumer.position(assignment)
            if tp.offset > self._applied_to.get((tp.topic, tp.partition), 0)  # no position yet: negative
        }
        if not ahead:  # the usual idle poll: no store round trip
            return
        try:
            with self.store.transaction() as transaction:
                for (topic, partition), offset in ahead.items():
                    transaction.save_offset(topic, partition, offset)
        except TransientError as exc:  # nothing lost: the next idle poll tries again
            self._log.warning("store-unavailable", doing="storing positions past commit markers", error=str(exc))
            return
        self._applied_to.update(ahead)
        self._commit_to_kafka(ahead)
        self._log.debug("stored-past-markers", partitions=len(ahead))

    def _caught_up(self, topics: list[str]) -> bool:
        """True when the store's offset has reached the last stable offset of EVERY partition of ``topics``.

        Not only the assigned ones: after a crash the group may still give some partitions to the dead member
        until its session times out, and "caught up" on half the log is how a back-fill stops early. A partition
        never read counts from its log start (the low watermark: retention may have deleted the beginning). The
        store is the truth, not the fetch position: what is read but not committed is not caught up. Commit
        markers of transactional writers are passed by ``_store_positions_past_markers`` (each member stores its
        own partitions' positions); for a partition held here the consumer's position counts too, so a marker
        behind the last batch never makes this wait.
        """
        try:
            stored = dict(self.store.stored_offsets())
        except TransientError:
            return False  # the database is away: not caught up until it answers
        assignment = self._consumer.assignment()
        if self._held is None:  # everything delivered before the position is applied
            for tp in self._consumer.position(assignment) if assignment else []:
                key = (tp.topic, tp.partition)
                stored[key] = max(stored.get(key, tp.offset), tp.offset)
        # Cheap first: an assigned partition behind by the fetcher's cached watermark means not yet.
        for partition in assignment:
            low, high = self._consumer.get_watermark_offsets(partition, cached=True)
            if low >= 0 and high > max(stored.get((partition.topic, partition.partition), low), low):
                return False
        ends = self._log_ends(topics)
        behind: dict[tuple[str, int], int] = {}
        for key, (low, high) in ends.items():
            position = max(stored.get(key, low), low)  # below the log start: retention deleted the rest
            if position < high:
                behind[key] = high - position
        if not behind:
            return True
        assigned = {(p.topic, p.partition) for p in assignment}
        elsewhere = sorted(key for key in behind if key not in assigned)
        now = time.monotonic()
        if elsewhere and now - self._waiting_said_at >= 5.0:
            self._waiting_said_at = now
            self._log.info(
                "waiting-for-partitions-held-elsewhere",
                partitions=[f"{topic}[{partition}]" for topic, partition in elsewhere],
                messages_behind=sum(behind[key] for key in elsewhere),
                detail="not caught up: another (or a dead) member of the group holds these partitions until it "
                "releases them or its session times out",
            )
        return False

    def _log_ends(self, topics: list[str]) -> dict[tuple[str, int], tuple[int, int]]:
        """(log start, log end) of every partition of ``topics``, read committed, asked of the brokers."""
        if self._admin is None:
            self._admin = AdminClient(admin_config(self.settings))
        return committed_log_ranges(self._admin, topics)

    # One batch ---------------------------------------------------------------------------------------------

    def _is_record(self, message: Message) -> bool:
        error = message.error()
        if error is None:
            return True
        if error.code() == KafkaError._PARTITION_EOF:
            return False
        if error.fatal() or not error.retriable():
            raise KafkaException(error)
        self._log.warning("kafka-error", error=error.str())
        return False

    def _decode(self, message: Message) -> _Decoded:
        try:
            event = self.codec.decode(message.value())
            if isinstance(event, RegistrationVoided) and (WITHDRAWAL_HEADER, b"true") in (message.headers() or []):
                event = Withdrawal(**dict(event))  # the router's withdrawal of a birth corrected to a stillbirth
            return _Decoded(message, event, None)
        except DecodeError as exc:
            return _Decoded(message, None, PoisonMessage(exc.reason, exc.detail))

    def _decode_batch(self, messages: Sequence[Message]) -> list[_Decoded] | None:
        """Decode every message, or None while the schema registry cannot be asked about an id not cached yet
        (never dead-letter for that: the id may well be valid). Ids already met decode from the codec's cache
        whether the registry answers or not."""
        try:
            return [self._decode(message) for message in messages]
        except ResolverUnavailable as exc:
            self._log.warning(
                "schema-registry-unavailable",
                attempt=self._registry_outage.attempts + 1,
                error=str(exc),
                detail="partitions paused; the batch is retried while the consumer keeps polling",
            )
            return None

    def _wait_in_group(self, seconds: float) -> None:
        """Back off for ``seconds`` (less if stopped) while polling with every partition paused.

        Polling keeps this member in its group however long an outage lasts, and serves rebalances. A record that
        a poll returns anyway (a partition assigned meanwhile, fetched before its pause) is not dropped: its
        partition is rewound to it before the partitions resume.
        """
        deadline = time.monotonic() + seconds
        rewind: dict[tuple[str, int], int] = {}
        try:
            while not self._stopping and time.monotonic() < deadline:
                assignment = self._consumer.assignment()
                if assignment:
                    self._consumer.pause(assignment)
                timeout = min(0.2, max(deadline - time.monotonic(), 0.0))
                for message in self._consumer.consume(self.batch_size, timeout):
                    if self._is_record(message):
                        topic, partition, offset = _position(message)
                        rewind[(topic, partition)] = min(offset, rewind.get((topic, partition), offset))
        finally:
            assignment = self._consumer.assignment()
            held = {(tp.topic, tp.partition) for tp in assignment}
            for (topic, partition), offset in rewind.items():
                if (topic, partition) in held:
                    self._consumer.seek(TopicPartition(topic, partition, offset))
            if assignment:
                self._consumer.resume(assignment)

    def _process(self, messages: Sequence[Message]) -> None:
        decoded = self._decode_batch(messages)
        if decoded is None:
            self._hold(messages)
            return
        self._apply_and_commit(decoded)

    def _hold(self, messages: Sequence[Message]) -> None:
        """Keep the batch and pause every assigned partition until the registry answers.

        Polling goes on meanwhile (``_poll_while_held``), so the group never sees this member exceed
        ``max.poll.interval.ms`` and evict it; paused partitions fetch nothing, and on resume fetching continues
        after the held batch. A stop while holding applies nothing: the batch is read again from the stored offsets.
        """
        self._held = list(messages)
        self._registry_outage.failed()

    def _poll_while_held(self) -> None:
        assert self._held is not None
        wait = min(self.poll_timeout, self._registry_outage.until_retry())
        # Keeps the membership alive; a partition assigned and paused in the same rebalance may still hand over
        # what it had fetched: it joins the held batch, after what is already there.
        for message in self._consumer.consume(self.batch_size, wait):
            if self._is_record(message):
                self._held.append(message)
        if self._should_stop or not self._registry_outage.due:
            return
        held = self._held
        decoded = self._decode_batch(held) if held else []
        if decoded is None:
            self._registry_outage.failed()  # pauses partitions assigned meanwhile too; a longer backoff
            return
        self._held = None
        if decoded:
            self._apply_and_commit(decoded)
        self._registry_outage.recovered()
        self._log.info("schema-registry-back", detail="partitions resumed")

    def _apply_and_commit(self, decoded: list[_Decoded]) -> None:
        retrying = Retrying(
            retry=retry_if_exception_type(TransientError),
            wait=wait_exponential_jitter(multiplier=0.2, max=10),
            stop=lambda state: (
                self._stopping or (self.max_attempts is not None and state.attempt_number >= self.max_attempts)
            ),
            sleep=self._wait_in_group,
            reraise=True,
            before_sleep=lambda state: self._log.warning(
                "batch-retry",
                attempt=state.attempt_number,
                error_class=type(state.outcome.exception()).__name__ if state.outcome else None,
                # Our TransientError texts name the engine, the error class and SQLSTATE: no row values.
                error=str(state.outcome.exception()) if state.outcome else None,
            ),
        )
        started = time.monotonic()
        try:
            report = retrying(self._apply_batch, decoded)
        except TransientError:
            if self._stopping:  # stopped while the database was away: nothing applied, the batch is read again
                return
            raise
        report.retries = retrying.statistics.get("attempt_number", 1) - 1
        report.seconds = time.monotonic() - started
        for listener in self._listeners:
            listener(report)
        self._applied_to.update(report.next_offsets)
        self._commit_to_kafka(report.next_offsets)
        self._accumulate(report)

    def _apply_batch(self, decoded: list[_Decoded]) -> BatchReport:
        """The batch pipelined without per-event savepoints; if a rule or a statement fails for one event (the
        statement's error may surface later in the pipeline), all of it again unpipelined with savepoints."""
        try:
            return self._apply_batch_once(decoded, isolated=False)
        except (EventFailed, StatementError):
            self._log.info("batch-rerun-with-savepoints", messages=len(decoded))
            return self._apply_batch_once(decoded, isolated=True)

    def _apply_batch_once(self, decoded: list[_Decoded], *, isolated: bool) -> BatchReport:
        report = BatchReport(messages=len(decoded))
        letters: list[DeadLetter] = []
        with self.store.transaction() as transaction, ExitStack() as pipeline:
            if not isolated:  # writes do not wait for their results; an error surfaces later, so no savepoints
                pipeline.enter_context(transaction.pipelined())
            # One query for every outcome and entry version the batch's events will be checked against.
            events = [item.event for item in decoded if item.event is not None]
            transaction.preload([str(event.event_id) for event in events], [event.entry.key for event in events])
            for item in decoded:
                message = item.message
                topic, partition, offset = _position(message)
                report.next_offsets[(topic, partition)] = offset + 1
                if item.poison is not None:
                    letters.append(_letter(message, item.poison))
                    transaction.record_undecodable(
                        topic=topic,
                        partition=partition,
                        offset=offset,
                        reason=item.poison.reason,
                        error_class=type(item.poison).__name__,
                    )
                    report.outcomes[("(undecodable)", Outcome.DEAD_LETTERED.value)] += 1
                    report.dead_letter_reasons[item.poison.reason] += 1
                    self._log.warning(
                        "dead-lettered",
                        topic=topic,
                        partition=partition,
                        offset=offset,
                        reason=item.poison.reason,
                    )
                    continue
                assert item.event is not None
                done = dispatch(
                    self.department,
                    self.agreement,
                    transaction,
                    item.event,
                    topic=topic,
                    partition=partition,
                    offset=offset,
                    isolated=isolated,
                )
                event = done.event
                if done.withheld is not None:
                    report.withheld[(event.event_type, done.withheld)] += 1
                    continue
                if done.result is None:  # the same event again: its outcome stands
                    report.duplicates += 1
                    continue
                if done.duplicate_of is not None:  # the same content under a new id: its own outcome, the first's
                    self._log.info("duplicate-content", event_id=str(event.event_id), same_as=done.duplicate_of)
                result = done.result
                if done.error is not None:
                    letters.append(self._dead_letter(message, event, done))
                report.outcomes[(event.event_type, result.outcome.value)] += 1
                if result.outcome is Outcome.DEAD_LETTERED:
                    report.dead_letter_reasons[done.reason] += 1
                report.events.append(
                    EventOutcome(
                        event_id=str(event.event_id),
                        event_type=event.event_type,
                        entry_key=event.entry.key,
                        version=event.version,
                        outcome=result.outcome,
                        note=result.note,
                        topic=topic,
                        partition=partition,
                        offset=offset,
                        recorded_at=event.recorded_at,
                        published_at=_message_time(message),
                        handler_seconds=done.handler_seconds,
                    )
                )
            transaction.flush()
            transaction.save_offsets(report.next_offsets)
            pipeline.close()  # every result in, any error raised, before dead letters leave the database
            self._dead_letters.write(letters)
            report.dead_letters = len(letters)
        return report

    def _dead_letter(self, message: Message, event: Event, done: Dispatched) -> DeadLetter:
        assert done.error is not None
        letter = _letter(message, done.error, reason=done.reason, event=event)
        self._log.warning(
            "dead-lettered",
            event_id=str(event.event_id),
            topic=message.topic(),
            partition=message.partition(),
            offset=message.offset(),
            reason=done.reason,
            error_class=type(done.error).__name__,
        )
        # The dead letter holds what this department may hold: the event as its agreement minimised it.
        minimised = self._encode_for_dead_letter(event, letter.topic)
        return letter if minimised is None else replace(letter, value=minimised)

    def _encode_for_dead_letter(self, event: Event, topic: str) -> bytes | None:
        try:
            return self.codec.encode(event, topic)
        except Exception as exc:  # the registry may be down: keep the original bytes rather than lose the letter
            self._log.warning("dead-letter-not-minimised", error_class=type(exc).__name__)
            return None

    def _commit_to_kafka(self, next_offsets: dict[tuple[str, int], int]) -> None:
        offsets = [TopicPartition(topic, partition, offset) for (topic, partition), offset in next_offsets.items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException as exc:  # the stored offsets are the truth; the group's are for lag monitoring
            self._log.warning("offset-commit-failed", error=str(exc))

    def _accumulate(self, report: BatchReport) -> None:
        self.totals.messages += report.messages
        self.totals.outcomes.update(report.outcomes)
        self.totals.duplicates += report.duplicates
        self.totals.dead_letters += report.dead_letters
        self.totals.dead_letter_reasons.update(report.dead_letter_reasons)
        self.totals.retries += report.retries
        self.totals.seconds += report.seconds
        self.totals.next_offsets.update(report.next_offsets)
        self.totals.withheld.update(report.withheld)

    # Operators' view ---------------------------------------------------------------------------------------

    @property
    def assigned(self) -> bool:
        """True once the group has given this consumer its partitions (readiness)."""
        return self._assigned and not self._closed

    @property
    def waiting_for_registry(self) -> bool:
        """True while a batch waits for the schema registry (its partitions paused, the consumer still polling)."""
        return self._held is not None

    @property
    def member_id(self) -> str | None:
        """This consumer's member id in its group at its last assignment (a new one means it was evicted or
        forgotten and joined again). Read in the consume thread: librdkafka's own call may block another thread."""
        return self._member_id

    @property
    def stopping(self) -> bool:
        """True once asked to stop (``stop()``, SIGTERM/SIGINT): a run that returned was stopped, not caught up."""
        return self._should_stop

    def lag(self) -> dict[tuple[str, int], int]:
        """Messages not yet applied per assigned partition, from the fetcher's cached high watermarks."""
        if self._closed or not self._assigned:
            return {}
        stored = self.store.stored_offsets()
        lag: dict[tuple[str, int], int] = {}
        for partition in self._consumer.assignment():
            low, high = self._consumer.get_watermark_offsets(partition, cached=True)
            if high < 0:
                continue
            position = stored.get((partition.topic, partition.partition), low)
            lag[(partition.topic, partition.partition)] = max(high - position, 0)
        return lag


def _message_time(message: Message) -> datetime | None:
    """When the broker (or producer) stamped the message, if it did."""
    kind, millis = message.timestamp()
    if kind == TIMESTAMP_NOT_AVAILABLE or millis < 0:
        return None
    return datetime.fromtimestamp(millis / 1000, UTC)


def _position(message: Message) -> tuple[str, int, int]:
    """Topic, partition and offset of a consumed record (always set on records, unlike on produced messages)."""
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    if topic is None or partition is None or offset is None:
        raise KafkaException(KafkaError(KafkaError._BAD_MSG, "consumed message without topic/partition/offset"))
    return topic, partition, offset


def _letter(message: Message, exc: Exception, *, reason: str | None = None, event: Event | None = None) -> DeadLetter:
    topic, partition, offset = _position(message)
    return DeadLetter(
        topic=topic,
        partition=partition,
        offset=offset,
        key=message.key(),
        value=message.value(),
        reason=reason or str(getattr(exc, "reason", "unknown")),
        error_class=type(exc).__name__,
        # Our errors name the field and the rule; anything else (a bug) may quote data, so only its class is kept.
        error_message=str(exc) if isinstance(exc, PermanentError) else f"{type(exc).__name__} in a handler",
        event_id=None if event is None else str(event.event_id),
        event_type=None if event is None else event.event_type,
    )


def _summary(report: BatchReport) -> dict[str, Any]:
    return {
        "messages": report.messages,
        "duplicates": report.duplicates,
        "dead_letters": report.dead_letters,
        "outcomes": {f"{event_type}:{outcome}": count for (event_type, outcome), count in report.outcomes.items()},
    }
