"""Every ``civreg_*`` metric, defined once, and the operators' HTTP endpoint (/metrics, /healthz, /readyz).

Why one module: names, units, labels and buckets are a contract that the alert rules, the Grafana dashboards and
``civreg status`` read. Services (department consumers, the publisher, any added later) record through these
objects, so they export the same names without repeating them. Naming follows Prometheus and faststream's
middleware: ``civreg_<thing>_<unit>``, base units, ``_total`` on counters, ``_seconds`` on durations. Labels are
bounded sets (department, event type, outcome, topic, partition, reason code), never a person's data.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from socketserver import ThreadingMixIn
from types import TracebackType
from typing import Any, Self
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    make_wsgi_app,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from civreg.errors import CivregError
from civreg.logs import get_logger

__all__ = [
    "BATCH_BUCKETS",
    "HANDLER_BUCKETS",
    "HEALTH_PATH",
    "LATENCY_BUCKETS",
    "METRICS_PATH",
    "PUBLISH_BUCKETS",
    "READY_PATH",
    "REGISTRATION_LATENCY_BUCKETS",
    "Check",
    "LiveSource",
    "LiveState",
    "Metrics",
    "MetricsServerError",
    "OperatorsEndpoint",
    "RelayMetrics",
    "default_metrics",
    "default_relay_metrics",
    "reason_code",
]

log = get_logger(__name__)

METRICS_PATH = "/metrics"
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"

# A handler is a few SQL statements: sub-millisecond to a second or so.
HANDLER_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# A batch is up to batch_size events in one transaction, plus dead-letter writes and retries.
BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
# Publish to applied: seconds normally, minutes when a department falls behind. 60 s is the deaths SLO boundary.
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
# Registration to applied also holds the register office's own delay (an outbox relay, a file published later).
REGISTRATION_LATENCY_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 21600.0, 86400.0)
# Produce to broker acknowledgement (acks=all): milliseconds, seconds when the cluster is struggling.
PUBLISH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

_REASON_CODE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def reason_code(reason: str) -> str:
    """``reason`` as a label value if it is a short code (``bad-magic-byte``), else ``other``.

    Reasons come from handlers; a free-text one could carry personal data or explode the series count.
    """
    return reason if _REASON_CODE.match(reason) else "other"


@dataclass(frozen=True)
class LiveState:
    """A running department consumer as seen at scrape time (what a batch report cannot say)."""

    department: str
    ready: bool
    store_up: bool
    lag: Mapping[tuple[str, int], int]
    review_queue: int | None = None
    review_oldest_age_seconds: float | None = None
    dead_letter_topic_messages: int | None = None


LiveSource = Callable[[], LiveState]


class _LiveCollector(Collector):
    """Asks each watched service for its state on every scrape, so gauges are never stale."""

    def __init__(self) -> None:
        self._sources: dict[int, LiveSource] = {}
        self._lock = threading.Lock()
        self._next = 0

    def add(self, source: LiveSource) -> int:
        with self._lock:
            self._next += 1
            self._sources[self._next] = source
            return self._next

    def remove(self, key: int) -> None:
        with self._lock:
            self._sources.pop(key, None)

    def describe(self) -> Iterable[Metric]:
        return self._families([])

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            sources = list(self._sources.values())
        states: list[LiveState] = []
        for source in sources:
            try:
                states.append(source())
            except Exception as exc:  # a scrape must never fail because one service is closing
                log.debug("live-state-unavailable", error=type(exc).__name__)
        return self._families(states)

    @staticmethod
    def _families(states: list[LiveState]) -> list[Metric]:
        ready = GaugeMetricFamily(
            "civreg_consumer_ready",
            "1 when the consumer holds its partitions and reaches its store.",
            labels=["department"],
        )
        store_up = GaugeMetricFamily(
            "civreg_store_up", "1 when the department's database answers a query.", labels=["department"]
        )
        lag = GaugeMetricFamily(
            "civreg_consumer_lag_messages",
            "Messages on the partition not yet applied (high watermark minus the offset stored with the data).",
            labels=["department", "topic", "partition"],
        )
        review = GaugeMetricFamily(
            "civreg_review_queue_events", "Events waiting for a person to review (open items).", labels=["department"]
        )
        review_age = GaugeMetricFamily(
            "civreg_review_queue_oldest_age_seconds",
            "Age of the oldest open review item (0 when the queue is empty).",
            labels=["department"],
        )
        dead_letter = GaugeMetricFamily(
            "civreg_dead_letter_topic_messages",
            "Messages in the department's dead-letter topic (kept forever: each one is an unmet obligation).",
            labels=["department"],
        )
        for state in states:
            department = [state.department]
            ready.add_metric(department, 1.0 if state.ready else 0.0)
            store_up.add_metric(department, 1.0 if state.store_up else 0.0)
            for (topic, partition), messages in sorted(state.lag.items()):
                lag.add_metric([state.department, topic, str(partition)], float(messages))
            if state.review_queue is not None:
                review.add_metric(department, float(state.review_queue))
            if state.review_oldest_age_seconds is not None:
                review_age.add_metric(department, state.review_oldest_age_seconds)
            if state.dead_letter_topic_messages is not None:
                dead_letter.add_metric(department, float(state.dead_letter_topic_messages))
        return [ready, store_up, lag, review, review_age, dead_letter]


class Metrics:
    """The civreg metrics on one registry: recorded by services, read by Prometheus.

    Production uses ``default_metrics()`` (the process-wide registry, with process_* metrics); tests may build
    their own on a fresh ``CollectorRegistry``.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        # ``_created`` series double the series count and Prometheus ignores them by default.
        disable_created_metrics()  # type: ignore[no-untyped-call]  # unannotated upstream
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        department = ["department"]
        # Consumers ------------------------------------------------------------------------------------------
        self.consumed_events = Counter(
            "civreg_consumed_events",
            "Events a department recorded an outcome for (undecodable messages: event_type 'undecodable').",
            ["department", "event_type", "outcome"],
            registry=r,
        )
        self.duplicate_events = Counter(
            "civreg_duplicate_events",
            "Redelivered events skipped because their outcome was recorded.",
            department,
            registry=r,
        )
        self.withheld_events = Counter(
            "civreg_withheld_events",
            "Events the department's data-sharing agreement kept from it (not an outcome).",
            ["department", "event_type", "reason"],
            registry=r,
        )
        self.dead_letters = Counter(
            "civreg_dead_letters",
            "Messages written to the department's dead-letter topic, by reason code.",
            ["department", "reason"],
            registry=r,
        )
        self.batch_retries = Counter(
            "civreg_batch_retries", "Batches rolled back and retried after a transient error.", department, registry=r
        )
        self.handler_duration = Histogram(
            "civreg_handler_duration_seconds",
            "Time a department's rule took for one event.",
            ["department", "event_type"],
            buckets=HANDLER_BUCKETS,
            registry=r,
        )
        self.batch_duration = Histogram(
            "civreg_batch_duration_seconds",
            "Time to apply and commit one batch, retries included.",
            department,
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.publish_to_applied = Histogram(
            "civreg_publish_to_applied_seconds",
            "From the message's Kafka timestamp (publish time) to the department's database commit of its outcome.",
            ["department", "event_type"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.registration_to_applied = Histogram(
            "civreg_registration_to_applied_seconds",
            "From the registration's recorded_at to the department's database commit of its outcome.",
            ["department", "event_type"],
            buckets=REGISTRATION_LATENCY_BUCKETS,
            registry=r,
        )
        self.last_commit = Gauge(
            "civreg_last_commit_timestamp_seconds",
            "Unix time of the department's last database commit of a batch (0: none since start).",
            department,
            registry=r,
        )
        # Publisher ------------------------------------------------------------------------------------------
        self.published_events = Counter(
            "civreg_published_events",
            "Events the broker acknowledged (outcome 'delivered') or refused (outcome 'failed').",
            ["event_type", "outcome"],
            registry=r,
        )
        self.publish_duration = Histogram(
            "civreg_publish_duration_seconds",
            "From handing an event to the producer to the broker's acknowledgement (acks=all).",
            ["event_type"],
            buckets=PUBLISH_BUCKETS,
            registry=r,
        )
        self._live = _LiveCollector()
        r.register(self._live)

    def watch(self, source: LiveSource) -> Callable[[], None]:
        """Report ``source``'s live state on every scrape until the returned function is called."""
        key = self._live.add(source)
        return lambda: self._live.remove(key)

    def record_delivery(self, event_type: str, *, delivered: bool, seconds: float | None = None) -> None:
        """Count one publisher delivery report (and its produce-to-acknowledgement time, when known)."""
        self.published_events.labels(event_type, "delivered" if delivered else "failed").inc()
        if delivered and seconds is not None and seconds >= 0:
            self.publish_duration.labels(event_type).observe(seconds)

    def record_deliveries(self, event_type: str, seconds: Sequence[float | None]) -> None:
        """Count a batch of delivered events of one type and their produce-to-acknowledgement times (the
        publisher reports once per poll rather than once per event)."""
        self.published_events.labels(event_type, "delivered").inc(len(seconds))
        histogram = self.publish_duration.labels(event_type)
        for value in seconds:
            if value is not None and value >= 0:
                histogram.observe(value)


@cache
def default_metrics() -> Metrics:
    """The process's metrics on prometheus_client's global registry (which also has process_* metrics)."""
    return Metrics(REGISTRY)


class RelayMetrics:
    """The outbox relay's series (``civreg relay``), registered only by a relay process: a consumer exporting
    ``civreg_relay_ready 0`` would fire the relay's alerts. One relay per outbox, so no labels beyond the scrape's.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # unannotated upstream
        self.registry = registry
        r = registry
        self.published_rows = Counter(
            "civreg_relay_published_rows",
            "Outbox rows the broker acknowledged and the relay then marked sent (a row re-sent after a crash counts"
            " again).",
            registry=r,
        )
        self.rejected_rows = Counter(
            "civreg_relay_rejected_rows",
            "Outbox rows held because their payload no longer validates (an operator must fix and release them).",
            registry=r,
        )
        self.retries = Counter(
            "civreg_relay_retries",
            "Relay batches retried after a failure, by where it failed: broker or database.",
            ["reason"],
            registry=r,
        )
        for reason in ("broker", "database"):
            self.retries.labels(reason)  # both series from 0, so rate() and increase() see the first retry
        self.backlog_rows = Gauge(
            "civreg_relay_backlog_rows",
            "Outbox rows not yet sent, as of the relay's last look (rejected rows included).",
            registry=r,
        )
        self.oldest_unsent = Gauge(
            "civreg_relay_oldest_unsent_timestamp_seconds",
            "Unix time the oldest unsent outbox row was added (0: none unsent at the relay's last look).",
            registry=r,
        )
        self.ready = Gauge(
            "civreg_relay_ready",
            "1 when the relay holds the outbox lock, reaches its database and the broker acknowledged its last batch.",
            registry=r,
        )
        self.last_sent = Gauge(
            "civreg_relay_last_sent_timestamp_seconds",
            "Unix time the relay last marked rows sent (0: none since start).",
            registry=r,
        )


@cache
def default_relay_metrics() -> RelayMetrics:
    """The relay's series on prometheus_client's global registry (next to the publisher's ``default_metrics()``)."""
    return RelayMetrics(REGISTRY)


# The operators' endpoint ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """A probe's answer: 200 and ``detail`` when ``ok``, else 503 and ``detail`` (never personal data)."""

    ok: bool
    detail: str


class MetricsServerError(CivregError, RuntimeError):
    """The endpoint could not listen (port taken, bad address); the message says where."""


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds are not worth a log line each."""


StartResponse = Callable[..., Any]


class OperatorsEndpoint:
    """``/metrics``, ``/healthz`` (liveness) and ``/readyz`` (readiness) on one port, served from daemon threads.

    Liveness says only that the process serves and has not begun to stop, so a database or Kafka outage makes
    pods unready (no new work routed, rollouts pause) without restarting them in a loop.
    """

    def __init__(
        self,
        metrics: Metrics,
        *,
        port: int,
        host: str = "127.0.0.1",
        health: Callable[[], Check] | None = None,
        ready: Callable[[], Check] | None = None,
    ) -> None:
        self._metrics_app = make_wsgi_app(metrics.registry)
        self._health = health or (lambda: Check(True, "serving"))
        self._ready = ready or (lambda: Check(True, "ready"))
        try:
            self._server = make_server(host, port, self._app, _Server, handler_class=_QuietHandler)
        except OSError as exc:
            raise MetricsServerError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from exc
        self._thread = threading.Thread(target=self._server.serve_forever, name="civreg-metrics", daemon=True)
        self._thread.start()
        log.info("metrics-endpoint", url=self.url)

    @property
    def port(self) -> int:
        """The port actually bound (useful when 0 asked the OS for a free one)."""
        port: int = self._server.server_address[1]
        return port

    @property
    def url(self) -> str:
        """Base URL of the endpoint."""
        host = str(self._server.server_address[0])
        return f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{self.port}"  # noqa: S104 - a display URL

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _app(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == METRICS_PATH:
            body: Iterable[bytes] = self._metrics_app(environ, start_response)
            return list(body)
        if path in (HEALTH_PATH, READY_PATH):
            try:
                check = self._health() if path == HEALTH_PATH else self._ready()
            except Exception as exc:  # a probe that crashes is a failed probe, not a dead server thread
                check = Check(False, f"probe failed: {type(exc).__name__}")
            status = "200 OK" if check.ok else "503 Service Unavailable"
            start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
            return [check.detail.encode() + b"\n"]
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [f"not found; try {METRICS_PATH}, {HEALTH_PATH} or {READY_PATH}\n".encode()]
