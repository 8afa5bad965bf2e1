"""The Store/Transaction contract on both engines (SQLite, a real PostgreSQL), and what only PostgreSQL needs.

Department SQL is written once (``?`` placeholders, tuples back, savepoints per event): these tests hold both
engines to the same answers, so a department tested on one behaves the same on the other.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pydantic import SecretStr

from civreg.settings import Settings
from consumers.operations.running import open_store
from consumers.runtime import Department, Result, Store, TransientError
from consumers.runtime.postgres_store import PostgresStatementError, PostgresStore, schema_for, to_psycopg
from schemas.models import DeathRegistered, RegistrationCorrected, RegistrationVoided
from schemas.topics import Register

SCHEMA = """
CREATE TABLE IF NOT EXISTS widgets (
    id      TEXT PRIMARY KEY,
    label   TEXT NOT NULL,
    count   INTEGER NOT NULL,
    active  INTEGER NOT NULL DEFAULT 1
);
"""


def _rule(_event: object, _records: object) -> Result:
    return Result.applied()


def make_department(name: str = "widgets") -> Department[object]:
    department: Department[object] = Department.declare(
        name, registers={Register.DEATH}, schema=SCHEMA, records=lambda tx: tx
    )
    department.handles(DeathRegistered, RegistrationCorrected, RegistrationVoided)(_rule)
    return department


@pytest.fixture
def store(store_backend: Settings) -> Iterator[Store]:
    opened = open_store(store_backend, make_department())
    yield opened
    opened.close()


# Placeholder translation (pure) -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sqlite_text", "psycopg_text"),
    [
        ("SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = %s AND b = %s"),
        ("SELECT '?' || ?", "SELECT '?' || %s"),
        ("SELECT 'it''s ?', ?", "SELECT 'it''s ?', %s"),
        ('SELECT "odd?name" FROM t WHERE x = ?', 'SELECT "odd?name" FROM t WHERE x = %s'),
        ("SELECT 1 -- why?\nWHERE a = ?", "SELECT 1 -- why?\nWHERE a = %s"),
        ("SELECT /* ? */ ?", "SELECT /* ? */ %s"),
        ("SELECT a FROM t WHERE a LIKE 'x%' AND b = ?", "SELECT a FROM t WHERE a LIKE 'x%%' AND b = %s"),
        ("SELECT 10 % ?", "SELECT 10 %% %s"),
    ],
)
def test_question_marks_become_placeholders_only_where_sqlite_reads_them_so(
    sqlite_text: str, psycopg_text: str
) -> None:
    assert to_psycopg(sqlite_text) == psycopg_text


def test_schema_names_are_derived_from_department_names_and_refuse_anything_else() -> None:
    assert schema_for("suppression") == "civreg_suppression"
    assert schema_for("suppression-late") == "civreg_suppression_late"
    with pytest.raises(ValueError, match="department name"):
        schema_for('x"; DROP SCHEMA public; --')


# The contract, on both engines --------------------------------------------------------------------------------


def test_rows_come_back_as_tuples_with_literals_untouched(store: Store) -> None:
    with store.transaction() as tx:
        tx.execute_many(
            "INSERT INTO widgets (id, label, count) VALUES (?, ?, ?)", [("a", "50% off?", 1), ("b", "b", 2)]
        )
    rows = store.read().execute("SELECT id, label, count FROM widgets WHERE label LIKE '%off?' AND count >= ?", (1,))
    assert rows == [("a", "50% off?", 1)]
    assert store.read().scalar("SELECT COUNT(*) FROM widgets") == 2
    assert store.read().one("SELECT id FROM widgets WHERE id = ?", ("missing",)) is None


def test_a_boolean_is_stored_as_an_integer_on_both_engines(store: Store) -> None:
    with store.transaction() as tx:
        tx.execute("INSERT INTO widgets VALUES (?, ?, ?, ?)", ("a", "a", 1, False))
    assert store.read().scalar("SELECT active FROM widgets WHERE id = ?", ("a",)) == 0


def test_a_savepoint_undoes_only_its_block_and_the_transaction_goes_on(store: Store) -> None:
    with store.transaction() as tx:
        tx.execute("INSERT INTO widgets (id, label, count) VALUES (?, ?, ?)", ("kept", "k", 1))
        with pytest.raises((sqlite3.IntegrityError, PostgresStatementError)), tx.savepoint():
            tx.execute("INSERT INTO widgets (id, label, count) VALUES (?, ?, ?)", ("undone", "u", 1))
            tx.execute("INSERT INTO widgets (id, label, count) VALUES (?, ?, ?)", ("kept", "duplicate", 1))
        tx.execute("INSERT INTO widgets (id, label, count) VALUES (?, ?, ?)", ("after", "a", 1))
    assert [row[0] for row in store.read().execute("SELECT id FROM widgets ORDER BY id")] == ["after", "kept"]


def test_a_transaction_that_raises_commits_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.execute("INSERT INTO widgets (id, label, count) VALUES (?, ?, ?)", ("a", "a", 1))
        tx.save_offset("t", 0, 10)
        raise RuntimeError("handler bug")
    assert store.read().scalar("SELECT COUNT(*) FROM widgets") == 0
    assert store.stored_offsets() == {}


def test_offsets_outcomes_and_owed_acknowledgements_are_kept_with_the_data(store: Store) -> None:
    with store.transaction() as tx:
        tx.record_outcome(
            event_id="e1",
            event_type="DeathRegistered",
            entry_key="DEATH/Leeds/1",
            version=1,
            outcome="applied",
            note="",
            topic="t",
            partition=0,
            offset=4,
        )
        tx.save_offset("t", 0, 5)
        tx.save_offset("t", 0, 6)
    assert store.stored_offsets() == {("t", 0): 6}
    assert store.outcome_counts() == {("DeathRegistered", "applied"): 1}
    with store.transaction() as tx:
        assert tx.outcome_of("e1") == "applied"
        assert tx.outcome_of("e2") is None
    assert store.read().execute("SELECT event_id FROM civreg_unacknowledged") == [("e1",)]


def test_reopening_keeps_the_data_and_creates_nothing_twice(store_backend: Settings) -> None:
    first = open_store(store_backend, make_department())
    with first.transaction() as tx:
        tx.execute("INSERT INTO widgets (id, label, count) VALUES (?, ?, ?)", ("a", "a", 1))
    first.close()
    again = open_store(store_backend, make_department())
    try:
        assert again.read().scalar("SELECT COUNT(*) FROM widgets") == 1
    finally:
        again.close()


# PostgreSQL only ----------------------------------------------------------------------------------------------

pg = pytest.mark.postgres


def _pg(dsn: str, department: str = "widgets") -> PostgresStore:
    return PostgresStore(dsn, schema_for(department), SCHEMA)


@pg
def test_each_department_has_its_own_schema_in_one_database(postgres_database: str) -> None:
    settings = Settings(postgres_dsn=SecretStr(postgres_database))
    tax, dvla = open_store(settings, make_department("tax")), open_store(settings, make_department("dvla"))
    try:
        with tax.transaction() as tx:
            tx.execute("INSERT INTO widgets (id, label, count) VALUES (?, ?, ?)", ("a", "tax", 1))
        assert dvla.read().scalar("SELECT COUNT(*) FROM widgets") == 0
        with psycopg.connect(postgres_database) as admin:
            schemas = {row[0] for row in admin.execute("SELECT table_schema FROM information_schema.tables")}
        assert {"civreg_tax", "civreg_dvla"} <= schemas
        assert "public" not in schemas
    finally:
        tax.close()
        dvla.close()


@pg
def test_commits_are_synchronous_even_where_the_server_default_is_not(postgres_database: str) -> None:
    with psycopg.connect(postgres_database, autocommit=True) as admin:
        name = admin.info.dbname
        admin.execute(sql.SQL("ALTER DATABASE {} SET synchronous_commit = off").format(sql.Identifier(name)))
    store = _pg(postgres_database)
    try:
        assert store.read().scalar("SHOW synchronous_commit") == "on"
    finally:
        store.close()


@pg
def test_statement_errors_name_the_constraint_never_the_row_values(postgres_database: str) -> None:
    store = _pg(postgres_database)
    try:
        with pytest.raises(PostgresStatementError) as raised, store.transaction() as tx:
            tx.execute("INSERT INTO widgets (id, label, count) VALUES (?, ?, ?)", ("AB123456C", "a", 1))
            tx.execute("INSERT INTO widgets (id, label, count) VALUES (?, ?, ?)", ("AB123456C", "b", 1))
        assert "AB123456C" not in str(raised.value)
        assert "widgets_pkey" in str(raised.value)
        assert raised.value.__cause__ is None and raised.value.__suppress_context__
        with pytest.raises(PostgresStatementError) as bad_type:
            store.read().execute("SELECT * FROM widgets WHERE count = ?", ("Margaret",))
        assert "Margaret" not in str(bad_type.value)
    finally:
        store.close()


@pg
def test_writers_that_would_interleave_get_a_transient_error_and_retry(postgres_database: str) -> None:
    first, second = _pg(postgres_database), _pg(postgres_database)
    try:
        with first.transaction() as tx:
            tx.execute("INSERT INTO widgets (id, label, count) VALUES (?, ?, ?)", ("a", "a", 0))
        one, two = first.transaction(), second.transaction()
        tx1, tx2 = one.__enter__(), two.__enter__()
        count1 = tx1.scalar("SELECT count FROM widgets WHERE id = ?", ("a",))
        count2 = tx2.scalar("SELECT count FROM widgets WHERE id = ?", ("a",))
        tx1.execute("UPDATE widgets SET count = ? WHERE id = ?", (count1 + 1, "a"))
        one.__exit__(None, None, None)
        with pytest.raises(TransientError) as raised:  # read-then-write on a stale read: never a lost update
            tx2.execute("UPDATE widgets SET count = ? WHERE id = ?", (count2 + 1, "a"))
        two.__exit__(TransientError, raised.value, None)
        with second.transaction() as tx:  # the retry sees the committed value
            tx.execute("UPDATE widgets SET count = count + 1 WHERE id = ?", ("a",))
        assert first.read().scalar("SELECT count FROM widgets WHERE id = ?", ("a",)) == 2
    finally:
        first.close()
        second.close()


@pg
def test_a_lost_connection_is_transient_and_the_store_reconnects(postgres_database: str) -> None:
    store = _pg(postgres_database)
    try:
        pid = store.read().scalar("SELECT pg_backend_pid()")
        with psycopg.connect(postgres_database, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(TransientError), store.transaction() as tx:
            tx.execute("INSERT INTO widgets (id, label, count) VALUES (?, ?, ?)", ("a", "a", 1))
        with store.transaction() as tx:
            tx.execute("INSERT INTO widgets (id, label, count) VALUES (?, ?, ?)", ("a", "a", 1))
        assert store.read().scalar("SELECT pg_backend_pid()") != pid
        assert store.read().scalar("SELECT COUNT(*) FROM widgets") == 1
    finally:
        store.close()


@pg
def test_an_unreachable_server_is_transient_and_its_error_holds_no_password(postgres_dsn: str) -> None:
    dsn = make_conninfo(postgres_dsn, port="1")  # nothing listens there
    with pytest.raises(TransientError) as raised:
        PostgresStore(dsn, "civreg_widgets", SCHEMA, connect_timeout=2)
    password = conninfo_to_dict(postgres_dsn)["password"]
    assert password and str(password) not in str(raised.value)
