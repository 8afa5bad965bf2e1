"""The fault suite: real processes under real faults, counted from the outside.

Every scenario runs against real processes the suite starts itself (broker JVMs on free ports in a temporary
directory, a three-node KRaft cluster for broker loss, ``python -m civreg consume`` processes, its own PostgreSQL
server, a TCP proxy in front of a schema registry), injects one kind of fault, and then counts:

- **acknowledged**: event ids the broker acknowledged to the suite's own producer (its delivery reports);
- **applied**: acknowledged events that the department's store holds an outcome for, read from its tables directly;
- **lost**: acknowledged events the store does not hold, plus department-table rows a clean pass has and it lacks;
- **doubled**: department-table rows the store has beyond those of one clean pass over the same topic (row for row,
  every department table, timestamps excluded);
- **recovery**: seconds from the end of the last fault until the store holds every acknowledged event.

Nothing is taken from the code under test reporting on itself. Scenarios are plain functions in ``SCENARIOS``
(name -> function): the relay and router crash scenarios plug in there once those services exist.

Run: ``make faults`` (full sizes), ``python -m deploy.local.faults --quick`` (CI sizes), ``--scenario NAME`` to pick.
Writes ``bench-results/faults.json``. Dev tool only: nothing in producers, consumers or schemas imports it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka.admin import AdminClient
from psycopg import sql
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from civreg.codec_from_settings import open_codec
from civreg.kafka_config import admin_config
from civreg.settings import Settings, load_settings
from consumers.runtime import DepartmentConsumer, SqliteStore
from consumers.runtime.agreements import agreement_for
from consumers.runtime.postgres_store import schema_for
from consumers.suppression import department as suppression
from deploy.local.cluster import LocalKafkaCluster, NodePorts
from deploy.local.kafka import LocalKafka
from deploy.topics import apply_topics
from producers.publisher import DeliveryReport, Publisher, PublishError
from producers.simulation import simulate_registrations
from schemas.codec import Codec, LocalSchemaCatalogue
from schemas.models import Event
from schemas.topics import Register

__all__ = ["SCENARIOS", "FaultOptions", "FaultResult", "Lab", "main", "run_suite"]

REPO = Path(__file__).resolve().parent.parent
DEPARTMENT = suppression.name
_CLEAN = f"{DEPARTMENT}-clean"
_SKIPPED_TABLES = {"civreg_offsets", "civreg_unacknowledged", "civreg_undecodable_messages"}
_BOOKKEEPING_COLUMNS = {"topic", "partition", "offset", "processed_at"}  # where an event was read, and when


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# Results --------------------------------------------------------------------------------------------------------


@dataclass
class FaultResult:
    """One scenario's row: counts from the producer's acknowledgements and the store's tables."""

    scenario: str
    events: int
    acknowledged: int
    applied: int
    lost: int
    doubled: int
    recovery_seconds: float
    dead_lettered: int = 0
    faults: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Nothing lost, nothing doubled, nothing dead-lettered for a fault, every check of the scenario passed."""
        return self.lost == 0 and self.doubled == 0 and self.dead_lettered == 0 and not self.failures

    @property
    def failures(self) -> list[str]:
        """Notes that are failed checks (they start with ``FAILED``)."""
        return [note for note in self.notes if note.startswith("FAILED")]

    def as_json(self) -> dict[str, Any]:
        """The object written to ``faults.json``."""
        return {**dataclasses.asdict(self), "ok": self.ok}


@dataclass(frozen=True)
class FaultOptions:
    """Sizes: the issue's full sizes by default, ``quick`` for CI."""

    quick: bool = False
    seed: int = 2016
    out_dir: Path = Path("bench-results")
    registry_url: str | None = None

    @property
    def events(self) -> int:
        """Events per scenario (the crash scenario has its own, larger, stream)."""
        return 1_500 if self.quick else 20_000

    @property
    def crash_events(self) -> int:
        return 3_000 if self.quick else 100_000

    @property
    def crash_kills(self) -> int:
        return 5 if self.quick else 20

    @property
    def database_outage_seconds(self) -> float:
        return 10.0 if self.quick else 30.0

    @property
    def max_poll_interval_ms(self) -> int:
        return 6_000  # librdkafka's floor is session.timeout.ms; the outage below is longer

    @property
    def registry_outage_seconds(self) -> float:
        return 8.0 if self.quick else 20.0


# The suite's own real processes ---------------------------------------------------------------------------------


class Lab:
    """Brokers, a cluster, PostgreSQL and a registry, each started on first use and stopped by ``close``."""

    def __init__(self, options: FaultOptions, console: Console) -> None:
        self.options = options
        self.console = console
        self.workdir = Path(tempfile.mkdtemp(prefix="civreg-faults-"))
        self.base = load_settings().model_copy(
            update={
                "home": self.workdir / "home",
                "cache_dir": load_settings().cache_dir.resolve(),
                "postgres_dsn": None,
                "registry_url": None,
                "session_timeout_ms": 6_000,  # a killed consumer's partitions move on quickly
            }
        )
        self._broker: LocalKafka | None = None
        self._cluster: LocalKafkaCluster | None = None
        self._postgres: Any = None
        self._registry: Any = None

    def broker(self) -> Settings:
        """Settings for a single-node broker of the suite's own."""
        if self._broker is None:
            settings = self.base.model_copy(
                update={
                    "home": self.workdir / "broker",
                    "local_port": _free_port(),
                    "local_controller_port": _free_port(),
                }
            )
            broker = LocalKafka(settings)
            with self.console.status("starting the suite's Kafka broker"):
                broker.ensure_jars()
                broker.start(timeout=120)
            self._broker = broker
        return self.base.model_copy(update={"bootstrap_servers": self._broker.bootstrap})

    def cluster(self) -> tuple[LocalKafkaCluster, Settings]:
        """A three-node KRaft cluster of the suite's own, and settings naming every node."""
        if self._cluster is None:
            ports = [NodePorts(i, _free_port(), _free_port()) for i in (1, 2, 3)]
            cluster = LocalKafkaCluster(self.base.model_copy(update={"home": self.workdir / "cluster"}), ports=ports)
            with self.console.status("starting the suite's three-node Kafka cluster"):
                cluster.start(timeout=180)
            self._cluster = cluster
        return self._cluster, self.base.model_copy(update={"bootstrap_servers": self._cluster.bootstrap})

    def release_cluster(self) -> None:
        """Stop the cluster (three JVMs) once its scenarios are done: the machine is small."""
        if self._cluster is not None:
            self._cluster.stop()
            self._cluster = None

    def postgres(self) -> Any:
        """The suite's own PostgreSQL server (a ``LocalPostgres``): it is stopped and started by a scenario."""
        if self._postgres is None:
            from tests.support.local_postgres import LocalPostgres  # a checkout's test support, like the suite

            server = LocalPostgres.create()
            with self.console.status("starting the suite's PostgreSQL server"):
                server.start()
            self._postgres = server
        return self._postgres

    def database(self) -> str:
        """A fresh database on the suite's PostgreSQL server."""
        server = self.postgres()
        name = f"f{uuid.uuid4().hex[:12]}"
        with psycopg.connect(server.dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return str(server.dsn.rsplit("/", 1)[0] + f"/{name}")

    def registry_url(self) -> str:
        """A registry to put a proxy in front of: ``--registry-url``, ``CIVREG_REGISTRY_URL``, or one started here."""
        url = self.options.registry_url or os.environ.get("CIVREG_REGISTRY_URL")
        if url:
            return url
        if self._registry is None:
            from deploy.local.registry import LocalRegistry

            settings = self.base.model_copy(
                update={
                    "home": self.workdir / "registry",
                    "local_registry_port": _free_port(),
                    "local_registry_health_port": _free_port(),
                }
            )
            registry = LocalRegistry(settings)
            with self.console.status("starting a schema registry for the suite"):
                registry.ensure_installed()
                registry.start(timeout=240)
            self._registry = registry
        return str(self._registry.url)

    def scenario(self, settings: Settings, name: str, *, profile: str = "local") -> Settings:
        """Settings for one scenario: unique topics (created), its own database directory and home."""
        scenario = settings.model_copy(
            update={
                "topic_prefix": f"f{uuid.uuid4().hex[:10]}",
                "database_dir": self.workdir / name / "departments",
                "home": self.workdir / name / "home",
            }
        )
        rf = None if profile == "production" else 1
        apply_topics(scenario, (DEPARTMENT, _CLEAN), rf, profile=profile)
        return scenario

    def close(self) -> None:
        """Stop everything the suite started and remove its directory."""
        for stop in (
            self.release_cluster,
            lambda: self._broker.stop() if self._broker else None,
            lambda: self._postgres.stop() if self._postgres else None,
            lambda: self._registry.stop() if self._registry else None,
        ):
            with contextlib.suppress(Exception):
                stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


# Events and the suite's own producer ----------------------------------------------------------------------------


def death_register_events(count: int, seed: int) -> list[Event]:
    """``count`` simulated events of the death register (registrations, corrections, voids), in time order."""
    events: list[Event] = []
    for event in simulate_registrations(count * 4, seed):
        if event.family is Register.DEATH:
            events.append(event)
            if len(events) == count:
                break
    return events


class Producing(threading.Thread):
    """Publishes events in chunks, re-publishing every event whose delivery failed until the broker acknowledges it.

    A failed delivery is back-pressure, reported and retried (consumers de-duplicate by event id); an event counts as
    acknowledged only from its delivery report.
    """

    def __init__(
        self,
        settings: Settings,
        codec: Codec,
        events: Sequence[Event],
        *,
        chunk: int = 250,
        pause: float = 0.0,
        overrides: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(daemon=True)
        self.settings = settings
        self.codec = codec
        self.events = list(events)
        self.chunk = chunk
        self.pause = pause
        self.overrides = overrides or {}
        self.acknowledged: set[str] = set()
        self.failed_deliveries = 0
        self.publish_errors = 0
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._retry: list[Event] = []
        self._by_id = {str(event.event_id): event for event in self.events}
        self.limit = len(self.events)
        """Publish no further than this index until it is raised (a scenario's phases)."""

    def _on_delivery(self, report: DeliveryReport) -> None:
        with self._lock:
            if report.delivered:
                self.acknowledged.add(report.event_id)
            else:
                self.failed_deliveries += 1
                self._retry.append(self._by_id[report.event_id])

    def run(self) -> None:
        try:
            with Publisher(self.settings, self.codec, self._on_delivery, config_overrides=self.overrides) as publisher:
                index = 0
                while True:
                    with self._lock:
                        retry, self._retry = self._retry, []
                    if retry:  # failed deliveries first, as soon as they are known
                        time.sleep(1.0)
                        self._publish(publisher, retry)
                    elif index >= len(self.events):
                        break
                    elif index >= self.limit:
                        time.sleep(0.1)
                    else:
                        self._publish(publisher, self.events[index : index + self.chunk])
                        index += self.chunk
                        if self.pause:
                            time.sleep(self.pause)
        except BaseException as exc:
            self.error = exc

    def _publish(self, publisher: Publisher, events: Sequence[Event]) -> None:
        for event in events:
            while True:
                try:
                    publisher.publish(event)
                    break
                except PublishError:
                    self.publish_errors += 1  # refused when queued: reported; its report queued it for retry
                    time.sleep(0.5)
                    break
        while True:
            try:
                publisher.flush(30)
                return
            except PublishError:
                self.publish_errors += 1
                if publisher.pending == 0:
                    return

    def ids_acknowledged(self) -> set[str]:
        with self._lock:
            return set(self.acknowledged)


# Department consumers as real processes ------------------------------------------------------------------------


def _env(settings: Settings, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CIVREG_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env.update(
        {
            "CIVREG_BOOTSTRAP_SERVERS": settings.effective_bootstrap_servers,
            "CIVREG_HOME": str(settings.home),
            "CIVREG_TOPIC_PREFIX": settings.topic_prefix,
            "CIVREG_DATABASE_DIR": str(settings.database_dir),
            "CIVREG_SESSION_TIMEOUT_MS": str(settings.session_timeout_ms),
            "CIVREG_MAX_POLL_INTERVAL_MS": str(settings.max_poll_interval_ms),
        }
    )
    if settings.postgres_dsn is not None:
        env["CIVREG_POSTGRES_DSN"] = settings.postgres_dsn.get_secret_value()
    if settings.registry_url is not None:
        env["CIVREG_REGISTRY_URL"] = settings.registry_url
    env.update(extra or {})
    return env


class ConsumerProcess:
    """``python -m civreg consume --department suppression`` with its log in a file."""

    def __init__(self, settings: Settings, log_path: Path, *, metrics_port: int = 0) -> None:
        self.settings = settings
        self.log_path = log_path
        self.metrics_port = metrics_port
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        command = [sys.executable, "-m", "civreg", "consume", "--department", DEPARTMENT, "--batch-size", "200"]
        if self.metrics_port:
            command += ["--metrics-port", str(self.metrics_port)]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                command, env=_env(self.settings), cwd=REPO, stdout=log, stderr=subprocess.STDOUT
            )
        self.starts += 1

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, no group leave."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> int | None:
        """SIGTERM (finish the batch, leave the group), SIGKILL after 60 s; the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""


# Reading stores directly -----------------------------------------------------------------------------------------


@dataclass
class StoreSnapshot:
    """A department store's rows (timestamps and read positions left out) and its outcome ids."""

    tables: dict[str, Counter[tuple[Any, ...]]]
    outcome_ids: set[str]
    dead_lettered: int


def _snapshot(tables: dict[str, tuple[list[str], list[tuple[Any, ...]]]]) -> StoreSnapshot:
    kept: dict[str, Counter[tuple[Any, ...]]] = {}
    outcome_ids: set[str] = set()
    dead_lettered = 0
    for table, (columns, rows) in tables.items():
        keep = [i for i, c in enumerate(columns) if not c.endswith("_at") and c not in _BOOKKEEPING_COLUMNS]
        kept[table] = Counter(tuple(str(row[i]) for i in keep) for row in rows)
        if table == "civreg_event_outcomes":
            ids, outcomes = columns.index("event_id"), columns.index("outcome")
            outcome_ids = {str(row[ids]) for row in rows}
            dead_lettered = sum(1 for row in rows if row[outcomes] == "dead_lettered")
    return StoreSnapshot(kept, outcome_ids, dead_lettered)


def read_sqlite(path: Path) -> StoreSnapshot:
    """Every table of a SQLite department store, read-only."""
    if not path.exists():
        return StoreSnapshot({}, set(), 0)
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        names = [r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        tables = {}
        for name in names:
            if name in _SKIPPED_TABLES or name.startswith("sqlite_"):
                continue
            cursor = connection.execute(f'SELECT * FROM "{name}"')  # noqa: S608 - names from sqlite_master
            tables[name] = ([d[0] for d in cursor.description], [tuple(r) for r in cursor.fetchall()])
    finally:
        connection.close()
    return _snapshot(tables)


def read_postgres(dsn: str, department: str) -> StoreSnapshot:
    """Every table of a department's PostgreSQL schema."""
    schema = schema_for(department)
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as connection:
        names = [
            r[0]
            for r in connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
            )
        ]
        tables = {}
        for name in names:
            if name in _SKIPPED_TABLES:
                continue
            cursor = connection.execute(
                sql.SQL("SELECT * FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(name))
            )
            description = cursor.description or []
            tables[name] = ([d.name for d in description], [tuple(r) for r in cursor.fetchall()])
    return _snapshot(tables)


def read_store(settings: Settings) -> StoreSnapshot:
    """The department's store as the consumers wrote it, on whichever engine the settings name."""
    if settings.postgres_dsn is not None:
        try:
            return read_postgres(settings.postgres_dsn.get_secret_value(), DEPARTMENT)
        except psycopg.OperationalError:
            return StoreSnapshot({}, set(), 0)  # the server is down (a scenario's outage)
    return read_sqlite(settings.department_database(DEPARTMENT))


def clean_pass(settings: Settings, codec: Codec, workdir: Path) -> StoreSnapshot:
    """One uninterrupted in-process pass over the same topic into a fresh SQLite store: the reference."""
    department = dataclasses.replace(suppression, name=_CLEAN)
    agreement = dataclasses.replace(agreement_for(DEPARTMENT, settings.config_files.agreements_dir), department=_CLEAN)
    path = workdir / f"clean-{uuid.uuid4().hex[:8]}.sqlite3"
    store = SqliteStore(path, department.schema)
    try:
        DepartmentConsumer(department, settings, store, codec=codec, agreement=agreement).run(until_caught_up=True)
    finally:
        store.close()
    return read_sqlite(path)


def expected_ids(events: Sequence[Event], acknowledged: set[str]) -> set[str]:
    """Acknowledged events the department's agreement lets it see (it records an outcome for each of those)."""
    agreement = agreement_for(DEPARTMENT)
    return {
        str(e.event_id) for e in events if str(e.event_id) in acknowledged and agreement.withheld_because(e) is None
    }


def wait_until_applied(settings: Settings, expected: set[str], timeout: float) -> bool:
    """Poll the store until it holds an outcome for every expected event."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if expected <= read_store(settings).outcome_ids:
            return True
        time.sleep(1.0)
    return False


def compare(
    name: str,
    settings: Settings,
    producing: Producing,
    codec: Codec,
    workdir: Path,
    *,
    recovery_seconds: float,
    faults: int,
    notes: list[str],
) -> FaultResult:
    """Count lost and doubled: the acknowledged ids and a clean pass against what the store holds."""
    acknowledged = producing.ids_acknowledged()
    expected = expected_ids(producing.events, acknowledged)
    store = read_store(settings)
    reference = clean_pass(settings, codec, workdir)
    missing_events = len(expected - store.outcome_ids)
    missing_rows = extra_rows = 0
    for table in set(reference.tables) | set(store.tables):
        want = reference.tables.get(table, Counter())
        have = store.tables.get(table, Counter())
        missing_rows += sum((want - have).values())
        extra_rows += sum((have - want).values())
    if expected - reference.outcome_ids:
        notes.append(f"FAILED: the clean pass lacks {len(expected - reference.outcome_ids)} acknowledged events")
    if missing_rows and not missing_events:
        notes.append(f"{missing_rows} department rows of the clean pass are missing")
    return FaultResult(
        scenario=name,
        events=len(producing.events),
        acknowledged=len(acknowledged),
        applied=len(expected & store.outcome_ids),
        lost=max(missing_events, missing_rows),
        doubled=extra_rows,
        recovery_seconds=round(recovery_seconds, 1),
        dead_lettered=max(store.dead_lettered - reference.dead_lettered, 0),
        faults=faults,
        notes=notes,
    )


def _group_members(settings: Settings) -> set[str]:
    """Member ids of the department's consumer group, from the broker (empty if it cannot say)."""
    admin = AdminClient(admin_config(settings, "faults"))
    group = suppression.group_id(settings.topic_prefix)
    try:
        description = admin.describe_consumer_groups([group], request_timeout=10)[group].result(timeout=15)
    except Exception:
        return set()
    return {member.member_id for member in description.members}


def _wait_for(predicate: Callable[[], bool], timeout: float, step: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


def _applied_count(settings: Settings) -> int:
    return len(read_store(settings).outcome_ids)


def _progress_from(settings: Settings, count: int, total: int) -> Callable[[], bool]:
    """True once the store holds more outcomes than ``count`` (or all ``total`` there will be)."""
    return lambda: _applied_count(settings) > count or count >= total


def _finish(
    name: str,
    settings: Settings,
    producing: Producing,
    *,
    codec: Codec,
    lab: Lab,
    consumers: Sequence[ConsumerProcess],
    fault_ended: float,
    faults: int,
    notes: list[str],
    timeout: float = 600.0,
) -> FaultResult:
    """Wait for the producer and the consumers to finish, stop them cleanly, and count."""
    producing.join(timeout)
    if producing.error is not None:
        notes.append(f"FAILED: the producer stopped: {type(producing.error).__name__}: {producing.error}")
    expected = expected_ids(producing.events, producing.ids_acknowledged())
    if not wait_until_applied(settings, expected, timeout):
        notes.append("FAILED: the store did not catch up in time")
    recovery = time.monotonic() - fault_ended
    for consumer in consumers:
        code = consumer.stop()
        if code not in (0, None):
            notes.append(f"FAILED: a consumer exited with code {code}")
    return compare(name, settings, producing, codec, lab.workdir, recovery_seconds=recovery, faults=faults, notes=notes)


# Scenarios ---------------------------------------------------------------------------------------------------------


def broker_loss(lab: Lab) -> FaultResult:
    """(2) One broker of three SIGKILLed while publishing and consuming, then two: errors and retries, no loss."""
    cluster, base = lab.cluster()
    settings = lab.scenario(base, "broker-loss", profile="production")
    codec = Codec(LocalSchemaCatalogue())  # local schema ids: the consumers run without a registry too
    events = death_register_events(lab.options.events, lab.options.seed)
    consumer = ConsumerProcess(settings, lab.workdir / "broker-loss" / "consumer.log")
    consumer.start()
    # A short delivery timeout: with two brokers down, failures reach the producer (and are retried) in seconds.
    producing = Producing(settings, codec, events, chunk=100, pause=0.05, overrides={"message.timeout.ms": 10_000})
    notes: list[str] = []
    third = len(events) // 3
    producing.limit = third
    producing.start()
    _wait_for(lambda: len(producing.ids_acknowledged()) >= third // 2, 300)
    cluster.kill(2)  # one broker: min.insync.replicas 2 still holds
    _wait_for(lambda: len(producing.ids_acknowledged()) >= third, 300)
    cluster.restart(2)
    failed_before = producing.failed_deliveries
    cluster.kill(2)
    cluster.kill(3)  # two of three: no quorum, no in-sync majority: producers must see errors
    producing.limit = 2 * third  # the second third is published while two brokers are down
    time.sleep(25)
    failed_during = producing.failed_deliveries - failed_before
    notes.append(f"two brokers down: {failed_during} deliveries failed and were retried")
    if failed_during == 0 and not producing.is_alive():
        notes.append("the stream had ended before two brokers were down")
    cluster.restart(2)
    cluster.restart(3)
    producing.limit = len(events)
    fault_ended = time.monotonic()
    if not consumer.alive:
        notes.append("FAILED: the consumer died while brokers were down")
    try:
        return _finish(
            "broker-loss",
            settings,
            producing,
            codec=codec,
            lab=lab,
            consumers=[consumer],
            fault_ended=fault_ended,
            faults=3,
            notes=notes,
        )
    finally:
        lab.release_cluster()


def consumer_crash(lab: Lab) -> FaultResult:
    """(3) The department consumer SIGKILLed at random moments, many times, during a long stream."""
    settings = lab.scenario(lab.broker(), "consumer-crash")
    codec = Codec(LocalSchemaCatalogue())  # local schema ids: the consumers run without a registry too
    events = death_register_events(lab.options.crash_events, lab.options.seed + 1)
    rng = random.Random(lab.options.seed)
    consumer = ConsumerProcess(settings, lab.workdir / "consumer-crash" / "consumer.log")
    kills = lab.options.crash_kills
    # Paced so the stream lasts about as long as the kills take (a restart and group join are several seconds).
    chunk = 500
    producing = Producing(settings, codec, events, chunk=chunk, pause=kills * 7.0 / max(len(events) // chunk, 1))
    producing.start()
    consumer.start()
    notes: list[str] = []
    expected_total = len(events)
    for _ in range(kills):
        # A random moment once it is applying: up to a few seconds after it made progress.
        _wait_for(_progress_from(settings, _applied_count(settings), expected_total), 60, step=0.2)
        time.sleep(rng.uniform(0.0, 2.5))
        consumer.kill()
        consumer.start()
    fault_ended = time.monotonic()
    if _applied_count(settings) >= expected_total:
        notes.append("the consumer caught up before the last kill")
    return _finish(
        "consumer-crash",
        settings,
        producing,
        codec=codec,
        lab=lab,
        consumers=[consumer],
        fault_ended=fault_ended,
        faults=kills,
        notes=notes,
    )


def database_outage(lab: Lab) -> FaultResult:
    """(4) PostgreSQL stopped under load: the consumer waits in its group, shows the outage, resumes."""
    server = lab.postgres()
    base = lab.broker().model_copy(update={"postgres_dsn": SecretStr(lab.database())})
    settings = lab.scenario(base, "database-outage")
    codec = Codec(LocalSchemaCatalogue())  # local schema ids: the consumers run without a registry too
    events = death_register_events(lab.options.events, lab.options.seed + 2)
    port = _free_port()
    consumer = ConsumerProcess(settings, lab.workdir / "database-outage" / "consumer.log", metrics_port=port)
    consumer.start()
    producing = Producing(settings, codec, events, chunk=100, pause=0.1)
    producing.start()
    notes: list[str] = []
    _wait_for(lambda: _applied_count(settings) >= len(events) // 4, 300)
    members_before = _group_members(settings)
    server.halt()
    outage = lab.options.database_outage_seconds
    time.sleep(outage / 2)
    metrics = _scrape(f"http://127.0.0.1:{port}/metrics")
    if _sample(metrics, "civreg_store_up") != 0.0:
        notes.append("FAILED: civreg_store_up was not 0 during the outage")
    status = subprocess.run(
        [sys.executable, "-m", "civreg", "status", "--once", "--endpoint", f"127.0.0.1:{port}", "--interval", "0.5"],
        env=_env(settings, {"COLUMNS": "300"}),
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if not ("not ready" in status.stdout and "unreachable" in status.stdout):  # the table may wrap the cell
        notes.append(f"FAILED: 'civreg status' did not show the store unreachable: {status.stdout[-600:]}")
    time.sleep(outage / 2)
    members_during = _group_members(settings)
    server.resume()
    fault_ended = time.monotonic()
    if not consumer.alive:
        notes.append("FAILED: the consumer exited during the outage")
    if members_before and members_during != members_before:
        notes.append("FAILED: the consumer left its group during the outage")
    result = _finish(
        "database-outage",
        settings,
        producing,
        codec=codec,
        lab=lab,
        consumers=[consumer],
        fault_ended=fault_ended,
        faults=1,
        notes=notes,
    )
    log = consumer.log_text()
    if '"batch-retry"' not in log:
        result.notes.append("FAILED: no batch-retry in the consumer's log")
    result.notes.append(f"outage {outage:.0f}s; retries logged: {log.count('batch-retry')}")
    return result


def rebalance(lab: Lab) -> FaultResult:
    """(5) Two instances of one department in one group; one stopped and restarted: partitions move away and back."""
    lab.postgres()
    base = lab.broker().model_copy(update={"postgres_dsn": SecretStr(lab.database())})
    settings = lab.scenario(base, "rebalance")
    codec = Codec(LocalSchemaCatalogue())  # local schema ids: the consumers run without a registry too
    events = death_register_events(lab.options.events, lab.options.seed + 3)
    first = ConsumerProcess(settings, lab.workdir / "rebalance" / "first.log")
    second = ConsumerProcess(settings, lab.workdir / "rebalance" / "second.log")
    first.start()
    second.start()
    producing = Producing(settings, codec, events, chunk=100, pause=0.1)
    producing.start()
    notes: list[str] = []
    _wait_for(lambda: _applied_count(settings) >= len(events) // 4, 300)
    code = second.stop()  # its partitions move to the first
    if code != 0:
        notes.append(f"FAILED: the stopped instance exited with code {code}")
    _wait_for(lambda: _applied_count(settings) >= len(events) // 2, 300)
    second.start()  # and back
    fault_ended = time.monotonic()
    result = _finish(
        "rebalance",
        settings,
        producing,
        codec=codec,
        lab=lab,
        consumers=[first, second],
        fault_ended=fault_ended,
        faults=1,
        notes=notes,
    )
    if second.log_text().count('"assigned"') < 2:
        result.notes.append("the restarted instance was given no partitions")
    return result


class TcpProxy:
    """A tiny TCP proxy (one thread per connection) that can be stopped and started: a registry outage."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = _free_port()
        self._server: socket.socket | None = None
        self._connections: list[socket.socket] = []

    def start(self) -> None:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def stop(self) -> None:
        """Refuse new connections and cut the open ones."""
        if self._server is not None:
            with contextlib.suppress(OSError):
                self._server.shutdown(socket.SHUT_RDWR)
            self._server.close()
            self._server = None
        for connection in self._connections:
            with contextlib.suppress(OSError):
                connection.close()
        self._connections.clear()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            self._connections += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


def registry_outage(lab: Lab) -> FaultResult:
    """(6) The registry unreachable for longer than max.poll.interval.ms: the consumer stays in its group, resumes."""
    url = lab.registry_url()
    parsed = urllib.parse.urlsplit(url)
    proxy = TcpProxy(parsed.hostname or "127.0.0.1", parsed.port or 80)
    proxy.start()
    proxied = parsed._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()
    base = lab.broker().model_copy(
        update={"registry_url": url, "max_poll_interval_ms": lab.options.max_poll_interval_ms}
    )
    settings = lab.scenario(base, "registry-outage")
    codec = open_codec(settings, publishing=True)  # the suite's producer goes to the registry itself
    events = death_register_events(lab.options.events // 2, lab.options.seed + 4)
    consumer_settings = settings.model_copy(update={"registry_url": proxied})
    log_path = lab.workdir / "registry-outage" / "consumer.log"
    consumer = ConsumerProcess(consumer_settings, log_path)
    consumer.start()
    notes: list[str] = []
    if not _wait_for(lambda: '"assigned"' in consumer.log_text(), 120):
        notes.append("FAILED: the consumer was never assigned its partitions")
    members_before = _group_members(settings)
    proxy.stop()
    # Events with schema ids the consumer has never met: it must ask the registry, which does not answer.
    producing = Producing(settings, codec, events, chunk=200)
    producing.start()
    outage = lab.options.registry_outage_seconds
    time.sleep(outage)
    members_during = _group_members(settings)
    proxy.start()
    fault_ended = time.monotonic()
    try:
        result = _finish(
            "registry-outage",
            settings,
            producing,
            codec=codec,
            lab=lab,
            consumers=[consumer],
            fault_ended=fault_ended,
            faults=1,
            notes=notes,
        )
    finally:
        proxy.stop()
    log = consumer.log_text()
    if members_before and members_during != members_before:
        result.notes.append("FAILED: the consumer left its group during the outage")
    running = log.split('"stopping"')[0]  # before its clean shutdown (which revokes everything, as it should)
    if '"revoked"' in running or running.count('"assigned"') > 1:
        result.notes.append("FAILED: the consumer's partitions were revoked during the outage")
    if '"schema-registry-unavailable"' not in log:
        result.notes.append("FAILED: the outage is not in the consumer's log")
    result.notes.append(f"outage {outage:.0f}s > max.poll.interval.ms {lab.options.max_poll_interval_ms} ms")
    return result


Scenario = Callable[[Lab], FaultResult]

SCENARIOS: dict[str, Scenario] = {
    "broker-loss": broker_loss,
    "consumer-crash": consumer_crash,
    "database-outage": database_outage,
    "rebalance": rebalance,
    "registry-outage": registry_outage,
}
"""Every scenario by name, run in this order. Relay and router crash scenarios are added here once they exist: a
function taking the ``Lab`` and returning a ``FaultResult`` counted from acknowledgements and store tables."""


def _scrape(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - a local http URL we built
            return str(response.read().decode("utf-8", errors="replace"))
    except OSError:
        return ""


def _sample(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


# Running and reporting ------------------------------------------------------------------------------------------


def results_table(results: Sequence[FaultResult]) -> Table:
    """The suite's table: one row per scenario."""
    table = Table(title="Fault suite: acknowledged by the broker vs held by the store", title_justify="left")
    for column in ("scenario", "faults", "events", "acknowledged", "applied", "lost", "doubled", "time to recover"):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    for r in results:
        bad = "[red]{}[/red]"
        table.add_row(
            r.scenario if r.ok else bad.format(r.scenario),
            str(r.faults),
            f"{r.events:,}",
            f"{r.acknowledged:,}",
            f"{r.applied:,}",
            str(r.lost) if not r.lost else bad.format(r.lost),
            str(r.doubled) if not r.doubled else bad.format(r.doubled),
            f"{r.recovery_seconds:.1f} s",
        )
    return table


def run_suite(
    options: FaultOptions, names: Sequence[str] | None = None, console: Console | None = None
) -> list[FaultResult]:
    """Run the scenarios (default: all), print the table and write ``faults.json``; returns the results."""
    console = console or Console()
    chosen = list(names or SCENARIOS)
    unknown = [name for name in chosen if name not in SCENARIOS]
    if unknown:
        raise KeyError(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    lab = Lab(options, console)
    results: list[FaultResult] = []
    try:
        for name in chosen:
            started = time.monotonic()
            console.print(f"[bold]{name}[/]: running", highlight=False)
            try:
                result = SCENARIOS[name](lab)
            except Exception as exc:
                result = FaultResult(name, 0, 0, 0, 0, 0, 0.0, notes=[f"FAILED: {type(exc).__name__}: {exc}"])
            results.append(result)
            console.print(
                f"[bold]{name}[/]: {'ok' if result.ok else '[red]FAILED[/]'} in {time.monotonic() - started:.0f}s; "
                + "; ".join(result.notes),
                highlight=False,
            )
    finally:
        lab.close()
    console.print(results_table(results))
    options.out_dir.mkdir(parents=True, exist_ok=True)
    path = options.out_dir / "faults.json"
    path.write_text(json.dumps([r.as_json() for r in results], indent=2) + "\n", encoding="utf-8")
    console.print(f"wrote {path}", highlight=False)
    return results


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m deploy.local.faults [--quick] [--scenario NAME ...]``: exit 1 unless every scenario is ok."""
    parser = argparse.ArgumentParser(prog="python -m deploy.local.faults", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI sizes: fewer events and kills, shorter outages")
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS), help="run only these (repeatable)")
    parser.add_argument("--seed", type=int, default=2016)
    parser.add_argument("--out-dir", type=Path, default=Path("bench-results"))
    parser.add_argument("--registry-url", help="registry to proxy (default: $CIVREG_REGISTRY_URL, else start one)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # a CI timeout still stops every broker and server the suite started
    options = FaultOptions(quick=args.quick, seed=args.seed, out_dir=args.out_dir, registry_url=args.registry_url)
    console = Console(width=max(Console().width, 120))  # the whole table, also in a CI log
    results = run_suite(options, args.scenario, console)
    return 0 if results and all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
