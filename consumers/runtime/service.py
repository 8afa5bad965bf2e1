"""The department consumer: consume a batch, decode, dispatch, commit effects + outcomes + offsets, then Kafka.

Order of a batch, and why it is safe at every instant:

1. decode each message; one that cannot be decoded becomes a dead letter (PoisonMessage);
2. in ONE database transaction: each event goes through ``dispatch`` (agreement; an event id that already has an
   outcome is skipped, so a redelivery applies once; an entry version already held by another event is a duplicate
   if the content is the same and a ``conflicting-entry-version`` dead letter if not; each new event applied, its
   outcome recorded), then the next offset per partition is stored. The work is set-based: one query reads the
   outcomes and entry versions the whole batch is checked against, outcome and acknowledgement rows are written
   with one ``execute_many`` each. Events run without savepoints; if a rule fails for one (PermanentError or a
   bug), the transaction is rolled back and the batch run again with a savepoint per event, so that failure undoes
   only its event and dead-letters it;
3. before that transaction commits, write the batch's dead letters and wait for the broker's acknowledgement;
4. commit the transaction; only then commit offsets to Kafka (for lag monitoring: the database is the truth, and
   on (re)assignment the consumer seeks to the offsets stored there).

A crash before step 4's database commit redoes the batch (nothing was applied); a crash after it resumes from the
stored offsets (nothing is applied twice). A dead letter can be written twice if a crash falls between 3 and 4;
its headers carry the original offset, so that duplicate is recognisable.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from civreg.codecs import open_codec
from civreg.kafka_config import consumer_config, producer_config
from civreg.logs import get_logger
from civreg.settings import Settings
from consumers.runtime.agreements import Agreement, agreement_for
from consumers.runtime.dead_letters import DeadLetter, DeadLetterWriter
from consumers.runtime.department import Department
from consumers.runtime.dispatch import Dispatched, EventFailed, dispatch
from consumers.runtime.errors import PermanentError, PoisonMessage, TransientError
from consumers.runtime.outcomes import Outcome
from consumers.runtime.store import Store
from schemas.codec import Codec, DecodeError, ResolverUnavailable
from schemas.models import Event

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
        max_attempts: int = 8,
        agreement: Agreement | None = None,
    ) -> None:
        department.check_complete()
        self.agreement = agreement or agreement_for(department.name, settings.config_files.agreements_dir)
        if problems := self.agreement.problems(department):
            raise ValueError("; ".join(problems))
        self.department = department
        self.settings = settings
        self.store = store
        self.codec = codec or open_codec(settings)  # the registry when there is one (civreg.codecs)
        self.batch_size = batch_size
        self.poll_timeout = poll_timeout
        self.max_attempts = max_attempts
        self.totals = BatchReport()
        self._listeners: list[BatchListener] = []
        self._stopping = False
        self._assigned = False
        prefix = settings.topic_prefix
        self._closed = False
        self._consumer = Consumer(consumer_config(settings, department.group_id(prefix), role=department.name))
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

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT finish the batch in hand and exit cleanly."""

        def handle(signum: int, _frame: FrameType | None) -> None:
            self._log.info("stopping", signal=signal.Signals(signum).name)
            self.stop()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    def run(self, *, until_caught_up: bool = False, max_idle_seconds: float | None = None) -> BatchReport:
        """Consume until stopped; with ``until_caught_up``, return once every assigned partition is at its end."""
        topics = self.department.topics(self.settings.topic_prefix)
        self._consumer.subscribe(topics, on_assign=self._on_assign, on_revoke=self._on_revoke)
        self._log.info("consuming", topics=topics, group=self.department.group_id(self.settings.topic_prefix))
        idle_since = time.monotonic()
        try:
            while not self._stopping:
                messages = self._consumer.consume(self.batch_size, self.poll_timeout)
                records = [message for message in messages if self._is_record(message)]
                if records:
                    self._process(records)
                    idle_since = time.monotonic()
                    continue
                if until_caught_up and self._caught_up():
                    break
                if max_idle_seconds is not None and time.monotonic() - idle_since > max_idle_seconds:
                    break
        finally:
            self.close()
        return self.totals

    def close(self) -> None:
        """Leave the group and release clients (idempotent)."""
        if not self._closed:
            self._closed = True
            self._consumer.close()
            self._dead_letters.close()
            self._log.info("stopped", **_summary(self.totals))

    # Assignment: the database's offsets are the truth ------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        stored = self.store.stored_offsets()
        for partition in partitions:
            # A partition this database has never read starts at the beginning: a new department back-fills.
            partition.offset = stored.get((partition.topic, partition.partition), OFFSET_BEGINNING)
        consumer.incremental_assign(partitions)
        self._assigned = True
        self._log.info("assigned", partitions=[f"{p.topic}[{p.partition}]@{p.offset}" for p in partitions])

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        consumer.incremental_unassign(partitions)
        self._assigned = bool(consumer.assignment())  # not ready while it holds no partitions
        self._log.info("revoked", partitions=[f"{p.topic}[{p.partition}]" for p in partitions])

    def _caught_up(self) -> bool:
        if not self._assigned:
            return False
        assignment = self._consumer.assignment()
        if not assignment:
            return False
        stored = self.store.stored_offsets()
        positions = self._consumer.position(assignment)
        for partition in positions:
            # The fetcher's cached watermarks are fresh (we only ask after an empty poll); a broker round trip per
            # partition costs ~0.4 s, so it is the fallback for partitions not fetched yet.
            low, high = self._consumer.get_watermark_offsets(partition, cached=True)
            if high < 0:
                low, high = self._consumer.get_watermark_offsets(partition, timeout=5.0, cached=False)
            position = partition.offset
            if position < 0:
                position = stored.get((partition.topic, partition.partition), low)
            if position < high:
                return False
        return True

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
            return _Decoded(message, self.codec.decode(message.value()), None)
        except DecodeError as exc:
            return _Decoded(message, None, PoisonMessage(exc.reason, exc.detail))

    def _decode_batch(self, messages: Sequence[Message]) -> list[_Decoded] | None:
        """Decode every message. While the schema registry cannot be asked about an id not cached yet, wait and
        retry with backoff until stopped (None): never dead-letter for that, the id may well be valid. Ids already
        met decode from the codec's cache whether the registry answers or not."""
        retrying = Retrying(
            retry=retry_if_exception_type(ResolverUnavailable),
            wait=wait_exponential_jitter(multiplier=0.5, max=10),
            stop=lambda _state: self._stopping,
            sleep=self._sleep_unless_stopping,
            reraise=True,
            before_sleep=lambda state: self._log.warning(
                "schema-registry-unavailable",
                attempt=state.attempt_number,
                error=str(state.outcome.exception()) if state.outcome else None,
            ),
        )
        try:
            return retrying(lambda: [self._decode(message) for message in messages])
        except ResolverUnavailable:
            return None

    def _sleep_unless_stopping(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stopping and time.monotonic() < deadline:
            time.sleep(min(0.1, max(deadline - time.monotonic(), 0.0)))

    def _process(self, messages: Sequence[Message]) -> None:
        decoded = self._decode_batch(messages)
        if decoded is None:  # stopped while the registry was away: nothing applied, the batch is read again
            return
        retrying = Retrying(
            retry=retry_if_exception_type(TransientError),
            wait=wait_exponential_jitter(multiplier=0.2, max=10),
            stop=stop_after_attempt(self.max_attempts),
            reraise=True,
            before_sleep=lambda state: self._log.warning(
                "batch-retry",
                attempt=state.attempt_number,
                error=type(state.outcome.exception()).__name__ if state.outcome else None,
            ),
        )
        started = time.monotonic()
        report = retrying(self._apply_batch, decoded)
        report.retries = retrying.statistics.get("attempt_number", 1) - 1
        report.seconds = time.monotonic() - started
        for listener in self._listeners:
            listener(report)
        self._commit_to_kafka(report.next_offsets)
        self._accumulate(report)

    def _apply_batch(self, decoded: list[_Decoded]) -> BatchReport:
        """The batch without per-event savepoints; if a rule fails for one event, all of it again with them."""
        try:
            return self._apply_batch_once(decoded, isolated=False)
        except EventFailed:
            self._log.info("batch-rerun-with-savepoints", messages=len(decoded))
            return self._apply_batch_once(decoded, isolated=True)

    def _apply_batch_once(self, decoded: list[_Decoded], *, isolated: bool) -> BatchReport:
        report = BatchReport(messages=len(decoded))
        letters: list[DeadLetter] = []
        with self.store.transaction() as transaction:
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
                if done.result is None:
                    report.duplicates += 1
                    if done.duplicate_of != str(event.event_id):
                        self._log.info("duplicate-content", event_id=str(event.event_id), same_as=done.duplicate_of)
                    continue
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
