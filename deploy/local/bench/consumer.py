"""Consumer suite: consume + decode + apply for every department, against what the raw client and the stock path do.

One run, one broker, one registry, one simulated population: its events are published once (every event type)
and each department holds a register drawn from the same population (so matching does real work). Then, each
over the same messages, timed from the moment its partitions are assigned to the last message handled (the group
join excluded alike; the fetches from the broker included alike):

- **raw ceiling**: a plain confluent-kafka loop, ``consume(num_messages=...)`` batches, touching each value;
- **civreg**: ``DepartmentConsumer`` on SQLite and on PostgreSQL (when ``CIVREG_POSTGRES_DSN`` is set);
- **stock**: ``DeserializingConsumer`` + ``AvroDeserializer``, the same rules through ``dispatch`` (agreement,
  de-duplication, entry versions, a savepoint per event) in one transaction per batch of the same size with the
  offsets, then a synchronous offset commit: what a careful user would write with the stock client;
- **scaling**: one process, then two processes of one department in one group (separate processes: the GIL);
- **back-fill**: the rate of the scaling run, projected to 15 million events (a projection, labelled as one).

Every figure is a measurement of this run; targets are ratios of figures of the same run.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, DeserializingConsumer, Message, TopicPartition
from rich.console import Console

from civreg.codec_from_settings import open_registry_resolver
from civreg.kafka_config import admin_config, consumer_config
from civreg.settings import Settings
from consumers.departments import DEPARTMENTS, department_named
from consumers.kit.customer_records import load_customer_records
from consumers.routing.router import Router
from consumers.runtime import DepartmentConsumer, SqliteStore, Store
from consumers.runtime.agreements import agreement_for
from consumers.runtime.dispatch import dispatch
from consumers.runtime.postgres_store import PostgresStore
from deploy.local.bench.codec import _registry
from deploy.local.bench.harness import BenchOptions, Rate, SuiteResult, Target, fixtures_out_of_gc
from deploy.local.jvm import free_port
from deploy.local.kafka import LocalKafka
from deploy.topics import apply_topics
from producers.customer_records import simulate_customer_records
from producers.publisher import Publisher
from producers.simulation import simulate_population
from schemas.codec import Codec
from schemas.models import EVENT_MODELS

__all__ = ["ConsumerBenchOptions", "run_consumer_suite"]

BACKFILL_EVENTS = 15_000_000
BACKFILL_GOAL_SECONDS = 15 * 60


@dataclass(frozen=True)
class ConsumerBenchOptions:
    """What the consumer suite runs besides the shared options."""

    departments: tuple[str, ...] = tuple(DEPARTMENTS)
    scaling_department: str = "tax"
    batch_size: int = 500


@dataclass(frozen=True)
class _Run:
    messages: int
    seconds: float
    retries: int = 0
    """Batches rolled back and run again (a serialization failure, a deadlock, a locked database)."""

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0


class _TimedConsumer(DepartmentConsumer):
    """The runtime, noting when its partitions were first assigned and when its last batch was committed.

    Every path is timed the same way, from assignment to the last message handled: the group join (which depends
    on the broker's rebalance delay, not on the path) is outside the timing, and every path's fetches from the
    broker are inside it. Timing from the first record received instead would let librdkafka prefetch the whole
    topic before the clock starts, and the raw ceiling would measure a Python loop over memory.
    """

    first: float | None = None
    last: float = 0.0

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self.first is None:
            self.first = time.time()
        super()._on_assign(consumer, partitions)

    def _process(self, messages: Any) -> None:
        super()._process(messages)
        self.last = time.time()


class _AssignedAt:
    """An ``on_assign`` callback for the plain clients: when the first partitions were assigned."""

    def __init__(self) -> None:
        self.at: float | None = None

    def __call__(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self.at is None:
            self.at = time.time()


def _fresh_store(settings: Settings, department: str, engine: str, workdir: Path) -> Store:
    declared = department_named(department)
    if engine == "postgres":
        assert settings.postgres_dsn is not None
        schema = f"bench_{department}_{uuid.uuid4().hex[:8]}"
        return PostgresStore(settings.postgres_dsn.get_secret_value(), schema, declared.schema)
    return SqliteStore(workdir / f"{department}-{uuid.uuid4().hex}.sqlite3", declared.schema)


def _drop(store: Store) -> None:
    if isinstance(store, PostgresStore):
        with contextlib.suppress(Exception):
            store.read().execute(f'DROP SCHEMA IF EXISTS "{store.schema}" CASCADE')
    store.close()


def _store_with_register(
    settings: Settings, department: str, engine: str, workdir: Path, rows: list[dict[str, str]]
) -> Store:
    store = _fresh_store(settings, department, engine, workdir)
    if rows:
        load_customer_records(store, department_named(department), rows)
    return store


def _civreg(settings: Settings, department: str, store: Store, codec: Codec, batch_size: int) -> _Run:
    """The runtime on a fresh store: it starts every partition at the beginning (the store holds no offsets)."""
    consumer = _TimedConsumer(department_named(department), settings, store, codec=codec, batch_size=batch_size)
    report = consumer.run(until_caught_up=True)
    return _Run(report.messages, consumer.last - (consumer.first or consumer.last))


def _raw(settings: Settings, topics: list[str], expected: int, batch_size: int) -> _Run:
    """The ceiling: a plain consume loop over the same topics, touching every value."""
    consumer = Consumer({**consumer_config(settings, f"bench-raw-{uuid.uuid4().hex}"), "auto.offset.reset": "earliest"})
    assigned = _AssignedAt()
    consumer.subscribe(topics, on_assign=assigned)
    seen, size = 0, 0
    try:
        while seen < expected:
            # Never ask for more than remain: a short last batch would otherwise wait out the whole timeout.
            for message in consumer.consume(min(batch_size, expected - seen), 1.0):
                if message.error() is not None:
                    continue
                size += len(message.value() or b"")
                seen += 1
        assert assigned.at is not None  # records arrive only after assignment
        return _Run(seen, time.time() - assigned.at)
    finally:
        consumer.close()


def _stock(
    settings: Settings, department: str, topics: list[str], *, expected: int, store: Store, batch_size: int
) -> _Run:
    """``DeserializingConsumer`` + ``AvroDeserializer``, the same rules, a transaction per batch, sync commits."""
    from confluent_kafka.schema_registry import topic_record_subject_name_strategy
    from confluent_kafka.schema_registry.avro import AvroDeserializer

    from schemas.registry import registry_client

    assert settings.registry_url is not None
    password = settings.registry_password.get_secret_value() if settings.registry_password else None
    client = registry_client(settings.registry_url, username=settings.registry_username, password=password)
    config = consumer_config(settings, f"bench-stock-{uuid.uuid4().hex}")
    config["value.deserializer"] = AvroDeserializer(
        client, conf={"subject.name.strategy": topic_record_subject_name_strategy}
    )
    consumer = DeserializingConsumer({**config, "auto.offset.reset": "earliest"})
    assigned = _AssignedAt()
    consumer.subscribe(topics, on_assign=assigned)
    declared = department_named(department)
    agreement = agreement_for(department, settings.config_files.agreements_dir)
    seen = 0
    try:
        while seen < expected:
            batch: list[Message] = []
            while len(batch) < batch_size and seen + len(batch) < expected:
                message = consumer.poll(1.0)
                if message is None or message.error() is not None:
                    if batch:
                        break
                    continue
                batch.append(message)
            if not batch:
                continue
            offsets: dict[tuple[str, int], int] = {}
            with store.transaction() as transaction:
                for message in batch:
                    header = dict(message.headers() or [])["civreg.event_type"]  # the router names it
                    event_type = header.decode() if isinstance(header, bytes) else str(header)
                    event = EVENT_MODELS[event_type].model_validate(message.value())
                    topic, partition, offset = str(message.topic()), int(message.partition() or 0), message.offset()
                    assert offset is not None
                    dispatch(declared, agreement, transaction, event, topic=topic, partition=partition, offset=offset)
                    offsets[(topic, partition)] = offset + 1
                for (topic, partition), offset in offsets.items():
                    transaction.save_offset(topic, partition, offset)
            consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()], asynchronous=False)
            seen += len(batch)
        assert assigned.at is not None  # records arrive only after assignment
        return _Run(seen, time.time() - assigned.at)
    finally:
        consumer.close()


def _scaling_worker(settings: Settings, department: str, engine: str, path: str, results: Any) -> None:
    """One process of a department in ``group`` (the scaling case); reports (messages, first, last, retries)."""
    declared = department_named(department)
    if engine == "postgres":
        assert settings.postgres_dsn is not None
        store: Store = PostgresStore(settings.postgres_dsn.get_secret_value(), path, declared.schema)
    else:
        store = SqliteStore(Path(path), declared.schema)
    from civreg.codec_from_settings import open_codec

    consumer = _TimedConsumer(declared, settings, store, codec=open_codec(settings))
    report = consumer.run(until_caught_up=True, max_idle_seconds=20)
    store.close()
    results.put((report.messages, consumer.first, consumer.last, report.retries))


def _scaling(settings: Settings, department: str, engine: str, store: Store, *, processes: int, expected: int) -> _Run:
    """``processes`` consumers of one department in one group over one store, timed across all of them."""
    path = store.schema if isinstance(store, PostgresStore) else str(getattr(store, "path", ""))
    store.close()
    spawn = multiprocessing.get_context("spawn")
    results = spawn.Queue()
    workers = [
        spawn.Process(target=_scaling_worker, args=(settings, department, engine, path, results))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    reports = [results.get(timeout=1800) for _ in workers]
    for worker in workers:
        worker.join()
    messages = sum(report[0] for report in reports)
    starts = [report[1] for report in reports if report[1] is not None]
    last = max(report[2] for report in reports)
    if messages < expected:
        raise RuntimeError(f"scaling run applied {messages} of {expected} messages")
    return _Run(messages, last - min(starts), sum(report[3] for report in reports))


def _delete_topics(settings: Settings) -> None:
    """Delete the run's topics (best effort): a small-heap broker must not keep every run's partitions."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(admin_config(settings))
    with contextlib.suppress(Exception):
        names = [name for name in admin.list_topics(timeout=10).topics if name.startswith(f"{settings.topic_prefix}.")]
        if names:
            for future in admin.delete_topics(names, operation_timeout=30).values():
                future.result()


@contextlib.contextmanager
def _broker(settings: Settings, console: Console) -> Iterator[tuple[Settings, str]]:
    """Settings for a broker to measure on: yours, the dev stack's, or a temporary local one."""
    if not settings.uses_local_broker:
        yield settings, "your cluster"
        return
    if LocalKafka(settings).status().running:
        yield settings, "the dev stack's local broker"
        return
    home = Path(tempfile.mkdtemp(prefix="civreg-bench-kafka-"))
    temporary = settings.model_copy(
        update={"home": home, "local_port": free_port(), "local_controller_port": free_port()}
    )
    broker = LocalKafka(temporary)
    try:
        with console.status("starting a temporary local Kafka broker for the benchmark"):
            broker.ensure_jars()
            broker.start(timeout=120)
        yield temporary, "a temporary local broker"
    finally:
        broker.stop()
        shutil.rmtree(home, ignore_errors=True)


def run_consumer_suite(
    settings: Settings, options: BenchOptions, console: Console, extra: ConsumerBenchOptions | None = None
) -> SuiteResult:
    """Publish one population's events once, then time every path over them (see the module docstring)."""
    extra = extra or ConsumerBenchOptions()
    engines = ["sqlite"] + (["postgres"] if settings.postgres_dsn is not None else [])
    with (
        _broker(settings, console) as (broker_settings, broker),
        _registry(broker_settings, console) as (url, registry),
    ):
        workdir = Path(tempfile.mkdtemp(prefix="civreg-bench-consumer-"))
        bench = broker_settings.model_copy(
            update={
                "topic_prefix": f"bench-{uuid.uuid4().hex[:8]}",
                "database_dir": workdir,
                "registry_url": url,
                "registry_auto_register": True,
            }
        )
        rates: list[Rate] = []
        try:
            apply_topics(bench, tuple(DEPARTMENTS), replication_factor=1, profile="local")
            resolver = open_registry_resolver(bench, url)
            codec = Codec(resolver, topic_prefix=bench.topic_prefix)
            with console.status(f"simulating {options.events} events and their population"):
                population = simulate_population(options.events, options.seed)
            with console.status(f"publishing {len(population.events)} events"), Publisher(bench, codec=codec) as pub:
                for event in population.events:
                    pub.publish(event)
            with console.status("routing each department's agreed events to its own topic"):
                routed = Router(bench, poll_timeout=0.1, check_interval=0.2).run(until_caught_up=True).routed
            seed = options.seed
            registers = {
                name: []
                if name == "suppression"
                else [r.row for r in simulate_customer_records(population, name, seed)]
                for name in extra.departments
            }
            with fixtures_out_of_gc():  # the population and registers held here: no service carries them
                rates += _department_rates(
                    bench,
                    codec,
                    routed=routed,
                    registers=registers,
                    engines=engines,
                    extra=extra,
                    workdir=workdir,
                    console=console,
                )
            scale_engine = engines[-1]
            name = extra.scaling_department
            expected = routed[name]
            scaling: dict[int, _Run] = {}
            for processes in (1, 2):
                store = _store_with_register(bench, name, scale_engine, workdir, registers.get(name) or [])
                with console.status(f"{name}: {processes} process(es) in one group on {scale_engine}"):
                    scaling[processes] = _scaling(
                        bench, name, scale_engine, store, processes=processes, expected=expected
                    )
                _drop(_reopen(bench, store, name, scale_engine))
                run = scaling[processes]
                rates.append(Rate(name, f"{processes} process(es) {scale_engine}", run.messages, run.seconds, run.rate))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
            _delete_topics(bench)
    targets = _targets(rates, scaling, scale_engine, name, engines)
    return SuiteResult(
        suite="consumer",
        title=f"Department consumers: {len(population.events)} events consumed, decoded and applied (real broker)",
        ours_label="civreg runtime",
        baseline_label="raw consume",
        rates=rates,
        targets=targets,
        context={
            "events": len(population.events),
            "broker": broker,
            "registry": registry,
            "engines": engines,
            "batch_size": extra.batch_size,
            "scaling": f"{name} on {scale_engine}",
            "scaling_batch_retries": {f"{n} process(es)": run.retries for n, run in scaling.items()},
            "cpus": os.cpu_count(),
        },
    )


def _department_rates(
    bench: Settings,
    codec: Codec,
    *,
    routed: Mapping[str, int],
    registers: dict[str, list[dict[str, str]]],
    engines: list[str],
    extra: ConsumerBenchOptions,
    workdir: Path,
    console: Console,
) -> list[Rate]:
    """Raw ceiling, civreg on each engine and the stock path, for every department, over the same messages."""
    rates: list[Rate] = []
    ceilings: dict[tuple[str, ...], _Run] = {}
    for name in extra.departments:
        topics = department_named(name).topics(bench.topic_prefix)
        # What the router delivered: watermarks would also count its transactions' commit markers.
        expected = routed[name]
        if tuple(topics) not in ceilings:
            with console.status(f"raw consume of {expected} messages"):
                ceilings[tuple(topics)] = _raw(bench, topics, expected, extra.batch_size)
        raw = ceilings[tuple(topics)]
        rates.append(Rate(name, "raw consume (ceiling)", raw.messages, raw.seconds, raw.rate))
        for engine in engines:
            store = _store_with_register(bench, name, engine, workdir, registers[name])
            try:
                with console.status(f"{name}: civreg on {engine}"):
                    run = _civreg(bench, name, store, codec, extra.batch_size)
            finally:
                _drop(store)
            rates.append(Rate(name, f"civreg {engine}", run.messages, run.seconds, run.rate, raw.rate))
        store = _store_with_register(bench, name, "sqlite", workdir, registers[name])
        try:
            with console.status(f"{name}: stock DeserializingConsumer on sqlite"):
                run = _stock(bench, name, topics, expected=expected, store=store, batch_size=extra.batch_size)
        finally:
            _drop(store)
        rates.append(Rate(name, "stock sqlite", run.messages, run.seconds, run.rate, raw.rate))
    return rates


def _reopen(settings: Settings, store: Store, department: str, engine: str) -> Store:
    declared = department_named(department)
    if isinstance(store, PostgresStore):
        assert settings.postgres_dsn is not None
        return PostgresStore(settings.postgres_dsn.get_secret_value(), store.schema, declared.schema)
    assert isinstance(store, SqliteStore)
    return SqliteStore(store.path, declared.schema)


def _targets(rates: list[Rate], scaling: dict[int, _Run], engine: str, name: str, engines: list[str]) -> list[Target]:
    found: list[Target] = []
    by = {(rate.department, rate.path): rate for rate in rates}
    for rate in rates:
        if rate.path == "civreg sqlite" and rate.ceiling:
            goal = 0.20 if rate.department == "suppression" else 0.12
            found.append(
                Target(f"{rate.department}: civreg ÷ raw ceiling (SQLite)", rate.rate / rate.ceiling, goal, "ratio")
            )
        if rate.path == "civreg postgres" and (lite := by.get((rate.department, "civreg sqlite"))) and lite.rate:
            found.append(Target(f"{rate.department}: PostgreSQL ÷ SQLite", rate.rate / lite.rate, 0.5, "ratio"))
    if scaling[1].rate:
        found.append(Target(f"{name}: two processes ÷ one ({engine})", scaling[2].rate / scaling[1].rate, 1.7, "ratio"))
    # The faster of the runs this machine can hold (two processes need two cores; on one engine they may be slower).
    runnable = [n for n in scaling if n <= (os.cpu_count() or 1)] or [1]
    processes = max(runnable, key=lambda n: scaling[n].rate)
    best = scaling[processes].rate
    if best:
        found.append(
            Target(
                f"{name}: 15M-event back-fill, {processes} process(es) — PROJECTION from the measured rate",
                BACKFILL_EVENTS / best,
                BACKFILL_GOAL_SECONDS,
                "s",
            )
        )
    return found
