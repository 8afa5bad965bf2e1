"""Counting lost and doubled: the store's tables, read directly, against the broker's acknowledgements and a clean
pass."""

from __future__ import annotations

import dataclasses
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka.admin import AdminClient
from psycopg import sql

from civreg.kafka_config import admin_config
from civreg.settings import Settings
from consumers.runtime import DepartmentConsumer, SqliteStore
from consumers.runtime.agreements import agreement_for
from consumers.runtime.department import Department
from consumers.runtime.postgres_store import schema_for
from consumers.suppression import department as suppression
from deploy.local.faults.lab import CLEAN, DEPARTMENT
from deploy.local.faults.reading import read_topic
from deploy.local.faults.results import FaultResult
from schemas.codec import Codec
from schemas.models import Event
from schemas.topics import department_topic

_SKIPPED_TABLES = {"civreg_offsets", "civreg_unacknowledged", "civreg_undecodable_messages"}
_BOOKKEEPING_COLUMNS = {"topic", "partition", "offset", "processed_at"}  # where an event was read, and when


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


class _Reference(Department[Any]):
    """The department under test under another name (its own group, store and dead letters) reading the same
    topic: the router's delivery to the department under test."""

    def topics(self, prefix: str) -> list[str]:
        return [department_topic(DEPARTMENT, prefix)]


def clean_pass(settings: Settings, codec: Codec, workdir: Path) -> StoreSnapshot:
    """One uninterrupted in-process pass over the department's topic into a fresh SQLite store: the reference."""
    fields = {f.name: getattr(suppression, f.name) for f in dataclasses.fields(suppression) if f.init}
    department = _Reference(**{**fields, "name": CLEAN})
    agreement = dataclasses.replace(agreement_for(DEPARTMENT, settings.config_files.agreements_dir), department=CLEAN)
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
    events: Sequence[Event],
    acknowledged: set[str],
    *,
    codec: Codec,
    workdir: Path,
    recovery_seconds: float,
    faults: int,
    notes: list[str],
) -> FaultResult:
    """Count lost and doubled: the acknowledged ids and a clean pass against what the store holds."""
    expected = expected_ids(events, acknowledged)
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
        events=len(events),
        acknowledged=len(acknowledged),
        applied=len(expected & store.outcome_ids),
        lost=max(missing_events, missing_rows),
        doubled=extra_rows,
        recovery_seconds=round(recovery_seconds, 1),
        dead_lettered=max(store.dead_lettered - reference.dead_lettered, 0),
        faults=faults,
        notes=notes,
    )


def group_members(settings: Settings, group: str | None = None) -> set[str]:
    """Member ids of ``group`` (default: the department's consumer group), from the broker (empty if it cannot
    say)."""
    admin = AdminClient(admin_config(settings, "faults"))
    group = group or suppression.group_id(settings.topic_prefix)
    try:
        description = admin.describe_consumer_groups([group], request_timeout=10)[group].result(timeout=15)
    except Exception:
        return set()
    return {member.member_id for member in description.members}


def department_topic_counts(settings: Settings, codec: Codec, expected: set[str]) -> tuple[int, int]:
    """(lost, doubled) on the department's topic itself, as a ``read_committed`` reader finds it: the store
    absorbs a doubled delivery by event id, so the router's exactly-once is counted on the topic."""
    on_topic = read_topic(settings, department_topic(DEPARTMENT, settings.topic_prefix))
    delivered = Counter(str(codec.decode(value).event_id) for _, value, _ in on_topic)
    wanted = Counter(expected)
    return sum((wanted - delivered).values()), sum((delivered - wanted).values())


def wait_for(predicate: Callable[[], bool], timeout: float, step: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


def grows(measure: Callable[[], int]) -> Callable[[], bool]:
    """A predicate true once ``measure()`` exceeds what it is now (a service has made progress)."""
    before = measure()
    return lambda: measure() > before


def applied_count(settings: Settings) -> int:
    return len(read_store(settings).outcome_ids)


def progress_from(settings: Settings, count: int, total: int) -> Callable[[], bool]:
    """True once the store holds more outcomes than ``count`` (or all ``total`` there will be)."""
    return lambda: applied_count(settings) > count or count >= total
