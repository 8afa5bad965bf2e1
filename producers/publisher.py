"""Publish registration events to Kafka: the library a register office's system calls.

Why this shape:

- One topic per register and the entry reference as the key, so every event of one entry (registration,
  corrections, void) lands on one partition in publication order and departments apply them in order.
- Idempotence and ``acks=all`` come from ``producer_config``: a retried send can neither lose nor duplicate.
- ``publish`` only queues; delivery reports are served by ``poll(0)`` on each call and by ``flush``. A full local
  queue (``BufferError``) is back-pressure, not failure: we poll until librdkafka has room. No per-message flush,
  so throughput is librdkafka's, not one round trip per event.
- Failures are kept until ``flush`` raises them as one ``PublishError``. Its text names event ids, topics and
  Kafka's error, never names or identifiers: it reaches logs. Re-publishing a failed event is safe because
  consumers de-duplicate by ``event_id``.
- The message timestamp is left to the producer (time of publishing), not ``recorded_at``: a back-fill of old
  registrations stamped with old times would be deleted at once by time-based retention.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import Any, Self

from confluent_kafka import KafkaError, KafkaException, Producer

from civreg.codec_from_settings import open_codec
from civreg.errors import CivregError
from civreg.kafka_config import producer_config
from civreg.logs import get_logger
from civreg.metrics import default_metrics
from civreg.settings import Settings
from schemas.codec import Codec
from schemas.models import Event
from schemas.topics import Register, registration_topics

__all__ = [
    "CONTENT_TYPE",
    "DeliveryCallback",
    "DeliveryReport",
    "PublishError",
    "Publisher",
]

CONTENT_TYPE = "application/vnd.civreg.v1+avro"
_CONTENT_TYPE_HEADER = ("content-type", CONTENT_TYPE.encode())
_QUEUE_FULL_POLL_SECONDS = 0.1
_MESSAGE_FAILURES_SHOWN = 5

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """Kafka's answer for one event: where it was written, or why not. Holds ids and positions only."""

    event_id: str
    event_type: str
    topic: str
    partition: int | None = None
    offset: int | None = None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        """True when the broker acknowledged the event (acks=all: every in-sync replica has it)."""
        return self.error is None


DeliveryCallback = Callable[[DeliveryReport], None]


class PublishError(CivregError, RuntimeError):
    """Events Kafka did not confirm. They may or may not be written; publishing them again is safe.

    ``failures`` holds the first failed deliveries (up to the publisher's limit), ``failed`` counts them all and
    ``unconfirmed`` counts events still waiting for an answer when a flush timed out.
    """

    def __init__(self, failures: Sequence[DeliveryReport], *, failed: int | None = None, unconfirmed: int = 0) -> None:
        self.failures: tuple[DeliveryReport, ...] = tuple(failures)
        self.failed = len(self.failures) if failed is None else failed
        self.unconfirmed = unconfirmed
        super().__init__(self._describe())

    def _describe(self) -> str:
        parts: list[str] = []
        if self.failed:
            shown = "; ".join(
                f"event {f.event_id} ({f.event_type}) to {f.topic}: {f.error}"
                for f in self.failures[:_MESSAGE_FAILURES_SHOWN]
            )
            more = self.failed - min(len(self.failures), _MESSAGE_FAILURES_SHOWN)
            parts.append(f"{self.failed} event(s) not delivered: {shown}" + (f"; and {more} more" if more else ""))
        if self.unconfirmed:
            parts.append(f"{self.unconfirmed} event(s) still unconfirmed when the flush timed out")
        return "; ".join(parts) or "publishing failed"


def _describe_kafka_error(error: KafkaError) -> str:
    name: str = error.name()
    text: str = error.str()
    return f"{name}: {text}"


class Publisher:
    """Queue events for Kafka and account for every one: ``delivered + failed + pending == produced``.

    Use as a context manager (flushes on exit) or call ``flush`` yourself; it raises ``PublishError`` when any
    event since the previous flush was not delivered. ``on_delivery`` is called once per event with its
    ``DeliveryReport``, from inside ``publish``/``poll``/``flush`` on the caller's thread (what it raises comes out
    of that call). Use one publisher from one thread: the counts are not locked.
    """

    def __init__(
        self,
        settings: Settings,
        codec: Codec | None = None,
        on_delivery: DeliveryCallback | None = None,
        *,
        config_overrides: dict[str, Any] | None = None,
        close_timeout: float = 60.0,
        max_failures_kept: int = 1000,
    ) -> None:
        # The registry when there is one (civreg.codec_from_settings); every subject's id is resolved now, so
        # publishing goes on through a registry outage.
        self._codec = codec or open_codec(settings, publishing=True)
        self._on_delivery = on_delivery
        self._topics = registration_topics(settings.topic_prefix)
        self._close_timeout = close_timeout
        self._max_failures_kept = max_failures_kept
        # No error_cb: librdkafka then logs client errors (broker down, auth) itself, through civreg.logs.
        self._producer: Any = Producer(producer_config(settings, role="publisher", **(config_overrides or {})))
        self._produced = 0
        self._delivered = 0
        self._failed = 0
        self._refused = 0  # failed when queued: counted in failed, never in produced
        self._failures: list[DeliveryReport] = []
        self._failed_since_flush = 0

    # ---- accounting ---------------------------------------------------------------------------------

    @property
    def produced(self) -> int:
        """Events handed to Kafka (queued) by ``publish``."""
        return self._produced

    @property
    def delivered(self) -> int:
        """Events the broker acknowledged."""
        return self._delivered

    @property
    def failed(self) -> int:
        """Events Kafka refused or could not deliver (including ones refused when queued)."""
        return self._failed

    @property
    def pending(self) -> int:
        """Events queued and not yet answered."""
        return self._produced - self._delivered - (self._failed - self._refused)

    def topic_for(self, register: Register) -> str:
        """The topic events of ``register`` go to."""
        return self._topics[register]

    # ---- publishing ---------------------------------------------------------------------------------

    def publish(self, event: Event) -> None:
        """Queue ``event`` for its register's topic, keyed by its entry; raises PublishError if Kafka refuses it."""
        topic = self._topics[event.family]
        value = self._codec.encode(event, topic)  # the schema id of its subject on that topic
        event_id = str(event.event_id)
        headers = [
            ("event_type", event.event_type.encode()),
            ("event_id", event_id.encode()),
            _CONTENT_TYPE_HEADER,
        ]
        callback = partial(self._on_report, event_id, event.event_type)
        while True:
            try:
                self._producer.produce(topic, value=value, key=event.entry.key, headers=headers, on_delivery=callback)
                break
            except BufferError:
                # The local queue is full: serve delivery reports until there is room. Not a failure.
                self._producer.poll(_QUEUE_FULL_POLL_SECONDS)
            except KafkaException as exc:
                # Refused before queueing (e.g. too large): raised now, so not kept for flush to raise again.
                self._refused += 1
                self._failed += 1
                default_metrics().record_delivery(event.event_type, delivered=False)
                report = DeliveryReport(event_id, event.event_type, topic, error=_describe_kafka_error(exc.args[0]))
                if self._on_delivery is not None:
                    self._on_delivery(report)
                raise PublishError([report]) from exc
        self._produced += 1
        self._producer.poll(0)

    def poll(self, timeout: float = 0.0) -> int:
        """Serve delivery reports waiting (up to ``timeout`` seconds); returns how many were served."""
        served: int = self._producer.poll(timeout)
        return served

    def flush(self, timeout: float = 30.0) -> None:
        """Wait up to ``timeout`` seconds for every queued event; raise PublishError if any since the last flush
        failed or is still unconfirmed."""
        unconfirmed: int = self._producer.flush(timeout)
        failures, self._failures = self._failures, []
        failed, self._failed_since_flush = self._failed_since_flush, 0
        if failed or unconfirmed:
            raise PublishError(failures, failed=failed, unconfirmed=unconfirmed)

    def missing_topics(self, registers: Iterable[Register] = tuple(Register), timeout: float = 10.0) -> list[str]:
        """The topics of ``registers`` that the cluster lacks; raises KafkaException when it cannot be reached.

        Worth calling before a large publish: the broker does not create topics, so a missing one would only show
        as every event failing after ``message.timeout.ms``. A topic still missing is looked for again until
        ``timeout``, since a newly created one takes a moment to appear in metadata.
        """
        deadline = time.monotonic() + timeout
        wanted = {self._topics[r] for r in registers}
        while True:
            metadata = self._producer.list_topics(timeout=max(deadline - time.monotonic(), 0.1))
            missing = sorted(wanted - set(metadata.topics))
            if not missing or time.monotonic() >= deadline:
                return missing
            time.sleep(0.25)  # a topic created a moment ago may not be in every broker's metadata yet

    # ---- context manager ----------------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.flush(self._close_timeout)
        except PublishError as error:
            if exc is None:
                raise
            # Do not hide the exception already on its way out; still account for the lost events.
            log.error("publisher closed with undelivered events", failed=error.failed, unconfirmed=error.unconfirmed)

    # ---- internals ----------------------------------------------------------------------------------

    def _on_report(self, event_id: str, event_type: str, error: KafkaError | None, message: Any) -> None:
        default_metrics().record_delivery(event_type, delivered=error is None, seconds=message.latency())
        if error is None:
            self._delivered += 1
            report = DeliveryReport(event_id, event_type, message.topic(), message.partition(), message.offset())
        else:
            partition = message.partition()
            where = partition if partition is not None and partition >= 0 else None  # -1 or None: never assigned
            report = DeliveryReport(event_id, event_type, message.topic(), where, error=_describe_kafka_error(error))
            self._failed += 1
            self._failed_since_flush += 1
            if len(self._failures) < self._max_failures_kept:
                self._failures.append(report)
            log.warning(
                "event not delivered", event_id=event_id, event_type=event_type, topic=report.topic, error=report.error
            )
        if self._on_delivery is not None:
            self._on_delivery(report)
