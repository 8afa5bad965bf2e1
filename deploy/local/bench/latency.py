"""Latency suite: publish to applied, in every service, at a fixed rate with the whole topology running.

The topology as it runs in production, each service in its own process (the GIL): the router (``civreg route``,
``run_router``) and the six department consumers (``civreg consume``, ``run_department``, acknowledgements on),
each department on its own store holding a register drawn from the published population. This process publishes
with ``Publisher`` at a paced fixed rate for a fixed time (a warm-up first, not counted), then waits until the
router and every department have applied everything, stops the services with SIGTERM and reads the figures.

Latency of an event in a department = the ``processed_at`` of its row in that department's store
(``civreg_event_outcomes``, written in the batch's database transaction, just before its commit) minus the time
this process handed the event to ``Publisher.publish`` (the send time: what a registrar would see as "submitted").
Both are wall-clock times of one machine. The applied time is what the store recorded, not what a service said
about itself. Reported per department and over all of them (every (event, department) pair), and per event as
the time until the LAST entitled department applied it, which is the target's figure ("applied in all services").
The broker's acknowledgement of each publish is measured too (send to delivery report), as context.

Where a rate is missed, what bounds it is measured in the same run: the CPU each process used over the measured
window (this process publishing; the router, each department consumer and, on PostgreSQL, the server backends of
this run's database, from the first measured send until everything was applied) and the events it handled in that
window, read from the topics and stores. CPU per offered event summed over processes, times the rate, is the cores
the topology needs to keep up, set against ``os.cpu_count()``.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from civreg.cluster import committed_log_ranges
from civreg.codec_from_settings import open_registry_resolver
from civreg.kafka_config import admin_config, consumer_config
from civreg.settings import Settings
from consumers.departments import DEPARTMENTS, department_named
from consumers.kit.customer_records import load_customer_records
from consumers.operations.running import open_store
from consumers.routing.router import lane_group
from consumers.runtime.agreements import load_agreements
from deploy.local.bench.codec import _registry
from deploy.local.bench.consumer import _broker, _delete_topics
from deploy.local.bench.harness import BenchOptions, SuiteResult, Target
from deploy.topics import apply_topics
from producers.customer_records import simulate_customer_records
from producers.publisher import DeliveryReport, Publisher
from producers.simulation import simulate_population
from schemas.codec import Codec
from schemas.topics import registration_topic

__all__ = [
    "CpuBound",
    "LatencyBenchOptions",
    "Percentiles",
    "ProcessCpu",
    "cpu_bound",
    "percentiles",
    "run_latency_suite",
]

P99_GOAL_SECONDS = 0.250
ALL = "all services (last to apply)"
"""The row whose p99 is the target: per event, the time until every entitled department had applied it."""


@dataclass(frozen=True)
class LatencyBenchOptions:
    """What the latency suite runs besides the shared options (rate and duration come from ``BenchOptions``)."""

    departments: tuple[str, ...] = tuple(DEPARTMENTS)
    warmup_seconds: float = 3.0
    start_timeout: float = 120.0
    settle_timeout: float = 300.0
    profile_dir: Path | None = None
    """When set, each service runs under cProfile and writes ``<profile_dir>/<service>.prof`` when stopped."""


@dataclass(frozen=True)
class Percentiles:
    """Latencies of one row, in milliseconds."""

    samples: int
    p50: float
    p95: float
    p99: float
    max: float


def percentiles(seconds: list[float]) -> Percentiles:
    """p50/p95/p99 (inclusive method: a percentile is never beyond the samples) and the maximum, in ms."""
    if not seconds:
        return Percentiles(0, 0.0, 0.0, 0.0, 0.0)
    ms = sorted(s * 1000 for s in seconds)
    if len(ms) == 1:
        return Percentiles(1, ms[0], ms[0], ms[0], ms[0])
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return Percentiles(len(ms), cuts[49], cuts[94], cuts[98], ms[-1])


# CPU per event: what bounds the rate ------------------------------------------------------------------------

PUBLISHER = "publisher (this process)"
POSTGRES = "postgres server (this run's backends)"


@dataclass(frozen=True)
class ProcessCpu:
    """One process over the measured window: CPU it used, events it handled, and events it handles per offered
    event (1 for the publisher; the router's deliveries and a department's applied events are one per entitled
    (event, department) pair, so a fraction, or for the router a multiple, of each offered event)."""

    process: str
    events: int
    cpu_seconds: float
    wall_seconds: float
    per_offered_event: float
    waited_for_core_seconds: float | None = None
    """Time its main thread was ready to run but waited for a core (Linux schedstat): CPU taken by other work."""

    @property
    def cpu_ms_per_event(self) -> float | None:
        """CPU milliseconds per event handled (None when it handled none)."""
        return self.cpu_seconds * 1000 / self.events if self.events else None

    @property
    def share_of_core(self) -> float:
        """CPU seconds per second of wall clock (1.0 is one core kept busy)."""
        return self.cpu_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def cpu_seconds_per_offered_event(self) -> float | None:
        """CPU seconds this process spends per event offered to the topology."""
        per_event = self.cpu_ms_per_event
        return None if per_event is None else per_event / 1000 * self.per_offered_event


@dataclass(frozen=True)
class CpuBound:
    """What the measured CPU per event implies at ``rate``: derived figures, not measured rates.

    ``cores_needed`` = CPU seconds per offered event summed over the processes, times the rate (the topology keeps up
    only if the machine has them); ``machine_rate`` = the cores available ÷ that sum; ``process_rate`` = the rate at
    which the busiest single process needs a whole core (a Python process's own work runs on one core at a time,
    the GIL); ``highest_rate`` = the lower of the two, and ``bound_by`` names which."""

    rate: float
    cpus: int
    cpu_seconds_per_offered_event: float
    cores_needed: float
    machine_rate: float
    busiest: str
    process_rate: float
    highest_rate: float
    bound_by: str
    cores_used: float
    """Measured: CPU seconds per second of the window, summed over the processes (at most ``cpus``)."""

    def describe(self) -> str:
        """One line for the targets table and the suite's facts."""
        return (
            f"CPU bound at {self.rate:g} events/s: {self.cores_needed:.2f} cores needed of {self.cpus} "
            f"({self.cores_used:.2f} used in the window); "
            f"highest sustainable rate {self.highest_rate:,.0f} events/s, bound by {self.bound_by} "
            f"(derived from measured CPU per event, not a measured rate)"
        )


def cpu_bound(processes: list[ProcessCpu], rate: float, cpus: int) -> CpuBound | None:
    """The bound the per-event CPU figures imply (None when a process handled no event: nothing to divide by)."""
    per_offered = {p.process: p.cpu_seconds_per_offered_event for p in processes}
    if not processes or any(v is None or v <= 0 for v in per_offered.values()):
        return None
    figures = {name: float(v or 0.0) for name, v in per_offered.items()}
    total = sum(figures.values())
    busiest = max(figures, key=lambda name: figures[name])
    machine_rate, process_rate = cpus / total, 1 / figures[busiest]
    return CpuBound(
        rate=rate,
        cpus=cpus,
        cpu_seconds_per_offered_event=total,
        cores_needed=total * rate,
        machine_rate=machine_rate,
        busiest=busiest,
        process_rate=process_rate,
        highest_rate=min(machine_rate, process_rate),
        bound_by=f"the {cpus} cores" if machine_rate <= process_rate else f"one core for {busiest}",
        cores_used=round(sum(p.share_of_core for p in processes), 3),
    )


def _proc_cpu_seconds(pid: int | None) -> float | None:
    """CPU seconds (user + system, every thread) a process has used so far, from Linux ``/proc`` (None elsewhere
    or when it has gone)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _proc_waited_seconds(pid: int | None) -> float | None:
    """Seconds the main thread of a process (where its Python work runs) has spent ready to run but waiting for a
    core (the run queue), from Linux ``/proc/<pid>/schedstat`` (None elsewhere)."""
    if pid is None:
        return None
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


def _postgres_backends(settings: Settings) -> list[int]:
    """Server process ids of the connections to this run's database (the services'), none when on SQLite."""
    if settings.postgres_dsn is None:
        return []
    import psycopg

    with psycopg.connect(settings.postgres_dsn.get_secret_value(), autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return [int(row[0]) for row in rows]


@dataclass(frozen=True)
class _Snapshot:
    """CPU seconds used so far by every process of the run, and when (wall clock, as the send times)."""

    at: float
    cpu: dict[str, float]
    waited: dict[str, float]
    backends: dict[int, tuple[float, float]]


def _snapshot(services: _Services, backends: list[int]) -> _Snapshot:
    own = os.times()
    cpu = {PUBLISHER: own.user + own.system}
    waited: dict[str, float] = {}
    for name, pid in [(PUBLISHER, os.getpid()), *((n, p.pid) for n, p in services.processes.items())]:
        used, wait = _proc_cpu_seconds(pid), _proc_waited_seconds(pid)
        if used is not None and name != PUBLISHER:
            cpu[name] = used
        if wait is not None:
            waited[name] = wait
    server = {
        pid: (used, _proc_waited_seconds(pid) or 0.0)
        for pid in backends
        if (used := _proc_cpu_seconds(pid)) is not None
    }
    return _Snapshot(time.time(), cpu, waited, server)


def _in_window(stamps: Any, start: float, end: float) -> int:
    return sum(start <= stamp <= end for stamp in stamps)


def _processed_stamps(store: Any) -> list[float]:
    """When each outcome row of a department's store was written (every event, warm-up included)."""
    rows = store.read().execute("SELECT processed_at FROM civreg_event_outcomes")
    return [datetime.fromisoformat(str(row[0])).timestamp() for row in rows]


# The services, each in its own process ---------------------------------------------------------------------


def _profiled(profile: Path | None, run: Callable[[], object]) -> None:
    """Run a service, under cProfile when ``profile`` is a path (written when the service stops)."""
    if profile is None:
        run()
        return
    import cProfile

    profiler = cProfile.Profile()
    try:
        profiler.runcall(run)
    finally:
        profiler.dump_stats(profile)


def _department_service(settings: Settings, department: str, profile: Path | None = None) -> None:
    """``civreg consume --department <department>``: store, codec, runtime, acknowledgements; SIGTERM stops it."""
    from civreg.logs import configure_logging
    from consumers.operations.running import run_department

    configure_logging("WARNING")
    _profiled(profile, lambda: run_department(settings, department, metrics_port=0))


def _router_service(settings: Settings, profile: Path | None = None) -> None:
    """``civreg route``: one transactional lane per department; SIGTERM stops it."""
    from civreg.logs import configure_logging
    from consumers.routing.router import run_router

    configure_logging("WARNING")
    _profiled(profile, lambda: run_router(settings, metrics_port=0))


class _Services:
    """The router and the department consumers as separate processes, stopped with SIGTERM (a clean stop)."""

    def __init__(self, settings: Settings, departments: tuple[str, ...], profile_dir: Path | None = None) -> None:
        spawn = multiprocessing.get_context("spawn")

        def profile(name: str) -> Path | None:
            return None if profile_dir is None else profile_dir / f"{name}.prof"

        self.processes: dict[str, multiprocessing.process.BaseProcess] = {
            "router": spawn.Process(target=_router_service, args=(settings, profile("router")), name="router")
        }
        for name in departments:
            self.processes[name] = spawn.Process(
                target=_department_service, args=(settings, name, profile(name)), name=name
            )

    def groups(self, prefix: str) -> list[str]:
        """The consumer groups the services join: each router lane's and each department's."""
        departments = [name for name in self.processes if name != "router"]
        return [lane_group(name, prefix) for name in departments] + [
            department_named(name).group_id(prefix) for name in departments
        ]

    def start(self) -> None:
        for process in self.processes.values():
            process.start()

    def check_alive(self) -> None:
        dead = [name for name, process in self.processes.items() if not process.is_alive()]
        if dead:
            raise RuntimeError(f"service(s) exited during the latency run: {', '.join(dead)}")

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds (user + system) each service has used so far (Linux ``/proc``; empty elsewhere)."""
        used = {name: _proc_cpu_seconds(process.pid) for name, process in self.processes.items()}
        return {name: round(seconds, 2) for name, seconds in used.items() if seconds is not None}

    def stop(self) -> None:
        started = [process for process in self.processes.values() if process.pid is not None]
        for process in started:
            if process.is_alive():
                process.terminate()  # SIGTERM: finish the batch in hand, leave the group
        for process in started:
            process.join(60)
            if process.is_alive():
                process.kill()
                process.join(10)


# Waiting on the broker: assignment before publishing, the end of every log after ----------------------------


def _wait_assigned(settings: Settings, groups: list[str], services: _Services, timeout: float) -> None:
    """Until every group (each router lane, each department) is stable with partitions assigned to a member."""
    admin = AdminClient(admin_config(settings, role="bench"))
    deadline = time.monotonic() + timeout
    while True:
        services.check_alive()
        ready = 0
        with contextlib.suppress(Exception):
            for future in admin.describe_consumer_groups(groups, request_timeout=10).values():
                described = future.result()
                if any(member.assignment.topic_partitions for member in described.members):
                    ready += 1
        if ready == len(groups):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(groups) - ready} of {len(groups)} consumer groups not assigned in {timeout} s")
        time.sleep(0.5)


def _log_ends(admin: AdminClient, topics: list[str]) -> dict[tuple[str, int], int]:
    """Last stable offset of every partition of ``topics`` (read committed: commit markers included)."""
    return {key: end for key, (_start, end) in committed_log_ranges(admin, topics).items()}


def _wait_settled(
    settings: Settings, departments: tuple[str, ...], services: _Services, stores: dict[str, Any], timeout: float
) -> None:
    """Until the router has routed every registration and each department's store has applied its whole topic.

    Exact, not a quiet period: each router lane's committed offsets (committed in its transactions) reach the end
    of the registration topics it reads, and then each store's offsets (the consumer's truth) reach the last
    stable offset of its department topic.
    """
    admin = AdminClient(admin_config(settings, role="bench"))
    agreements = load_agreements(settings.config_files.agreements_dir)
    deadline = time.monotonic() + timeout
    pending = list(departments)
    behind = ""
    while pending:
        services.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"not settled in {timeout} s: {', '.join(pending)} ({behind})")
        name = pending[0]
        lane_topics = sorted(registration_topic(r, settings.topic_prefix) for r in agreements[name].registers)
        reader = Consumer(consumer_config(settings, lane_group(name, settings.topic_prefix), role="bench"))
        try:
            ends = _log_ends(admin, lane_topics)
            committed = reader.committed([TopicPartition(t, p) for t, p in ends], timeout=10)
        finally:
            reader.close()
        lag = sum(max(ends[(tp.topic, tp.partition)] - max(tp.offset, 0), 0) for tp in committed)
        if lag:
            behind = f"{name}'s router lane {lag} behind"
            time.sleep(0.2)
            continue
        department_ends = _log_ends(admin, department_named(name).topics(settings.topic_prefix))
        stored = stores[name].stored_offsets()
        lag = sum(max(end - stored.get(key, 0), 0) for key, end in department_ends.items())
        if lag:
            behind = f"{name}'s store {lag} behind"
            time.sleep(0.2)
            continue
        pending.pop(0)


# Publishing at a fixed rate ------------------------------------------------------------------------------


@dataclass
class _Published:
    sent: dict[str, float]
    delivered: dict[str, float]
    first: float
    last: float


def _publish_paced(
    settings: Settings,
    codec: Codec,
    events: list[Any],
    rate: float,
    *,
    measured_from: int = 0,
    at_measured: Callable[[], None] | None = None,
) -> _Published:
    """Publish ``events`` at ``rate`` per second (each at its due time, never early), noting each send time;
    ``at_measured`` is called just before the send of ``events[measured_from]`` (the measured window opens)."""
    sent: dict[str, float] = {}
    delivered: dict[str, float] = {}

    def on_delivery(report: DeliveryReport) -> None:
        if report.delivered:
            delivered[report.event_id] = time.time()

    with Publisher(settings, codec=codec, on_delivery=on_delivery) as publisher:
        start = time.monotonic()
        for index, event in enumerate(events):
            wait = start + index / rate - time.monotonic()
            if wait > 0:
                # Serve delivery reports while waiting, so their times are close to the broker's answer.
                publisher.poll(wait)
                wait = start + index / rate - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            if index == measured_from and at_measured is not None:
                at_measured()
            sent[str(event.event_id)] = time.time()
            publisher.publish(event)
            publisher.poll(0)
        stamps = list(sent.values())
    return _Published(sent, delivered, stamps[0], stamps[-1])


# The suite -----------------------------------------------------------------------------------------------


def _applied_times(store: Any, wanted: dict[str, float]) -> dict[str, tuple[float, tuple[str, int, int]]]:
    """Event id -> (seconds from send to the outcome row's ``processed_at``, the department-topic position it was
    read from), for the measured events only."""
    rows = store.read().execute('SELECT event_id, processed_at, topic, partition, "offset" FROM civreg_event_outcomes')
    return {
        str(row[0]): (
            datetime.fromisoformat(str(row[1])).timestamp() - wanted[str(row[0])],
            (str(row[2]), int(row[3]), int(row[4])),
        )
        for row in rows
        if str(row[0]) in wanted
    }


def _routed_stamps(settings: Settings, topics: list[str]) -> dict[tuple[str, int, int], float]:
    """(topic, partition, offset) -> when the router produced it (the record's create time), every record of
    ``topics`` (read committed, from the start; the run's topics hold only this run's records)."""
    admin = AdminClient(admin_config(settings, role="bench"))
    ends = {key: end for key, end in _log_ends(admin, topics).items() if end > 0}
    consumer = Consumer(consumer_config(settings, f"bench-latency-{uuid.uuid4().hex}", role="bench"))
    stamps: dict[tuple[str, int, int], float] = {}
    try:
        consumer.assign([TopicPartition(t, p, 0) for t, p in ends])
        deadline = time.monotonic() + 60
        while ends and time.monotonic() < deadline:
            for message in consumer.consume(10_000, 0.5):
                if message.error() is not None:
                    continue
                topic, partition, offset = str(message.topic()), int(message.partition() or 0), message.offset() or 0
                stamps[(topic, partition, offset)] = message.timestamp()[1] / 1000
                if offset >= ends.get((topic, partition), 0) - 2:  # the last record (a commit marker follows)
                    ends.pop((topic, partition), None)
    finally:
        consumer.close()
    return stamps


@contextlib.contextmanager
def _bench_database(settings: Settings) -> Iterator[Settings]:
    """Settings whose PostgreSQL stores are in a database of this run's own (created, then dropped): the services
    use the schemas ``civreg_<department>``, and a benchmark must never write into, or drop, a real department's."""
    if settings.postgres_dsn is None:
        yield settings
        return
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    dsn = settings.postgres_dsn.get_secret_value()
    name = f"civreg_bench_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        raise RuntimeError(
            f"the latency suite needs to create a database of its own on CIVREG_POSTGRES_DSN's server "
            f"({type(exc).__name__}); grant CREATEDB or unset CIVREG_POSTGRES_DSN to run it on SQLite"
        ) from None
    try:
        yield settings.model_copy(update={"postgres_dsn": SecretStr(make_conninfo(dsn, dbname=name))})
    finally:
        with contextlib.suppress(psycopg.Error), psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _load_registers(settings: Settings, departments: tuple[str, ...], population: Any, seed: int) -> None:
    """Each department's register, drawn from the published population (matching does real work); each store is
    closed again: the service opens its own."""
    for name in departments:
        store = open_store(settings, name)
        try:
            if name != "suppression":
                rows = [r.row for r in simulate_customer_records(population, name, seed)]
                load_customer_records(store, department_named(name), rows)
        finally:
            store.close()


def run_latency_suite(
    settings: Settings, options: BenchOptions, console: Console, extra: LatencyBenchOptions | None = None
) -> SuiteResult:
    """Run the whole topology, publish at a fixed rate, and report publish-to-applied latency per service."""
    extra = extra or LatencyBenchOptions()
    rate, seconds = options.latency_rate, options.latency_seconds
    # The stores the services would use: PostgreSQL when CIVREG_POSTGRES_DSN is set (in a database of the run's own).
    engine = "sqlite" if settings.postgres_dsn is None else "postgres"
    with (
        _broker(settings, console) as (broker_settings, broker),
        _registry(broker_settings, console) as (url, registry),
        _bench_database(broker_settings) as database_settings,
    ):
        load_before = os.getloadavg()[0]  # the machine's other work shows in latency: recorded with it
        workdir = Path(tempfile.mkdtemp(prefix="civreg-bench-latency-"))
        prefix = f"bench-{uuid.uuid4().hex[:8]}"
        bench = database_settings.model_copy(
            update={
                "topic_prefix": prefix,
                "database_dir": workdir,
                "registry_url": url,
                "registry_auto_register": True,
                "metrics_port": 0,
            }
        )
        stores: dict[str, Any] = {}
        services: _Services | None = None
        try:
            apply_topics(bench, tuple(DEPARTMENTS), replication_factor=1, profile="local")
            codec = Codec(open_registry_resolver(bench, url), topic_prefix=prefix)
            warmup = max(1, round(rate * extra.warmup_seconds))
            measured = max(1, round(rate * seconds))
            with console.status(f"simulating {warmup + measured} events and their population"):
                population = simulate_population(warmup + measured, options.seed)
                _load_registers(bench, extra.departments, population, options.seed)
            services = _Services(bench, extra.departments, extra.profile_dir)
            with console.status("starting the router and the department consumers (one process each)"):
                services.start()
                _wait_assigned(bench, services.groups(prefix), services, extra.start_timeout)
            events = population.events
            with console.status(f"publishing {warmup} warm-up then {measured} events at {rate:g}/s"):
                published, window, backends = _publish_measured(
                    bench, codec, events, rate=rate, warmup=warmup, services=services
                )
            stores = {name: open_store(bench, name) for name in extra.departments}  # read only from here on
            with console.status("waiting until every department has applied everything"):
                _wait_settled(bench, extra.departments, services, stores, extra.settle_timeout)
            window.append(_snapshot(services, backends))
            cpu = services.cpu_seconds()
            services.stop()
            agreements = load_agreements(bench.config_files.agreements_dir)
            entitled = {
                name: sum(agreements[name].withheld_because(event) is None for event in events[warmup:])
                for name in extra.departments
            }
            sent = {str(event.event_id): published.sent[str(event.event_id)] for event in events[warmup:]}
            applied = {name: _applied_times(store, sent) for name, store in stores.items()}
            routed_at = _routed_stamps(bench, [department_named(name).topics(prefix)[0] for name in applied])
            per_department = {name: {e: at for e, (at, _) in times.items()} for name, times in applied.items()}
            processes = _process_cpu(
                window,
                sent_stamps=list(published.sent.values()),
                routed_stamps=list(routed_at.values()),
                applied_stamps={name: _processed_stamps(store) for name, store in stores.items()},
                entitled=entitled,
                measured=measured,
            )
            routed = {  # send -> the router produced it on the department's topic
                name: {e: routed_at[pos] - sent[e] for e, (_, pos) in times.items() if pos in routed_at}
                for name, times in applied.items()
            }
        finally:
            if services is not None:
                services.stop()
            for store in stores.values():
                store.close()
            shutil.rmtree(workdir, ignore_errors=True)
            _delete_topics(bench)
    result = _result(
        rate=rate,
        published=published,
        sent=sent,
        per_department=per_department,
        routed=routed,
        entitled=entitled,
        context={
            "broker": broker,
            "registry": registry,
            "engine": engine,
            "target rate, events/s": rate,
            "measured seconds": seconds,
            "warm-up events": warmup,
            "services": f"router + {len(extra.departments)} department consumers, one process each",
            "cpus": os.cpu_count(),
            "load average (1 min) before / after": f"{load_before:.1f} / {os.getloadavg()[0]:.1f}",
            "CPU seconds per service (whole run)": cpu,
        },
        processes=processes,
        cpus=os.cpu_count() or 1,
    )
    print_latency(result, console)  # the harness prints rates and cases; this suite's figures are percentiles
    return result


def _publish_measured(
    settings: Settings, codec: Codec, events: list[Any], *, rate: float, warmup: int, services: _Services
) -> tuple[_Published, list[_Snapshot], list[int]]:
    """Publish at the rate, opening the measured window: every process's CPU when the first measured event is sent
    and when publishing is done (the publisher's window; the services' ends when everything is applied)."""
    backends = _postgres_backends(settings)  # the services' connections (the bench's own are opened later)
    window: list[_Snapshot] = []
    published = _publish_paced(
        settings,
        codec,
        events,
        rate,
        measured_from=warmup,
        at_measured=lambda: window.append(_snapshot(services, backends)),
    )
    window.append(_snapshot(services, backends))
    return published, window, backends


def _process_cpu(
    window: list[_Snapshot],
    *,
    sent_stamps: list[float],
    routed_stamps: list[float],
    applied_stamps: dict[str, list[float]],
    entitled: dict[str, int],
    measured: int,
) -> list[ProcessCpu]:
    """Each process's CPU over the measured window and the events it handled in it (warm-up stragglers handled in
    the window count too: their CPU is in it). The publisher's window ends when publishing does; the services'
    when everything was applied, so every measured event's work is inside it."""
    opened, published, settled = window
    pairs = sum(entitled.values()) / measured  # (event, department) pairs per offered event

    def row(name: str, end: _Snapshot, events: int, per_offered: float) -> ProcessCpu:
        used = end.cpu.get(name, 0.0) - opened.cpu.get(name, 0.0)
        waited = None
        if name in end.waited and name in opened.waited:
            waited = round(end.waited[name] - opened.waited[name], 3)
        return ProcessCpu(name, events, round(used, 3), round(end.at - opened.at, 3), round(per_offered, 4), waited)

    rows = [
        row(PUBLISHER, published, _in_window(sent_stamps, opened.at, published.at), 1.0),
        row("router", settled, _in_window(routed_stamps, opened.at, settled.at), pairs),
    ]
    for name, stamps in applied_stamps.items():
        rows.append(row(name, settled, _in_window(stamps, opened.at, settled.at), entitled[name] / measured))
    if opened.backends:
        both = [pid for pid in opened.backends if pid in settled.backends]
        used = sum(settled.backends[pid][0] - opened.backends[pid][0] for pid in both)
        waited = sum(settled.backends[pid][1] - opened.backends[pid][1] for pid in both)
        events = sum(r.events for r in rows if r.process in applied_stamps)
        wall = round(settled.at - opened.at, 3)
        rows.append(ProcessCpu(POSTGRES, events, round(used, 3), wall, round(pairs, 4), round(waited, 3)))
    return rows


def _result(
    *,
    rate: float,
    published: _Published,
    sent: dict[str, float],
    per_department: dict[str, dict[str, float]],
    routed: dict[str, dict[str, float]],
    entitled: dict[str, int],
    context: dict[str, Any],
    processes: list[ProcessCpu],
    cpus: int,
) -> SuiteResult:
    stamps = sorted(sent.values())
    achieved = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 and stamps[-1] > stamps[0] else 0.0
    last: dict[str, float] = {}
    for times in per_department.values():
        for event_id, latency in times.items():
            last[event_id] = max(latency, last.get(event_id, latency))
    rows: dict[str, Percentiles] = {name: percentiles(list(times.values())) for name, times in per_department.items()}
    rows["every (event, department) pair"] = percentiles([x for t in per_department.values() for x in t.values()])
    rows[ALL] = percentiles(list(last.values()))
    # Where the time goes: up to the router's produce on the department topic, and from there to applied.
    rows["stage: send to routed (router produced it)"] = percentiles([x for t in routed.values() for x in t.values()])
    rows["stage: routed to applied (department)"] = percentiles(
        [per_department[name][e] - x for name, t in routed.items() for e, x in t.items()]
    )
    acked = [published.delivered[e] - at for e, at in sent.items() if e in published.delivered]
    rows["publish: send to broker acknowledgement"] = percentiles(acked)
    bound = cpu_bound(processes, rate, cpus)
    target = Target(
        f"end-to-end p99, all services, at {rate:g} events/s",
        rows[ALL].p99 / 1000,
        P99_GOAL_SECONDS,
        "s",
        note="" if bound is None else bound.describe(),
    )
    return SuiteResult(
        suite="latency",
        title=f"End-to-end latency: publish (send) to applied in each department's store, {rate:g} events/s",
        ours_label="civreg",
        baseline_label="-",
        targets=[target],
        context={
            **context,
            "events measured": len(sent),
            "achieved publish rate, events/s": round(achieved, 1),
            "events applied by at least one department": len(last),
            "entitled events per department": entitled,
            "latency ms": {name: vars(row) for name, row in rows.items()},
            "CPU per process (measured window)": {
                p.process: {
                    **asdict(p),
                    "CPU ms per event": p.cpu_ms_per_event,
                    "share of a core": round(p.share_of_core, 3),
                    "CPU seconds per offered event": p.cpu_seconds_per_offered_event,
                }
                for p in processes
            },
            "CPU bound": None if bound is None else {**asdict(bound), "note": bound.describe()},
        },
    )


def print_latency(result: SuiteResult, console: Console) -> None:
    """The latency table (``print_suite`` prints the facts line under it)."""
    rows: dict[str, dict[str, float]] = result.context.get("latency ms", {})
    entitled: dict[str, int] = result.context.get("entitled events per department", {})
    table = Table(title=result.title)
    for column in ("service", "events", "entitled", "p50 ms", "p95 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="left" if column == "service" else "right")
    for name, row in rows.items():
        figures = (f"{row[key]:.1f}" for key in ("p50", "p95", "p99", "max"))
        table.add_row(name, str(row["samples"]), str(entitled.get(name, "")), *figures)
    console.print(table)
    processes: dict[str, dict[str, Any]] = result.context.get("CPU per process (measured window)", {})
    if not processes:
        return
    cpu = Table(
        title="CPU per process over the measured window: from the first measured send until the last (publisher), "
        "until everything was applied (the others)"
    )
    columns = ("events handled", "per offered event", "CPU s", "CPU ms per event", "CPU ms per offered event")
    for column in ("process", *columns, "share of a core", "main thread waiting for a core"):
        cpu.add_column(column, justify="left" if column == "process" else "right")
    for name, p in processes.items():
        per_event, per_offered = p["CPU ms per event"], p["CPU seconds per offered event"]
        cpu.add_row(
            name,
            f"{p['events']:,}",
            f"{p['per_offered_event']:g}",
            f"{p['cpu_seconds']:.2f}",
            "-" if per_event is None else f"{per_event:.2f}",
            "-" if per_offered is None else f"{per_offered * 1000:.2f}",
            f"{p['share of a core']:.2f}",
            "-" if p["waited_for_core_seconds"] is None else f"{p['waited_for_core_seconds'] / p['wall_seconds']:.0%}",
        )
    bound: dict[str, Any] | None = result.context.get("CPU bound")
    if bound is not None:
        cores = sum(p["share of a core"] for p in processes.values())
        total = bound["cpu_seconds_per_offered_event"] * 1000
        totals = ("all processes", "", "", "", "", f"{total:.2f}", f"{cores:.2f}", "")
        cpu.add_row(*totals, style="bold")
    console.print(cpu)
    if bound is not None:
        console.print(bound["note"], highlight=False)
        console.print(
            "[dim]Not counted: the Kafka broker and the schema registry (shared with other work on this machine, "
            "not attributable to this run); they need CPU too.[/]"
        )
