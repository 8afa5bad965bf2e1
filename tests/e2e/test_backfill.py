"""Onboarding: a department added later replays the whole log from its start and ends in exactly the state of one that
was there from the start (its own tables and its outcome tables), on both stores; the back-fill bar follows it."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from rich.console import Console

from civreg.commands.progress import BackfillBar
from civreg.kafka_config import consumer_config
from civreg.settings import Settings
from consumers.departments import DEPARTMENTS
from consumers.operations.running import open_store, run_department
from consumers.runtime import Department, Store
from consumers.runtime.postgres_store import PostgresStore
from deploy.topics import apply_topics
from producers.publisher import Publisher
from producers.simulation import simulate_registrations
from schemas.models import Event
from tests.support.departments import allow_test_departments, copy_of
from tests.support.environment import REPO, settings_env
from tests.support.factories import make_death, make_person

Snapshot = dict[str, list[tuple[Any, ...]]]


def publish(settings: Settings, events: Iterable[Event]) -> None:
    with Publisher(settings) as publisher:
        for event in events:
            publisher.publish(event)


_PG_TABLES = "SELECT table_name FROM information_schema.tables WHERE table_schema = ?"
_PG_COLUMNS = (
    "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
    "ORDER BY ordinal_position"
)
_SQLITE_TABLES = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite%'"


def _tables(store: Store) -> dict[str, list[str]]:
    """Every table of the department's store and its columns, on either engine."""
    tx = store.read()
    if isinstance(store, PostgresStore):
        names = [row[0] for row in tx.execute(_PG_TABLES, (store.schema,))]
        return {name: [str(row[0]) for row in tx.execute(_PG_COLUMNS, (store.schema, name))] for name in names}
    names = [row[0] for row in tx.execute(_SQLITE_TABLES)]
    return {name: [str(row[1]) for row in tx.execute(f'PRAGMA table_info("{name}")')] for name in names}


def snapshot(settings: Settings, department: Department[Any]) -> Snapshot:
    """Every row of every table, sorted, without the columns that say *when* it was processed (``*_at``)."""
    store = open_store(settings, department)
    try:
        state: Snapshot = {}
        for table, columns in sorted(_tables(store).items()):
            kept = [column for column in columns if not column.endswith("_at")]
            select = ", ".join(f'"{column}"' for column in kept)
            rows = store.read().execute(f'SELECT {select} FROM "{table}"')  # names from the catalogue
            state[table] = sorted((tuple(row) for row in rows), key=repr)
        return state
    finally:
        store.close()


def log_size(settings: Settings, department: Department[Any]) -> int:
    """Messages on the department's registration topics (nothing is ever deleted from them)."""
    consumer = Consumer(consumer_config(settings, "log-size"))
    try:
        total = 0
        for topic in department.topics(settings.topic_prefix):
            for partition in consumer.list_topics(topic, timeout=10).topics[topic].partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
                assert low == 0
                total += high
        return total
    finally:
        consumer.close()


def _recorder(seen: list[tuple[int, int]]) -> Callable[[int, int], None]:
    return lambda done, behind: seen.append((done, behind))


@pytest.mark.kafka
def test_a_department_added_later_replays_the_log_into_the_same_state(
    bus_store_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = bus_store_settings
    events = list(simulate_registrations(600, seed=11))  # births, deaths, marriages, corrections, voids
    rounds = [events[:250], events[250:] + events[100:150]]  # the second round republishes part of the first

    for batch in rounds:  # every department is there from the start, consuming as events arrive
        publish(settings, batch)
        for name in sorted(DEPARTMENTS):
            run_department(settings, name, until_caught_up=True, handle_signals=False, batch_size=100)

    late = {name: copy_of(department, f"{name}-late") for name, department in DEPARTMENTS.items()}
    allow_test_departments(monkeypatch, *late.values(), copies={copy.name: name for name, copy in late.items()})
    apply_topics(settings, [copy.name for copy in late.values()], replication_factor=1, profile="local")
    differences = []
    for name, copy in sorted(late.items()):
        progress: list[tuple[int, int]] = []
        report = run_department(
            settings, copy, until_caught_up=True, handle_signals=False, batch_size=100, on_progress=_recorder(progress)
        )
        assert report.messages == log_size(settings, copy), f"{name}: the late department read the whole log"
        assert progress[-1] == (report.messages, 0), f"{name}: progress ends caught up"
        assert [done for done, _ in progress] == sorted({done for done, _ in progress}), "processed only grows"
        early_state, late_state = snapshot(settings, DEPARTMENTS[name]), snapshot(settings, copy)
        assert early_state["civreg_event_outcomes"], f"{name}: received events"
        assert early_state["civreg_unacknowledged"] == late_state["civreg_unacknowledged"] == []
        for table in sorted(early_state.keys() | late_state.keys()):
            if early_state.get(table) != late_state.get(table):
                differences.append(f"{name}.{table}")
    assert differences == [], "tables that differ between the department there from the start and the late one"
    suppressed = snapshot(settings, DEPARTMENTS["suppression"])["do_not_contact"]
    assert len(suppressed) > 50, "the comparison covers a real do-not-contact list"


@pytest.mark.kafka
def test_consume_until_caught_up_shows_the_backfill_bar(bus_settings: Settings) -> None:
    deaths = [make_death(entry_number=n, deceased=make_person(given_names=f"Person{n}")) for n in range(1, 301)]
    publish(bus_settings, deaths)
    command = ["consume", "--department", "suppression", "--until-caught-up", "--batch-size", "50"]
    done = subprocess.run(
        [sys.executable, "-m", "civreg", *command, "--log-level", "WARNING"],
        env={**settings_env(bus_settings), "COLUMNS": "160"},
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "suppression back-fill" in done.stderr
    assert "300/300" in done.stderr
    assert "suppression: 300 messages" in done.stdout


def test_the_backfill_bar_follows_lag_and_closes_when_caught_up() -> None:
    out = io.StringIO()
    bar = BackfillBar("tax", always=False, threshold=1000, console=Console(file=out, width=120))
    bar.update(500, 400)  # not far behind: no bar
    assert out.getvalue() == ""
    bar.update(1000, 20_000)
    bar.update(11_000, 10_000)
    bar.update(21_000, 0)  # caught up: the bar closes with its final numbers
    assert "tax back-fill" in out.getvalue()
    assert "21000/21000" in out.getvalue()
    bar.update(21_500, 0)
    assert out.getvalue().count("tax back-fill") == 1


def test_a_backfill_run_always_shows_the_bar() -> None:
    out = io.StringIO()
    with BackfillBar("tax", always=True, console=Console(file=out, width=120)) as bar:
        bar.update(100, 50)
        bar.update(150, 0)
    assert "150/150" in out.getvalue()
