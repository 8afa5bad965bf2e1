"""The runtime's batch in PostgreSQL pipeline mode keeps every guarantee of the unpipelined one.

Pipelined, a write does not wait for its result, so its error surfaces at a later statement or when the block ends:
it must still be a ``PostgresStatementError`` naming no row values (and the batch run again with a savepoint per
event, which dead-letters the event whose rule failed and applies the others), and a serialization failure must
still be a ``TransientError`` (the batch retried), wherever it surfaces.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from pydantic import SecretStr

from civreg.settings import Settings
from consumers.departments import department_named
from consumers.kit.life_events import ENTRY_LOG_SCHEMA, EntryLog
from consumers.operations.running import open_store
from consumers.runtime import DepartmentConsumer, Store, TransientError
from consumers.runtime.postgres_store import PostgresStatementError, PostgresStore, PostgresTransaction, schema_for
from consumers.runtime.sqlite_store import SqliteStore
from tests.support.factories import make_death, make_person
from tests.support.publishing import publish_deaths
from tests.support.routing import route

SCHEMA = "CREATE TABLE IF NOT EXISTS widgets (id TEXT PRIMARY KEY, count INTEGER NOT NULL);"


def _open(settings: Settings, schema: str) -> Store:
    dsn = settings.postgres_dsn
    if dsn is None:
        return SqliteStore(settings.database_dir / "widgets.db", schema)
    return PostgresStore(dsn.get_secret_value(), "civreg_widgets", schema)


@pytest.fixture
def widgets(store_backend: Settings) -> Iterator[Store]:
    """A store holding one table, on the test's engine."""
    store = _open(store_backend, SCHEMA)
    yield store
    store.close()


def _postgres(dsn: str) -> PostgresStore:
    return PostgresStore(dsn, "civreg_widgets", SCHEMA)


# The store: what a pipelined block does on each engine ---------------------------------------------------------


def test_a_pipelined_block_reads_its_own_writes_and_commits_them_on_both_engines(widgets: Store) -> None:
    with widgets.transaction() as tx, tx.pipelined():
        tx.execute("INSERT INTO widgets VALUES (?, ?)", ("a", 1))
        tx.execute_many("INSERT INTO widgets VALUES (?, ?)", [("b", 2), ("c", 3)])
        tx.execute("UPDATE widgets SET count = count + 10 WHERE id = ?", ("a",))
        assert tx.execute("SELECT id, count FROM widgets ORDER BY id") == [("a", 11), ("b", 2), ("c", 3)]
        tx.execute("DELETE FROM widgets WHERE id = ?", ("c",))
    assert widgets.read().execute("SELECT id, count FROM widgets ORDER BY id") == [("a", 11), ("b", 2)]


def test_a_savepoint_rolled_back_in_a_batch_drops_the_entry_log_mirror(store_backend: Settings) -> None:
    """The batch's mirror of the entry log would still hold what a rolled-back event wrote: it is dropped, and
    every later question of the batch reads the tables."""
    store = _open(store_backend, ENTRY_LOG_SCHEMA)
    entry = make_death().entry
    try:
        with store.transaction() as tx:
            tx.preload(["e1", "e2"], [entry.key])
            log = EntryLog(tx)
            assert log.history(entry) == (None, set())  # the batch's entries read at once
            with pytest.raises(RuntimeError), tx.savepoint():
                log.saw(entry, 1)
                assert log.state(entry) == (1, "current")  # from the mirror
                raise RuntimeError("the event failed")
            assert tx.batch_memo("life_event_entries") is None
            assert log.state(entry) is None  # from the table: the rollback undid it
            log.saw(entry, 2)
            assert EntryLog(tx).history(entry) == ((2, "current"), set())
    finally:
        store.close()


@pytest.mark.postgres
def test_a_pipelined_write_error_surfaces_at_the_next_read_naming_no_values(postgres_database: str) -> None:
    store = _postgres(postgres_database)
    try:
        with store.transaction() as tx:
            tx.execute("INSERT INTO widgets VALUES (?, ?)", ("AB123456C", 1))
        with pytest.raises(PostgresStatementError) as raised, store.transaction() as tx, tx.pipelined():
            tx.execute("INSERT INTO widgets VALUES (?, ?)", ("new", 1))
            tx.execute("INSERT INTO widgets VALUES (?, ?)", ("AB123456C", 2))  # sent, not waited for
            tx.execute("UPDATE widgets SET count = 5 WHERE id = ?", ("new",))  # skipped by the server
            tx.execute("SELECT COUNT(*) FROM widgets")  # waits: the insert's error is raised by now
        assert "widgets_pkey" in str(raised.value) and "AB123456C" not in str(raised.value)
        assert raised.value.__cause__ is None and raised.value.__suppress_context__
        # The block's last write fails too: raised when the block ends, before the commit; nothing committed.
        with pytest.raises(PostgresStatementError) as at_end, store.transaction() as tx, tx.pipelined():
            tx.execute("INSERT INTO widgets VALUES (?, ?)", ("other", 1))
            tx.execute("INSERT INTO widgets VALUES (?, ?)", ("AB123456C", 3))
        assert "widgets_pkey" in str(at_end.value) and "AB123456C" not in str(at_end.value)
        assert store.read().execute("SELECT id FROM widgets") == [("AB123456C",)]
        with store.transaction() as tx, tx.pipelined():  # the connection is usable again
            tx.execute("INSERT INTO widgets VALUES (?, ?)", ("other", 1))
        assert store.read().scalar("SELECT COUNT(*) FROM widgets") == 2
    finally:
        store.close()


@pytest.mark.postgres
def test_a_serialization_failure_surfacing_in_a_pipeline_is_transient(postgres_database: str) -> None:
    first, second = _postgres(postgres_database), _postgres(postgres_database)
    try:
        with first.transaction() as tx:
            tx.execute("INSERT INTO widgets VALUES (?, ?)", ("a", 0))
        with pytest.raises(TransientError) as raised, first.transaction() as tx1, tx1.pipelined():
            count = tx1.scalar("SELECT count FROM widgets WHERE id = ?", ("a",))
            with second.transaction() as tx2:  # commits between the read and the write
                tx2.execute("UPDATE widgets SET count = count + 1 WHERE id = ?", ("a",))
            tx1.execute("UPDATE widgets SET count = ? WHERE id = ?", (count + 1, "a"))  # fails, at once or at the end
        assert "40001" in str(raised.value)
        assert first.read().scalar("SELECT count FROM widgets WHERE id = ?", ("a",)) == 1
    finally:
        first.close()
        second.close()


@pytest.mark.postgres
def test_a_connection_lost_in_a_pipeline_is_transient_and_the_store_reconnects(postgres_database: str) -> None:
    store = _postgres(postgres_database)
    try:
        with store.transaction() as tx:
            tx.execute("INSERT INTO widgets VALUES (?, ?)", ("a", 0))
        with pytest.raises(TransientError), store.transaction() as tx, tx.pipelined():
            tx.execute("UPDATE widgets SET count = count + 1 WHERE id = ?", ("a",))
            pid = tx.scalar("SELECT pg_backend_pid()")
            with psycopg.connect(postgres_database, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            tx.execute("UPDATE widgets SET count = count + 1 WHERE id = ?", ("a",))
            tx.execute("SELECT count FROM widgets WHERE id = ?", ("a",))
        with store.transaction() as tx, tx.pipelined():
            tx.execute("UPDATE widgets SET count = count + 1 WHERE id = ?", ("a",))
        assert store.read().scalar("SELECT count FROM widgets WHERE id = ?", ("a",)) == 1
    finally:
        store.close()


# The runtime: a batch of deaths through the suppression department on PostgreSQL --------------------------------


@pytest.fixture
def pg_bus_settings(bus_settings: Settings, postgres_database: str) -> Settings:
    return bus_settings.model_copy(update={"postgres_dsn": SecretStr(postgres_database)})


def _spy_pipelines(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count pipelined blocks entered (so a test knows the fast path ran pipelined before any rerun)."""
    entered: list[int] = []
    original = PostgresTransaction.pipelined

    def pipelined(self: PostgresTransaction) -> Any:
        entered.append(1)
        return original(self)

    monkeypatch.setattr(PostgresTransaction, "pipelined", pipelined)
    return entered


def _outcomes_by_entry(store: Store) -> dict[str, str]:
    rows = store.read().execute("SELECT entry_key, outcome FROM civreg_event_outcomes")
    return {str(entry_key): str(outcome) for entry_key, outcome in rows}


@pytest.mark.kafka
@pytest.mark.postgres
@pytest.mark.parametrize(
    "batch_size",
    [
        pytest.param(500, id="raised-in-a-later-event"),
        pytest.param(1, id="raised-after-the-last-event"),  # by the flush or the end of the pipeline
    ],
)
def test_a_statement_error_in_a_pipelined_batch_dead_letters_only_its_event(
    pg_bus_settings: Settings, monkeypatch: pytest.MonkeyPatch, batch_size: int
) -> None:
    settings = pg_bus_settings
    publish_deaths(settings, 30)
    route(settings)
    refused = {7, 30}  # the server refuses these deaths' rows: a write error the pipeline reports later
    store = open_store(settings, "suppression")
    try:
        with store.transaction() as tx:
            tx.execute("ALTER TABLE do_not_contact ADD CONSTRAINT test_refuses CHECK (entry_number NOT IN (7, 30))")
        pipelines = _spy_pipelines(monkeypatch)
        consumer = DepartmentConsumer(department_named("suppression"), settings, store, batch_size=batch_size)
        report = consumer.run(until_caught_up=True)
        outcomes = _outcomes_by_entry(store)
        suppressed = store.read().scalar("SELECT COUNT(*) FROM do_not_contact")
    finally:
        store.close()
    assert pipelines, "the fast path ran pipelined"
    keys = {number: make_death(entry_number=number, deceased=make_person()).entry.key for number in range(1, 31)}
    assert {outcomes[keys[number]] for number in refused} == {"dead_lettered"}
    assert {outcomes[keys[number]] for number in set(keys) - refused} == {"applied"}
    assert report.dead_letters == 2 and report.dead_letter_reasons == {"handler-crashed": 2}
    assert report.retries == 0  # a statement error is not transient: rerun with savepoints, never retried
    assert suppressed == 28


@pytest.mark.kafka
@pytest.mark.postgres
def test_a_serialization_failure_in_a_pipelined_batch_is_retried(
    pg_bus_settings: Settings, postgres_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = pg_bus_settings
    publish_deaths(settings, 30)
    route(settings)
    store = open_store(settings, "suppression")
    conflicts: list[bool] = []
    original: Callable[..., None] = PostgresTransaction.save_offsets

    def save_offsets(self: PostgresTransaction, next_offsets: dict[tuple[str, int], int]) -> None:
        """The first time: another writer commits the same offset rows first (a real concurrent transaction)."""
        if not conflicts:
            conflicts.append(self._pipeline is not None)
            with psycopg.connect(postgres_database, autocommit=True) as other:
                other.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema_for("suppression"))))
                for (topic, partition), _ in next_offsets.items():
                    other.execute(
                        "INSERT INTO civreg_offsets VALUES (%s, %s, 0) ON CONFLICT (topic, partition) "
                        "DO UPDATE SET next_offset = civreg_offsets.next_offset",
                        (topic, partition),
                    )
        original(self, next_offsets)

    monkeypatch.setattr(PostgresTransaction, "save_offsets", save_offsets)
    try:
        report = DepartmentConsumer(department_named("suppression"), settings, store).run(until_caught_up=True)
        counts = store.outcome_counts()
    finally:
        store.close()
    assert conflicts == [True], "the conflict was made while the batch ran pipelined"
    assert report.retries >= 1
    assert counts == {("DeathRegistered", "applied"): 30}
