"""PostgreSQL store: department databases at scale, one schema per department in one database.

The same contract as the SQLite store (``store.Transaction`` / ``store.Store``): department SQL keeps its ``?``
placeholders (translated here to psycopg's ``%s``, outside string literals, quoted names and comments), rows come
back as tuples, a savepoint undoes one event, and the runtime schema plus the department's DDL are created at open.

Why these choices:

- **SERIALIZABLE** write transactions: SQLite serialises writers, so department rules may read-then-write; two
  consumers of one department (different partitions) or a reviewer and a consumer must not interleave either.
  Serialization failures, deadlocks and lost connections raise ``TransientError``: the runtime retries the batch
  (nothing of it was committed) and the store reconnects.
- **commit = durable**: ``synchronous_commit`` is forced on for the session, whatever the server default.
- **no personal data in errors**: PostgreSQL puts row values in its messages ("Key (nino)=(...) already exists");
  statement errors are re-raised as ``PostgresStatementError`` naming only the SQLSTATE, table, column and
  constraint.
- **pipeline mode for the runtime's batch** (``PostgresTransaction.pipelined``): a statement that returns no rows
  is sent without waiting for its result; a query's fetch brings back every result before it in the same round
  trip. A write's error then surfaces at a later statement or at the end of the block (psycopg raises the first
  error, then ``PipelineAborted`` for the statements the server skipped); either is a ``PostgresStatementError``
  and the runtime reruns the batch unpipelined with a savepoint per event, which attributes it. Serialization
  failures and lost connections stay ``TransientError`` wherever they surface.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from consumers.runtime.errors import TransientError
from consumers.runtime.store import (
    OFFSETS_QUERY,
    OUTCOME_COUNTS_QUERY,
    RUNTIME_COLUMNS_ADDED,
    RUNTIME_SCHEMA,
    Params,
    Row,
    StatementError,
    Transaction,
    counts_from,
    offsets_from,
)

if TYPE_CHECKING:
    import polars as pl

__all__ = ["PostgresStatementError", "PostgresStore", "PostgresTransaction", "schema_for", "to_psycopg"]

_COPY_ROWS = 100_000
"""Rows per CSV block sent down one COPY."""
_DEPARTMENT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,40}$")
_RETURNS_ROWS: dict[bytes, bool] = {}
"""Whether a statement (by its text) returns rows, learned at its first run in a pipeline: before its result has
arrived psycopg cannot say (``cursor.description`` is None), and the text alone is no safe guide (``RETURNING``,
``WITH``)."""
_RETURNS_ROWS_KEPT = 4096


def schema_for(department: str) -> str:
    """The PostgreSQL schema that holds one department's tables, e.g. ``civreg_suppression``."""
    if not _DEPARTMENT_NAME.match(department):
        raise ValueError(f"department name {department!r} must be lower-case letters, digits, '-' or '_'")
    return "civreg_" + department.replace("-", "_")


class PostgresStatementError(StatementError):
    """A statement PostgreSQL rejected (constraint, type, syntax); the message names no row values."""

    def __init__(self, error: psycopg.Error) -> None:
        diag = error.diag
        where = ", ".join(
            f"{label} {value}"
            for label, value in (
                ("table", diag.table_name),
                ("column", diag.column_name),
                ("constraint", diag.constraint_name),
            )
            if value
        )
        message = f"PostgreSQL rejected a statement: {type(error).__name__} (SQLSTATE {error.sqlstate})"
        super().__init__(f"{message} on {where}" if where else message)
        self.sqlstate = error.sqlstate


def to_psycopg(statement: str) -> str:
    """``?`` placeholders to ``%s`` and literal ``%`` to ``%%``, leaving ``?`` inside literals, names and comments.

    psycopg scans the whole text for ``%``, so it is doubled everywhere; ``?`` becomes a placeholder only where
    SQLite would treat it as one.
    """
    out: list[str] = []
    index, length = 0, len(statement)
    while index < length:
        char = statement[index]
        if char in "'\"":
            end = statement.find(char, index + 1)
            while end != -1 and statement[end + 1 : end + 2] == char:  # '' and "" escape the quote
                end = statement.find(char, end + 2)
            end = length if end == -1 else end + 1
            out.append(statement[index:end].replace("%", "%%"))
            index = end
        elif statement.startswith("--", index):
            end = statement.find("\n", index)
            end = length if end == -1 else end
            out.append(statement[index:end].replace("%", "%%"))
            index = end
        elif statement.startswith("/*", index):
            end = statement.find("*/", index + 2)
            end = length if end == -1 else end + 2
            out.append(statement[index:end].replace("%", "%%"))
            index = end
        elif char == "?":
            out.append("%s")
            index += 1
        elif char == "%":
            out.append("%%")
            index += 1
        else:
            out.append(char)
            index += 1
    return "".join(out)


@lru_cache(maxsize=2048)
def _query(statement: str) -> bytes:
    return to_psycopg(statement).encode()


def _params(params: Params) -> tuple[Any, ...]:
    # SQLite stores True as 1; PostgreSQL refuses a boolean for an INTEGER column. Keep one dialect for both.
    return tuple(int(value) if isinstance(value, bool) else value for value in params)


def _transient(error: psycopg.Error) -> TransientError:
    return TransientError(f"PostgreSQL unavailable or conflicting: {type(error).__name__} (SQLSTATE {error.sqlstate})")


@contextmanager
def _in_project_terms() -> Iterator[None]:
    """psycopg's errors as this project's: a lost connection or a serialization failure is a ``TransientError``
    (the batch is retried); anything else, a statement an earlier one's failure aborted in a pipeline included, a
    ``PostgresStatementError`` that names no row values (the original's text may hold them)."""
    try:
        yield
    except psycopg.errors.PipelineAborted as exc:  # an earlier statement failed: not a transient condition
        raise PostgresStatementError(exc) from None
    except psycopg.OperationalError as exc:
        raise _transient(exc) from exc
    except psycopg.Error as exc:
        raise PostgresStatementError(exc) from None


class PostgresTransaction(Transaction):
    """Statements on the store's connection (inside a transaction, or autocommitted for ``read()``)."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store
        self._pipeline: psycopg.Pipeline | None = None
        self._pipeline_connection: psycopg.Connection[TupleRow] | None = None

    def execute(self, sql_text: str, params: Params = ()) -> list[Row]:
        """Run one statement with ``?`` placeholders and return its rows as tuples.

        Pipelined, a statement that returns no rows is only sent: its result (and error) arrive with a later fetch.
        """
        query = _query(sql_text)
        with _in_project_terms():
            if self._pipeline is None:
                cursor = self._store.connection.execute(query, _params(params))
                self._store.round_trips += 1
                return list(cursor.fetchall()) if cursor.description is not None else []
            assert self._pipeline_connection is not None
            cursor = self._pipeline_connection.execute(query, _params(params))
            returns_rows = _RETURNS_ROWS.get(query)
            if returns_rows is None:  # first run of this text: wait for its result once to learn its kind
                self._pipeline.sync()
                self._store.round_trips += 1
                if len(_RETURNS_ROWS) >= _RETURNS_ROWS_KEPT:
                    _RETURNS_ROWS.clear()
                returns_rows = _RETURNS_ROWS[query] = cursor.description is not None
            if not returns_rows:
                return []
            self._store.round_trips += 1
            return list(cursor.fetchall())

    @contextmanager
    def pipelined(self) -> Iterator[None]:
        """psycopg's pipeline mode for the block: statements without rows do not wait (see the module docstring).

        Leaving the block sends a Sync and waits for every result still owed, so an error of the block's last
        writes is raised here, before the caller commits or writes anything outside the database.
        """
        if self._pipeline is not None:
            yield
            return
        connection = self._store.connection
        with _in_project_terms(), connection.pipeline() as pipeline:
            self._pipeline, self._pipeline_connection = pipeline, connection
            try:
                yield
            except BaseException:
                # Collect the results still in flight here, quietly: psycopg would log an error it found on the
                # way out with the server's text, which may quote row values. The block's error stands.
                with suppress(psycopg.Error):
                    pipeline.sync()
                raise
            finally:
                self._pipeline, self._pipeline_connection = None, None
        self._store.round_trips += 1

    def execute_many(self, sql_text: str, rows: Sequence[Params]) -> None:
        """Run one statement for many parameter rows (pipelined by psycopg)."""
        if not rows:
            return
        connection = self._store.connection if self._pipeline_connection is None else self._pipeline_connection
        with _in_project_terms():
            with connection.cursor() as cursor:
                cursor.executemany(_query(sql_text), [_params(row) for row in rows])
            if self._pipeline is None:
                self._store.round_trips += 1

    def insert_frame(self, table: str, frame: pl.DataFrame) -> None:
        """``COPY table (columns) FROM STDIN`` in CSV, every text quoted so that only a null is an empty cell."""
        if frame.is_empty():
            return
        copy = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
            sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(column) for column in frame.columns)
        )
        with _in_project_terms(), self._store.connection.cursor() as cursor, cursor.copy(copy) as stream:
            for part in frame.iter_slices(_COPY_ROWS):
                stream.write(part.write_csv(include_header=False, quote_style="non_numeric").encode())

    def secondary_indexes(self, table: str) -> list[tuple[str, str]]:
        """The table's indexes in the store's schema, but for those backing a constraint (its primary key)."""
        rows = self.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = current_schema() "
            "AND i.tablename = ? AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
            (table,),
        )
        return [(str(name), str(statement)) for name, statement in rows]

    def _claim_outcomes(self) -> None:
        """Take the outcome table's write lock before anything else the batch touches.

        The batch writes department tables first and its outcome rows together at the end; a process opening the
        store meanwhile (its ``CREATE INDEX IF NOT EXISTS`` takes the tables in script order, outcomes first) could
        otherwise hold outcomes while waiting for a department table this batch holds: a deadlock.
        """
        self.execute("LOCK TABLE civreg_event_outcomes IN ROW EXCLUSIVE MODE")

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested transaction: SAVEPOINT, ROLLBACK TO SAVEPOINT if the block raises, RELEASE.

        A connection lost at SAVEPOINT, ROLLBACK TO or RELEASE is a TransientError like any other statement's:
        otherwise psycopg's error would replace the block's TransientError and the runtime would dead-letter the
        event as if its rule had failed.
        """
        try:
            with self._store.connection.transaction():
                try:
                    yield
                except BaseException:
                    self._rolled_back_to_savepoint()
                    raise
        except psycopg.OperationalError as exc:
            raise _transient(exc) from exc


class PostgresStore:
    """A department's schema in a PostgreSQL database; tables created at open (idempotent, safe concurrently)."""

    def __init__(self, dsn: str, schema: str, department_schema: str = "", *, connect_timeout: int = 10) -> None:
        self.schema = schema
        self._dsn = dsn
        self._connect_timeout = connect_timeout
        self._connection: psycopg.Connection[TupleRow] | None = None
        self.round_trips = 0
        """Statements and syncs that waited for the server (a developer's count: ``backfill_profile``)."""
        self._create_tables(department_schema)

    @property
    def connection(self) -> psycopg.Connection[TupleRow]:
        """The live connection, reconnecting if the last one broke (a failover, a restarted server)."""
        if self._connection is None or self._connection.closed or self._connection.broken:
            try:
                connection = psycopg.connect(self._dsn, autocommit=True, connect_timeout=self._connect_timeout)
            except psycopg.OperationalError as exc:  # libpq's text names host, port and user, never the password
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise TransientError(f"cannot connect to PostgreSQL: {reason}") from exc
            except psycopg.ProgrammingError:  # its text may quote the DSN, password included
                raise ValueError("the PostgreSQL DSN (CIVREG_POSTGRES_DSN) is not a valid connection string") from None
            connection.isolation_level = psycopg.IsolationLevel.SERIALIZABLE
            connection.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
            connection.execute("SET synchronous_commit TO on")
            self._connection = connection
        return self._connection

    def _create_tables(self, department_schema: str) -> None:
        connection = self.connection
        with _in_project_terms(), connection.transaction():
            # Two processes opening a new department at once must not race on CREATE ... IF NOT EXISTS.
            connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.schema,))
            connection.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
            # No parameters: psycopg sends the script as one simple query, several statements allowed.
            connection.execute((RUNTIME_SCHEMA + department_schema).encode())
            for table, column, kind in RUNTIME_COLUMNS_ADDED:  # a database created by an older version
                connection.execute(
                    sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                        sql.Identifier(table), sql.Identifier(column), sql.SQL(kind)
                    )
                )

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """BEGIN ISOLATION LEVEL SERIALIZABLE .. COMMIT, rolled back if the block raises."""
        connection = self.connection
        try:
            with connection.transaction():
                yield PostgresTransaction(self)
        except psycopg.OperationalError as exc:  # a serialization failure or lost connection at COMMIT
            raise _transient(exc) from exc

    def read(self) -> Transaction:
        """A handle for read-only queries outside a write transaction (each statement autocommits)."""
        return PostgresTransaction(self)

    def stored_offsets(self) -> dict[tuple[str, int], int]:
        """Next offset to read per (topic, partition)."""
        return offsets_from(self.read().execute(OFFSETS_QUERY))

    def outcome_counts(self) -> dict[tuple[str, str], int]:
        """Events per (event type, outcome)."""
        return counts_from(self.read().execute(OUTCOME_COUNTS_QUERY))

    def close(self) -> None:
        """Close the connection."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None
