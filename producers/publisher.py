"""Publish registration events to Kafka: the library a register office's system calls.

Why this shape:

- One topic per register and the entry reference as the key, so every event of one entry (registration,
  corrections, void) lands on one partition in publication order and departments apply them in order.
- Idempotence and ``acks=all`` come from ``producer_config``: a retried send can neither lose nor duplicate.
- ``publish`` only queues; delivery reports are served by ``poll(0)`` every ``_POLL_EVERY`` events and by
  ``flush``. A full local queue (``BufferError``) is back-pressure, not failure: we poll until librdkafka has room.
  No per-message flush, so throughput is librdkafka's, not one round trip per event.
- Delivery handling is batched: a delivered event costs one counter and one latency kept for the metrics, which
  are handed to Prometheus once per poll. Only a failure (or an ``on_delivery`` callback, when one is given) builds
  a ``DeliveryReport``.
- ``publish_encoded`` takes an event already validated and encoded (``Codec.encode_body``): ``civreg publish``
  encodes each row while validating it and publishes those bytes, so nothing is validated or serialised twice.
- Failures are kept until ``flush`` raises them as one ``PublishError``. Its text names event ids, topics and
  Kafka's error, never names or identifiers: it reaches logs. Re-publishing a failed event is safe because
  consumers de-duplicate by ``event_id``.
- The message timestamp is left to the producer (time of publishing), not ``recorded_at``: a back-fill of old
  registrations stamped with old times would be deleted at once by time-based retention.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
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
_POLL_EVERY = 256
"""Serve delivery reports after this many events queued: often enough to keep librdkafka's queue moving, rarely
enough that polling costs nothing per event."""

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
        self._until_poll = _POLL_EVERY
        self._delivered_by_type: Counter[str] = Counter()
        self._failed_by_type: Counter[str] = Counter()
        # Delivered since the metrics were last told: event type -> produce-to-acknowledgement seconds.
        self._unreported: dict[str, list[float | None]] = {}

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

    @property
    def delivered_by_type(self) -> Mapping[str, int]:
        """Events the broker acknowledged, by event type."""
        return self._delivered_by_type

    @property
    def failed_by_type(self) -> Mapping[str, int]:
        """Events Kafka refused or could not deliver, by event type."""
        return self._failed_by_type

    def topic_for(self, register: Register) -> str:
        """The topic events of ``register`` go to."""
        return self._topics[register]

    # ---- publishing ---------------------------------------------------------------------------------

    def publish(self, event: Event) -> None:
        """Queue ``event`` for its register's topic, keyed by its entry; raises PublishError if Kafka refuses it."""
        topic = self._topics[event.family]
        value = self._codec.encode(event, topic)  # the schema id of its subject on that topic
        self._produce(topic, event.event_type, str(event.event_id), event.entry.key, value)

    def publish_encoded(
        self, event_type: str, register: Register, event_id: str, key: str | bytes, body: bytes
    ) -> None:
        """Queue an event already validated and encoded by ``Codec.encode_body``; the header (its subject's schema
        id on the register's topic) is added here. Raises PublishError if Kafka refuses it."""
        topic = self._topics[register]
        self._produce(topic, event_type, event_id, key, self._codec.header(event_type, topic) + body)

    def _produce(self, topic: str, event_type: str, event_id: str, key: str | bytes, value: bytes) -> None:
        headers = [("event_type", event_type.encode()), ("event_id", event_id.encode()), _CONTENT_TYPE_HEADER]
        callback = partial(self._on_report, event_id, event_type)
        while True:
            try:
                self._producer.produce(topic, value=value, key=key, headers=headers, on_delivery=callback)
                break
            except BufferError:
                # The local queue is full: serve delivery reports until there is room. Not a failure.
                self._producer.poll(_QUEUE_FULL_POLL_SECONDS)
                self._report_metrics()
            except KafkaException as exc:
                # Refused before queueing (e.g. too large): raised now, so not kept for flush to raise again.
                self._refused += 1
                self._failed += 1
                self._failed_by_type[event_type] += 1
                default_metrics().record_delivery(event_type, delivered=False)
                report = DeliveryReport(event_id, event_type, topic, error=_describe_kafka_error(exc.args[0]))
                if self._on_delivery is not None:
                    self._on_delivery(report)
                raise PublishError([report]) from exc
        self._produced += 1
        self._until_poll -= 1
        if self._until_poll <= 0:
            self._until_poll = _POLL_EVERY
            self.poll(0)

    def poll(self, timeout: float = 0.0) -> int:
        """Serve delivery reports waiting (up to ``timeout`` seconds); returns how many were served."""
        served: int = self._producer.poll(timeout)
        self._report_metrics()
        return served

    def flush(self, timeout: float = 30.0) -> None:
        """Wait up to ``timeout`` seconds for every queued event; raise PublishError if any since the last flush
        failed or is still unconfirmed."""
        unconfirmed: int = self._producer.flush(timeout)
        self._report_metrics()
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
        """librdkafka's answer for one message. A delivery is counted and its latency kept; nothing else, unless
        the caller asked for every report."""
        if error is None:
            self._delivered += 1
            self._delivered_by_type[event_type] += 1
            latencies = self._unreported.get(event_type)
            if latencies is None:
                latencies = self._unreported[event_type] = []
            latencies.append(message.latency())
            # Near free below DEBUG (the filtering logger drops it unformatted); at DEBUG an operator can follow an
            # event id to its topic (ids and positions are readable after redaction, personal values never).
            log.debug("event delivered", event_id=event_id, event_type=event_type, topic=message.topic())
            if self._on_delivery is not None:
                self._on_delivery(
                    DeliveryReport(event_id, event_type, message.topic(), message.partition(), message.offset())
                )
            return
        default_metrics().record_delivery(event_type, delivered=False)
        partition = message.partition()
        where = partition if partition is not None and partition >= 0 else None  # -1 or None: never assigned
        report = DeliveryReport(event_id, event_type, message.topic(), where, error=_describe_kafka_error(error))
        self._failed += 1
        self._failed_by_type[event_type] += 1
        self._failed_since_flush += 1
        if len(self._failures) < self._max_failures_kept:
            self._failures.append(report)
        log.warning(
            "event not delivered", event_id=event_id, event_type=event_type, topic=report.topic, error=report.error
        )
        if self._on_delivery is not None:
            self._on_delivery(report)

    def _report_metrics(self) -> None:
        """Hand the deliveries counted since the last poll to the metrics, once per event type."""
        if not self._unreported:
            return
        unreported, self._unreported = self._unreported, {}
        metrics = default_metrics()
        for event_type, latencies in unreported.items():
            metrics.record_deliveries(event_type, latencies)
