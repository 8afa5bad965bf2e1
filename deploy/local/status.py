"""``civreg status``: each service's lag, rate, latency, dead letters and review queue, read from its /metrics.

For operators without Grafana (a shell on a host, an incident at night): the same numbers the dashboards show,
straight from the services' endpoints, no Prometheus needed. Rates and latencies need two samples, so a view is
the difference between consecutive scrapes; ``--once`` takes two, ``interval`` seconds apart.
"""

from __future__ import annotations

import math
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.live import Live
from rich.table import Table

from civreg.metrics import HEALTH_PATH, METRICS_PATH, READY_PATH

__all__ = [
    "Scrape",
    "ServiceRow",
    "histogram_quantile",
    "normalise_endpoint",
    "parse_endpoints",
    "run_status",
    "scrape",
    "service_rows",
    "status_table",
]

_ENDPOINT_PATHS = (METRICS_PATH, READY_PATH, HEALTH_PATH)

Labels = tuple[tuple[str, str], ...]


def normalise_endpoint(endpoint: str) -> str:
    """``host:port``, ``http://host:port`` or ``http://host:port/metrics`` as a base URL."""
    url = endpoint.strip().rstrip("/")
    if "://" not in url:
        url = f"http://{url}"
    for path in _ENDPOINT_PATHS:
        if url.endswith(path):
            url = url[: -len(path)]
    return url


def parse_endpoints(text: str) -> list[str]:
    """A comma-separated setting (``CIVREG_STATUS_ENDPOINTS``) as base URLs."""
    return [normalise_endpoint(part) for part in text.split(",") if part.strip()]


@dataclass(frozen=True)
class Scrape:
    """One read of one endpoint: its samples (by metric name), readiness, and when."""

    endpoint: str
    monotonic: float
    wall: float
    samples: Mapping[str, Sequence[tuple[Labels, float]]] = field(default_factory=dict)
    ready: bool = False
    ready_detail: str = ""
    error: str | None = None

    def values(self, name: str, **match: str) -> list[tuple[dict[str, str], float]]:
        """Samples of ``name`` whose labels include ``match``."""
        found = []
        for labels, value in self.samples.get(name, ()):
            as_dict = dict(labels)
            if all(as_dict.get(key) == wanted for key, wanted in match.items()):
                found.append((as_dict, value))
        return found

    def total(self, name: str, **match: str) -> float | None:
        """Sum of the matching samples, or None when there are none."""
        values = self.values(name, **match)
        return sum(value for _, value in values) if values else None

    def label_values(self, name: str, label: str) -> set[str]:
        """Values ``label`` takes on the samples of ``name``."""
        return {dict(labels)[label] for labels, _ in self.samples.get(name, ()) if label in dict(labels)}


def _get(url: str, timeout: float) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - operator-given http URL
            return int(response.status), response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode("utf-8", "replace")


def scrape(endpoint: str, timeout: float = 3.0) -> Scrape:
    """Read ``endpoint``'s metrics and readiness; an unreachable endpoint is a Scrape with ``error``."""
    base = normalise_endpoint(endpoint)
    started, wall = time.monotonic(), time.time()
    try:
        status, text = _get(base + METRICS_PATH, timeout)
        if status != 200:
            return Scrape(base, started, wall, error=f"{METRICS_PATH} answered HTTP {status}")
        samples: dict[str, list[tuple[Labels, float]]] = defaultdict(list)
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples[sample.name].append((tuple(sorted(sample.labels.items())), float(sample.value)))
        ready_status, ready_text = _get(base + READY_PATH, timeout)
    except (OSError, ValueError) as exc:  # refused, timed out, not Prometheus text
        return Scrape(base, started, wall, error=_describe(exc))
    return Scrape(base, started, wall, dict(samples), ready_status == 200, ready_text.strip())


def _describe(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    cause = reason if isinstance(reason, BaseException) else exc
    text = getattr(cause, "strerror", None) or str(reason or cause)
    return str(text).lower()


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """Prometheus's ``histogram_quantile`` on cumulative bucket counts keyed by upper bound (``inf`` included).

    Linear interpolation inside the bucket holding the rank; a rank in the ``+Inf`` bucket returns the largest
    finite bound (the histogram cannot say more). None when there are no observations.
    """
    bounds = sorted(buckets)
    if not bounds or not math.isinf(bounds[-1]):
        return None
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


def _buckets(scrape: Scrape, name: str, **match: str) -> dict[float, float]:
    summed: dict[float, float] = defaultdict(float)
    for labels, value in scrape.values(f"{name}_bucket", **match):
        summed[float(labels["le"])] += value
    return dict(summed)


def _window_quantile(q: float, before: Scrape | None, now: Scrape, name: str, **match: str) -> float | None:
    """The quantile of what was observed between two scrapes, or since start when nothing was."""
    current = _buckets(now, name, **match)
    if before is not None and before.error is None:
        previous = _buckets(before, name, **match)
        window = {bound: count - previous.get(bound, 0.0) for bound, count in current.items()}
        if window.get(math.inf, 0.0) > 0:
            return histogram_quantile(q, window)
    return histogram_quantile(q, current)


def _rate(before: Scrape | None, now: Scrape, name: str, **match: str) -> float | None:
    if before is None or before.error is not None:
        return None
    elapsed = now.monotonic - before.monotonic
    start, end = before.total(name, **match), now.total(name, **match)
    if elapsed <= 0 or start is None or end is None:
        return None
    return max(end - start, 0.0) / elapsed  # a restarted service resets its counters


@dataclass(frozen=True)
class ServiceRow:
    """One line of the view: a department consumer or a publisher behind one endpoint."""

    service: str
    endpoint: str
    state: str
    healthy: bool
    lag: float | None = None
    partitions: int | None = None
    rate: float | None = None
    p99_seconds: float | None = None
    dead_letters: float | None = None
    review_queue: float | None = None
    review_oldest_seconds: float | None = None
    since_commit_seconds: float | None = None


def _department_row(before: Scrape | None, now: Scrape, department: str) -> ServiceRow:
    lag = now.values("civreg_consumer_lag_messages", department=department)
    last_commit = now.total("civreg_last_commit_timestamp_seconds", department=department)
    return ServiceRow(
        service=department,
        endpoint=now.endpoint,
        state="ready" if now.ready else f"not ready: {now.ready_detail}",
        healthy=now.ready,
        lag=sum(value for _, value in lag) if lag else None,
        partitions=len(lag) if lag else None,
        rate=_rate(before, now, "civreg_consumed_events_total", department=department),
        p99_seconds=_window_quantile(0.99, before, now, "civreg_publish_to_applied_seconds", department=department),
        dead_letters=now.total("civreg_dead_letter_topic_messages", department=department),
        review_queue=now.total("civreg_review_queue_events", department=department),
        review_oldest_seconds=now.total("civreg_review_queue_oldest_age_seconds", department=department),
        since_commit_seconds=None if not last_commit else max(now.wall - last_commit, 0.0),
    )


def service_rows(previous: Mapping[str, Scrape], current: Iterable[Scrape]) -> list[ServiceRow]:
    """The view's rows: one per department an endpoint serves, one for a publisher, one for a dead endpoint."""
    rows: list[ServiceRow] = []
    for now in current:
        if now.error is not None:
            rows.append(ServiceRow("?", now.endpoint, f"down: {now.error}", healthy=False))
            continue
        before = previous.get(now.endpoint)
        departments = now.label_values("civreg_consumer_ready", "department") | now.label_values(
            "civreg_consumed_events_total", "department"
        )
        rows.extend(_department_row(before, now, department) for department in sorted(departments))
        if now.values("civreg_published_events_total"):
            failed = now.total("civreg_published_events_total", outcome="failed") or 0
            state = "ready" if now.ready else f"not ready: {now.ready_detail}"
            rows.append(
                ServiceRow(
                    service="publisher",
                    endpoint=now.endpoint,
                    state=f"{state}; {failed:,.0f} failed deliveries" if failed else state,
                    healthy=now.ready,
                    rate=_rate(before, now, "civreg_published_events_total", outcome="delivered"),
                    p99_seconds=_window_quantile(0.99, before, now, "civreg_publish_duration_seconds"),
                )
            )
        if not departments and not now.values("civreg_published_events_total"):
            rows.append(ServiceRow("?", now.endpoint, "no civreg metrics", healthy=now.ready))
    return rows


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    text = f"{value:,.0f}" if value >= 100 or value == int(value) else f"{value:,.1f}"
    return f"{text}{unit}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"


def status_table(rows: Sequence[ServiceRow], *, title: str = "civreg services") -> Table:
    """The rows as a rich table (problems in red, backlogs in yellow)."""
    table = Table(title=title, title_justify="left")
    table.add_column("service")
    table.add_column("endpoint")
    table.add_column("state")
    for name in ("lag", "events/s", "p99 latency", "dead letters", "review queue", "oldest review", "last commit"):
        table.add_column(name, justify="right")
    for row in rows:
        state = row.state if row.healthy else f"[red]{row.state}[/red]"
        dead = _number(row.dead_letters)
        review = _number(row.review_queue)
        table.add_row(
            row.service,
            row.endpoint.removeprefix("http://"),
            state,
            _number(row.lag) + ("" if row.partitions is None else f" ({row.partitions}p)"),
            _number(row.rate),
            _duration(row.p99_seconds),
            f"[yellow]{dead}[/yellow]" if row.dead_letters else dead,
            f"[yellow]{review}[/yellow]" if row.review_queue else review,
            _duration(row.review_oldest_seconds) if row.review_queue else "-",
            "never" if row.since_commit_seconds is None and row.lag is not None else _ago(row.since_commit_seconds),
        )
    return table


def _ago(seconds: float | None) -> str:
    return "-" if seconds is None else f"{_duration(seconds)} ago"


def run_status(
    endpoints: Sequence[str],
    *,
    interval: float = 2.0,
    once: bool = False,
    console: Console | None = None,
    timeout: float = 3.0,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Show the view until interrupted (or one snapshot with ``once``); True when every service is ready."""
    if console is None:
        console = Console()
        if not console.is_terminal:  # a pipe or a file: don't squeeze the table into 80 columns
            console = Console(width=160)
    targets = [normalise_endpoint(endpoint) for endpoint in endpoints]
    previous = {item.endpoint: item for item in (scrape(target, timeout) for target in targets)}
    sleep(interval)
    current = [scrape(target, timeout) for target in targets]
    rows = service_rows(previous, current)
    if once:
        console.print(status_table(rows))
        return all(row.healthy for row in rows)
    try:
        with Live(status_table(rows), console=console, refresh_per_second=4) as live:
            while True:
                previous = {item.endpoint: item for item in current}
                sleep(interval)
                current = [scrape(target, timeout) for target in targets]
                rows = service_rows(previous, current)
                live.update(status_table(rows, title=f"civreg services  (every {interval:g} s; Ctrl-C to quit)"))
    except KeyboardInterrupt:
        pass
    return all(row.healthy for row in rows)
