"""SQLite store: a department's own tables, its recorded outcomes and its consumed offsets, in one database.

Keeping offsets in the same database as the effects is what makes a crash at any instant harmless: one
transaction holds an event's effects, its outcome (keyed by event id, so a redelivery applies nothing) and the
next offset to read, and on restart the consumer seeks to the offsets stored here, not the group's.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["RUNTIME_SCHEMA", "SqliteStore", "SqliteTransaction"]

RUNTIME_SCHEMA = """
CREATE TABLE IF NOT EXISTS civreg_event_outcomes (
    event_id      TEXT PRIMARY KEY,
    event_type    TEXT NOT NULL,
    entry_key     TEXT NOT NULL,
    version       INTEGER NOT NULL,
    outcome       TEXT NOT NULL,
    note          TEXT NOT NULL,
    topic         TEXT NOT NULL,
    partition     INTEGER NOT NULL,
    "offset"      INTEGER NOT NULL,
    processed_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS civreg_undecodable_messages (
    topic           TEXT NOT NULL,
    partition       INTEGER NOT NULL,
    "offset"        INTEGER NOT NULL,
    reason          TEXT NOT NULL,
    error_class     TEXT NOT NULL,
    dead_lettered_at TEXT NOT NULL,
    PRIMARY KEY (topic, partition, "offset")
);
CREATE TABLE IF NOT EXISTS civreg_offsets (
    topic        TEXT NOT NULL,
    partition    INTEGER NOT NULL,
    next_offset  INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
);
"""

Row = sqlite3.Row


def _now() -> str:
    return datetime.now(UTC).isoformat()


class SqliteTransaction:
    """One open transaction: what handlers (through their department's records) and the runtime write with."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection
        self._savepoints = 0

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Row]:
        """Run one statement (``?`` or ``:name`` placeholders) and return its rows."""
        return self._connection.execute(sql, params).fetchall()

    def execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for many parameter rows."""
        self._connection.executemany(sql, rows)

    def one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Row | None:
        """The first row of a query, or None."""
        row: Row | None = self._connection.execute(sql, params).fetchone()
        return row

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Undo only this block's writes if it raises (one event's effects, not the whole batch's)."""
        self._savepoints += 1
        name = f"sp{self._savepoints}"
        self._connection.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self._connection.execute(f"ROLLBACK TO SAVEPOINT {name}")
            self._connection.execute(f"RELEASE SAVEPOINT {name}")
            raise
        else:
            self._connection.execute(f"RELEASE SAVEPOINT {name}")

    # Runtime bookkeeping -------------------------------------------------------------------------------------

    def outcome_of(self, event_id: str) -> str | None:
        """The outcome already recorded for ``event_id``, or None if this department has not seen it."""
        row = self.one("SELECT outcome FROM civreg_event_outcomes WHERE event_id = ?", (event_id,))
        return None if row is None else str(row[0])

    def record_outcome(
        self,
        *,
        event_id: str,
        event_type: str,
        entry_key: str,
        version: int,
        outcome: str,
        note: str,
        topic: str,
        partition: int,
        offset: int,
    ) -> None:
        """Record the one outcome of an event."""
        self.execute(
            "INSERT INTO civreg_event_outcomes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (event_id, event_type, entry_key, version, outcome, note, topic, partition, offset, _now()),
        )

    def record_undecodable(self, *, topic: str, partition: int, offset: int, reason: str, error_class: str) -> None:
        """Record a message that never became an event (it has gone to the dead-letter topic)."""
        self.execute(
            "INSERT OR REPLACE INTO civreg_undecodable_messages VALUES (?, ?, ?, ?, ?, ?)",
            (topic, partition, offset, reason, error_class, _now()),
        )

    def save_offset(self, topic: str, partition: int, next_offset: int) -> None:
        """Store the next offset to read, in the same transaction as the effects."""
        self.execute(
            "INSERT INTO civreg_offsets VALUES (?, ?, ?) "
            "ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
            (topic, partition, next_offset),
        )


class SqliteStore:
    """A department's SQLite database, opened with durable settings (WAL, synchronous=FULL)."""

    def __init__(self, path: Path, department_schema: str = "") -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._connection = sqlite3.connect(path, isolation_level=None, timeout=30.0, check_same_thread=False)
        self._connection.row_factory = sqlite3.Row
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=FULL")
        self._connection.execute("PRAGMA foreign_keys=ON")
        self._connection.executescript(RUNTIME_SCHEMA + department_schema)

    @contextmanager
    def transaction(self) -> Iterator[SqliteTransaction]:
        """BEGIN IMMEDIATE .. COMMIT, rolled back if the block raises."""
        self._connection.execute("BEGIN IMMEDIATE")
        try:
            yield SqliteTransaction(self._connection)
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        else:
            self._connection.execute("COMMIT")

    def read(self) -> SqliteTransaction:
        """A handle for read-only queries outside a write transaction (CLI lookups, reports)."""
        return SqliteTransaction(self._connection)

    def stored_offsets(self) -> dict[tuple[str, int], int]:
        """Next offset to read per (topic, partition), as committed with the data."""
        rows = self._connection.execute("SELECT topic, partition, next_offset FROM civreg_offsets").fetchall()
        return {(str(row[0]), int(row[1])): int(row[2]) for row in rows}

    def outcome_counts(self) -> dict[tuple[str, str], int]:
        """Events per (event type, outcome): what the department did, for reports and the demo."""
        rows = self._connection.execute(
            "SELECT event_type, outcome, COUNT(*) FROM civreg_event_outcomes GROUP BY event_type, outcome"
        ).fetchall()
        return {(str(row[0]), str(row[1])): int(row[2]) for row in rows}

    def close(self) -> None:
        """Close the connection."""
        self._connection.close()
