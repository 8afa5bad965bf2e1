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
from collections.abc import Iterator
from dataclasses import dataclass
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

__all__ = ["LatencyBenchOptions", "Percentiles", "percentiles", "run_latency_suite"]

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


# The services, each in its own process ---------------------------------------------------------------------


def _department_service(settings: Settings, department: str) -> None:
    """``civreg consume --department <department>``: store, codec, runtime, acknowledgements; SIGTERM stops it."""
    from civreg.logs import configure_logging
    from consumers.operations.running import run_department

    configure_logging("WARNING")
    run_department(settings, department, metrics_port=0)


def _router_service(settings: Settings) -> None:
    """``civreg route``: one transactional lane per department; SIGTERM stops it."""
    from civreg.logs import configure_logging
    from consumers.routing.router import run_router

    configure_logging("WARNING")
    run_router(settings, metrics_port=0)


class _Services:
    """The router and the department consumers as separate processes, stopped with SIGTERM (a clean stop)."""

    def __init__(self, settings: Settings, departments: tuple[str, ...]) -> None:
        spawn = multiprocessing.get_context("spawn")
        self.processes: dict[str, multiprocessing.process.BaseProcess] = {
            "router": spawn.Process(target=_router_service, args=(settings,), name="router")
        }
        for name in departments:
            self.processes[name] = spawn.Process(target=_department_service, args=(settings, name), name=name)

    def start(self) -> None:
        for process in self.processes.values():
            process.start()

    def check_alive(self) -> None:
        dead = [name for name, process in self.processes.items() if not process.is_alive()]
        if dead:
            raise RuntimeError(f"service(s) exited during the latency run: {', '.join(dead)}")

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds (user + system) each service has used so far (Linux ``/proc``; empty elsewhere)."""
        used: dict[str, float] = {}
        ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        for name, process in self.processes.items():
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
                used[name] = round((int(fields[11]) + int(fields[12])) / ticks, 2)
        return used

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


def _publish_paced(settings: Settings, codec: Codec, events: list[Any], rate: float) -> _Published:
    """Publish ``events`` at ``rate`` per second (each at its due time, never early), noting each send time."""
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
            services = _Services(bench, extra.departments)
            with console.status("starting the router and the department consumers (one process each)"):
                services.start()
                groups = [lane_group(name, prefix) for name in extra.departments]
                groups += [department_named(name).group_id(prefix) for name in extra.departments]
                _wait_assigned(bench, groups, services, extra.start_timeout)
            events = population.events
            with console.status(f"publishing {warmup} warm-up then {measured} events at {rate:g}/s"):
                published = _publish_paced(bench, codec, events, rate)
            stores = {name: open_store(bench, name) for name in extra.departments}  # read only from here on
            with console.status("waiting until every department has applied everything"):
                _wait_settled(bench, extra.departments, services, stores, extra.settle_timeout)
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
    )
    print_latency(result, console)  # the harness prints rates and cases; this suite's figures are percentiles
    return result


def _result(
    *,
    rate: float,
    published: _Published,
    sent: dict[str, float],
    per_department: dict[str, dict[str, float]],
    routed: dict[str, dict[str, float]],
    entitled: dict[str, int],
    context: dict[str, Any],
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
    target = Target(f"end-to-end p99, all services, at {rate:g} events/s", rows[ALL].p99 / 1000, P99_GOAL_SECONDS, "s")
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
