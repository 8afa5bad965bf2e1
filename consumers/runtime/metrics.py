"""The runtime's metrics listener: committed batches and the consumer's live state become ``civreg_*`` series.

Why a listener: the consume loop knows nothing of Prometheus. It reports each committed batch
(``on_batch_committed``); this module turns reports into the metrics of ``civreg.metrics``, reads what a report
cannot say (lag, review queue, dead-letter topic size) on every scrape, and serves /metrics, /healthz and /readyz.
Scrape threads never touch the consumer's own clients: its database connection may be inside a batch's
transaction (they read through their own ``probe`` store), and its Kafka handle belongs to the consume loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from confluent_kafka import IsolationLevel, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec
from prometheus_client import Histogram

from civreg.kafka_config import admin_config
from civreg.logs import get_logger
from civreg.metrics import Check, LiveState, Metrics, OperatorsEndpoint, default_metrics, reason_code
from civreg.settings import Settings
from consumers.runtime.dispatch import CONFLICTING_ENTRY_VERSION
from consumers.runtime.outcomes import Outcome
from consumers.runtime.service import BatchReport, DepartmentConsumer
from consumers.runtime.store import Store

__all__ = ["UNDECODABLE", "ConsumerMetrics", "operators_view"]

log = get_logger(__name__)

UNDECODABLE = "undecodable"
"""The event_type label of messages that never became an event (the runtime reports them as "(undecodable)")."""

_OPEN_REVIEWS = "SELECT COUNT(*), MIN(queued_at) FROM civreg_review_queue WHERE status = 'open'"


class _ClusterOffsets:
    """First and next offsets of every partition of some topics, asked of the cluster with an admin client.

    Why not ``DepartmentConsumer.lag()``: its Kafka handle may only be used from the consume loop's thread (a call
    from a scrape thread blocks against ``consume()``), and a stuck loop would leave its cached watermarks stale.
    The cluster's answer is fresh whatever the loop is doing. When the cluster does not answer, the last answer is
    kept: stale lag is better than none for the alerts that read it.
    """

    def __init__(self, settings: Settings, topics: list[str], *, timeout: float = 3.0) -> None:
        self._settings = settings
        self._topics = topics
        self._timeout = timeout
        self._admin: AdminClient | None = None
        self._known: dict[tuple[str, int], tuple[int, int]] = {}

    def __call__(self) -> dict[tuple[str, int], tuple[int, int]]:
        try:
            self._known = self._ask()
        except Exception as exc:
            log.warning("cluster-offsets-unavailable", topics=self._topics, error=type(exc).__name__)
        return self._known

    def _ask(self) -> dict[tuple[str, int], tuple[int, int]]:
        if self._admin is None:
            self._admin = AdminClient(admin_config(self._settings))
        partitions: list[TopicPartition] = []
        for name in self._topics:
            topic = self._admin.list_topics(name, timeout=self._timeout).topics.get(name)
            if topic is not None and topic.error is None:
                partitions.extend(TopicPartition(name, partition) for partition in topic.partitions)
        if not partitions:
            return {}
        starts = self._offsets(partitions, OffsetSpec.earliest())  # type: ignore[no-untyped-call]
        ends = self._offsets(partitions, OffsetSpec.latest())  # type: ignore[no-untyped-call]
        return {key: (starts.get(key, 0), end) for key, end in ends.items()}

    def _offsets(self, partitions: list[TopicPartition], spec: OffsetSpec) -> dict[tuple[str, int], int]:
        assert self._admin is not None
        futures = self._admin.list_offsets(
            {tp: spec for tp in partitions},
            isolation_level=IsolationLevel.READ_COMMITTED,  # what the consumer reads
            request_timeout=self._timeout,
        )
        return {(tp.topic, tp.partition): int(future.result().offset) for tp, future in futures.items()}


class ConsumerMetrics:
    """Records one department consumer's batches, and reports its live state on every scrape."""

    def __init__(self, consumer: DepartmentConsumer, probe: Store, metrics: Metrics | None = None) -> None:
        self.consumer = consumer
        self.department = consumer.department.name
        self.metrics = metrics or default_metrics()
        self._probe = probe
        self._probe_lock = threading.Lock()  # scrapes run on several threads; the probe has one connection
        prefix = consumer.settings.topic_prefix
        self._registrations = _ClusterOffsets(consumer.settings, consumer.department.topics(prefix))
        self._dead_letters = _ClusterOffsets(consumer.settings, [consumer.department.dead_letter_topic(prefix)])
        self._stopping = False
        self._declare_series()
        consumer.on_batch_committed(self.on_batch)
        self._unwatch = self.metrics.watch(self.live_state)

    def _declare_series(self) -> None:
        """Create every known series at 0, so rate() and increase() see the first event of each."""
        m, department = self.metrics, self.department
        for event_type in sorted(self.consumer.department.event_types):
            for outcome in Outcome:
                m.consumed_events.labels(department, event_type, outcome.value)
        m.consumed_events.labels(department, UNDECODABLE, Outcome.DEAD_LETTERED.value)
        m.duplicate_events.labels(department)
        m.dead_letters.labels(department, CONFLICTING_ENTRY_VERSION)  # the alert's increase() sees the first one
        m.batch_retries.labels(department)
        m.batch_duration.labels(department)
        m.last_commit.labels(department).set(0)

    # Batches (consumer thread) --------------------------------------------------------------------------------

    def on_batch(self, report: BatchReport) -> None:
        """Count a committed batch; never raises (metrics must not stop a department)."""
        try:
            self._record(report)
        except Exception as exc:
            log.warning("metrics-not-recorded", department=self.department, error=type(exc).__name__)

    def _record(self, report: BatchReport) -> None:
        m, department = self.metrics, self.department
        now = time.time()  # the batch's database commit has just happened
        for (event_type, outcome), count in report.outcomes.items():
            label = UNDECODABLE if event_type == "(undecodable)" else event_type
            m.consumed_events.labels(department, label, outcome).inc(count)
        for (event_type, reason), count in report.withheld.items():
            m.withheld_events.labels(department, event_type, reason_code(reason)).inc(count)
        for reason, count in report.dead_letter_reasons.items():
            m.dead_letters.labels(department, reason_code(reason)).inc(count)
        m.duplicate_events.labels(department).inc(report.duplicates)
        m.batch_retries.labels(department).inc(report.retries)
        m.batch_duration.labels(department).observe(report.seconds)
        histograms: dict[str, tuple[Histogram, Histogram, Histogram]] = {}  # labels() once per type, not per event
        for event in report.events:
            if event.event_type not in histograms:
                histograms[event.event_type] = (
                    m.handler_duration.labels(department, event.event_type),
                    m.registration_to_applied.labels(department, event.event_type),
                    m.publish_to_applied.labels(department, event.event_type),
                )
            handler, since_registration, since_publish = histograms[event.event_type]
            handler.observe(event.handler_seconds)
            since_registration.observe(max(now - event.recorded_at.timestamp(), 0.0))  # clocks may disagree
            if event.published_at is not None:
                since_publish.observe(max(now - event.published_at.timestamp(), 0.0))
        m.last_commit.labels(department).set(now)

    # Scrapes (endpoint threads) -------------------------------------------------------------------------------

    def live_state(self) -> LiveState:
        """Lag, readiness, review queue and dead-letter topic size, read now."""
        with self._probe_lock:
            try:
                stored = self._probe.stored_offsets()
                count, oldest = self._probe.read().one(_OPEN_REVIEWS) or (0, None)
            except Exception as exc:
                log.warning("store-unreachable", department=self.department, error=type(exc).__name__)
                return LiveState(self.department, ready=False, store_up=False, lag={})
            # A partition this department has never read is lagging from its first offset (a back-fill).
            lag = {key: max(end - stored.get(key, start), 0) for key, (start, end) in self._registrations().items()}
            dead_letters = self._dead_letters()
        dead_letter_messages = sum(end - start for start, end in dead_letters.values()) if dead_letters else None
        age = 0.0
        if oldest is not None:
            age = max((datetime.now(UTC) - datetime.fromisoformat(str(oldest))).total_seconds(), 0.0)
        return LiveState(
            self.department,
            ready=self.consumer.assigned and not self._stopping,
            store_up=True,
            lag=lag,
            review_queue=int(count),
            review_oldest_age_seconds=age,
            dead_letter_topic_messages=dead_letter_messages,
        )

    def health(self) -> Check:
        """Liveness: serving, and not stopping."""
        if self._stopping:
            return Check(False, f"{self.department}: stopping")
        return Check(True, f"{self.department}: alive")

    def readiness(self) -> Check:
        """Ready only when the consumer holds its partitions and its store answers."""
        if self._stopping:
            return Check(False, f"{self.department}: stopping")
        if not self.consumer.assigned:
            return Check(False, f"{self.department}: waiting for partitions from the consumer group")
        with self._probe_lock:
            try:
                self._probe.read().scalar("SELECT 1")
            except Exception as exc:
                return Check(False, f"{self.department}: store unreachable ({type(exc).__name__})")
        return Check(True, f"{self.department}: ready")

    def close(self) -> None:
        """Stop reporting live state (batch counters stay in the registry)."""
        self._stopping = True
        self._unwatch()


@contextmanager
def operators_view(
    consumer: DepartmentConsumer,
    probe: Store,
    *,
    port: int = 0,
    host: str = "127.0.0.1",
    metrics: Metrics | None = None,
) -> Iterator[ConsumerMetrics]:
    """Metrics for ``consumer`` while the block runs; with a ``port`` (0 = none), also its HTTP endpoint."""
    instrumented = ConsumerMetrics(consumer, probe, metrics)
    endpoint: OperatorsEndpoint | None = None
    try:
        if port:
            endpoint = OperatorsEndpoint(
                instrumented.metrics, port=port, host=host, health=instrumented.health, ready=instrumented.readiness
            )
        yield instrumented
    finally:
        instrumented.close()  # first, so /readyz says "stopping" while the endpoint is still up
        if endpoint is not None:
            endpoint.close()
