"""SQLite store: the embedded default. One file per department, WAL, synchronous=FULL."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from consumers.runtime.errors import TransientError
from consumers.runtime.store import (
    OFFSETS_QUERY,
    OUTCOME_COUNTS_QUERY,
    RUNTIME_COLUMNS_ADDED,
    RUNTIME_SCHEMA,
    Params,
    Row,
    Transaction,
    counts_from,
    offsets_from,
)

__all__ = ["SqliteStore", "SqliteTransaction"]


@contextmanager
def _busy_is_transient() -> Iterator[None]:
    """'database is locked' (another writer held it past the timeout) passes: the runtime retries the batch."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise TransientError(f"SQLite database busy: {exc}") from exc
        raise


class SqliteTransaction(Transaction):
    """A transaction on a SQLite connection."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection
        self._savepoints = 0

    def execute(self, sql: str, params: Params = ()) -> list[Row]:
        """Run one statement and return its rows as tuples."""
        with _busy_is_transient():
            return self._connection.execute(sql, params).fetchall()

    def execute_many(self, sql: str, rows: Sequence[Params]) -> None:
        """Run one statement for many parameter rows."""
        self._connection.executemany(sql, rows)

    def secondary_indexes(self, table: str) -> list[tuple[str, str]]:
        """The table's own indexes (SQLite's automatic ones, for keys, have no SQL and stay)."""
        rows = self._connection.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL", (table,)
        )
        return [(str(name), str(statement)) for name, statement in rows]

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """SAVEPOINT / ROLLBACK TO / RELEASE around the block."""
        self._savepoints += 1
        name = f"sp{self._savepoints}"
        self._connection.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self._rolled_back_to_savepoint()
            self._connection.execute(f"ROLLBACK TO SAVEPOINT {name}")
            self._connection.execute(f"RELEASE SAVEPOINT {name}")
            raise
        else:
            self._connection.execute(f"RELEASE SAVEPOINT {name}")


class SqliteStore:
    """A department's SQLite database, opened with durable settings (WAL, synchronous=FULL)."""

    def __init__(self, path: Path, department_schema: str = "") -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._connection = sqlite3.connect(path, isolation_level=None, timeout=30.0, check_same_thread=False)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=FULL")
        self._connection.execute("PRAGMA foreign_keys=ON")
        self._connection.executescript(RUNTIME_SCHEMA + department_schema)
        self._add_runtime_columns()

    def _add_runtime_columns(self) -> None:
        """Bring a database created by an older version up to the runtime tables' current columns."""
        for table, column, kind in RUNTIME_COLUMNS_ADDED:
            present = {str(row[1]) for row in self._connection.execute(f"PRAGMA table_info({table})")}
            if column not in present:
                self._connection.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """BEGIN IMMEDIATE .. COMMIT, rolled back if the block raises."""
        with _busy_is_transient():
            self._connection.execute("BEGIN IMMEDIATE")
        try:
            yield SqliteTransaction(self._connection)
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        else:
            self._connection.execute("COMMIT")

    def read(self) -> Transaction:
        """A handle for read-only queries outside a write transaction."""
        return SqliteTransaction(self._connection)

    def stored_offsets(self) -> dict[tuple[str, int], int]:
        """Next offset to read per (topic, partition)."""
        return offsets_from(self._connection.execute(OFFSETS_QUERY).fetchall())

    def outcome_counts(self) -> dict[tuple[str, str], int]:
        """Events per (event type, outcome)."""
        return counts_from(self._connection.execute(OUTCOME_COUNTS_QUERY).fetchall())

    def close(self) -> None:
        """Close the connection."""
        self._connection.close()
