"""What the runtime needs of a department's database, whichever engine it is (SQLite by default, PostgreSQL).

Keeping offsets in the same database as the effects is what makes a crash at any instant harmless: one
transaction holds an event's effects, its outcome (keyed by event id, so a redelivery applies nothing) and the
next offset to read, and on restart the consumer seeks to the offsets stored there, not the group's.

Department SQL is written once for both engines: ``?`` placeholders, ``INSERT ... ON CONFLICT``, types both
understand (TEXT, INTEGER, BIGINT), partial indexes. ``execute`` gives rows as tuples; ``select`` gives them by
column name with typed reads (``NamedRow``), which is what department code uses.
"""

from __future__ import annotations

import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import polars as pl

__all__ = ["RUNTIME_COLUMNS_ADDED", "RUNTIME_SCHEMA", "NamedRow", "Row", "StatementError", "Store", "Transaction"]

Row = Sequence[Any]
Params = Sequence[Any]

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
    "offset"      BIGINT NOT NULL,
    processed_at  TEXT NOT NULL,
    content_digest TEXT
);
CREATE INDEX IF NOT EXISTS civreg_event_outcomes_entry_version ON civreg_event_outcomes (entry_key, version);
CREATE TABLE IF NOT EXISTS civreg_undecodable_messages (
    topic            TEXT NOT NULL,
    partition        INTEGER NOT NULL,
    "offset"         BIGINT NOT NULL,
    reason           TEXT NOT NULL,
    error_class      TEXT NOT NULL,
    dead_lettered_at TEXT NOT NULL,
    PRIMARY KEY (topic, partition, "offset")
);
CREATE TABLE IF NOT EXISTS civreg_review_queue (
    event_id         TEXT PRIMARY KEY,
    event_type       TEXT NOT NULL,
    entry_key        TEXT NOT NULL,
    note             TEXT NOT NULL,
    candidates       TEXT NOT NULL,
    event_json       TEXT NOT NULL,
    status           TEXT NOT NULL,
    resolution       TEXT,
    resolved_record  TEXT,
    resolved_by      TEXT,
    queued_at        TEXT NOT NULL,
    resolved_at      TEXT
);
CREATE TABLE IF NOT EXISTS civreg_offsets (
    topic        TEXT NOT NULL,
    partition    INTEGER NOT NULL,
    next_offset  BIGINT NOT NULL,
    PRIMARY KEY (topic, partition)
);
CREATE TABLE IF NOT EXISTS civreg_unacknowledged (
    event_id  TEXT PRIMARY KEY,
    token     TEXT NOT NULL
);
"""

RUNTIME_COLUMNS_ADDED: tuple[tuple[str, str, str], ...] = (("civreg_event_outcomes", "content_digest", "TEXT"),)
"""(table, column, type) added to the runtime tables since they were first created: each store adds them to an
existing database at open (rows recorded before have NULL there)."""


class StatementError(Exception):
    """A statement the database rejected (constraint, type, syntax), named without row values.

    In a pipelined block (``Transaction.pipelined``) a write's error may surface at a later statement, in another
    event of the batch or after the last one: the runtime then runs the batch again unpipelined, a savepoint per
    event, so that the error is the failing event's own.
    """


class NamedRow(Mapping[str, Any]):
    """One row by column name, with typed reads: rules and kits never index a row by position nor cast by hand."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)

    def __getitem__(self, column: str) -> Any:
        return self._values[column]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def text(self, column: str) -> str:
        """A column that is never NULL, as text."""
        return str(self._values[column])

    def optional_text(self, column: str) -> str | None:
        """A column that may be NULL, as text."""
        value = self._values[column]
        return None if value is None else str(value)

    def integer(self, column: str) -> int:
        """A whole-number column (SQLite and PostgreSQL both give int; a flag is 0 or 1)."""
        return int(self._values[column])

    def day(self, column: str) -> date:
        """A date column (stored as ISO text)."""
        return date.fromisoformat(str(self._values[column]))

    def optional_day(self, column: str) -> date | None:
        """A date column that may be NULL."""
        value = self._values[column]
        return None if value is None else date.fromisoformat(str(value))


def now_iso() -> str:
    """The current UTC time as ISO 8601 text (stored the same way in both engines)."""
    return datetime.now(UTC).isoformat()


_SLICE_ROWS = 50_000
"""Rows per slice of a set-based insert: large enough to amortise, small enough not to hold a file in tuples."""

_CHUNK = 400
"""Ids per ``IN (...)`` list: well inside SQLite's parameter limit (999 on old builds) and PostgreSQL's."""

_RECORD_OUTCOME = (
    "INSERT INTO civreg_event_outcomes (event_id, event_type, entry_key, version, outcome, note, topic, "
    'partition, "offset", processed_at, content_digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) '
    "ON CONFLICT (event_id) DO UPDATE SET outcome = excluded.outcome, note = excluded.note, "
    'topic = excluded.topic, partition = excluded.partition, "offset" = excluded."offset", '
    "processed_at = excluded.processed_at, content_digest = excluded.content_digest"
)
_QUEUE_ACKNOWLEDGEMENT = (
    "INSERT INTO civreg_unacknowledged VALUES (?, ?) ON CONFLICT (event_id) DO UPDATE SET token = excluded.token"
)
_SAVE_OFFSET = (
    "INSERT INTO civreg_offsets VALUES (?, ?, ?) "
    "ON CONFLICT (topic, partition) DO UPDATE SET next_offset = CASE "
    "WHEN excluded.next_offset > civreg_offsets.next_offset THEN excluded.next_offset "
    "ELSE civreg_offsets.next_offset END"
)


class _BatchIndex:
    """What the outcome table says about one batch's event ids and entries, read in one query and kept current.

    Every outcome the batch records goes through ``record``, so the index answers for later events of the same
    batch exactly as the table would; the rows themselves are written together by ``Transaction.flush``.
    """

    def __init__(self) -> None:
        self.event_ids: set[str] = set()
        self.entries: set[str] = set()
        self.outcomes: dict[str, str] = {}
        self.holders: dict[tuple[str, int], list[tuple[str, str | None, str]]] = {}
        self.outcome_rows: list[Params] = []
        self.acknowledgement_rows: list[Params] = []

    def record(self, event_id: str, entry_key: str, version: int, outcome: str, digest: str | None) -> None:
        self.outcomes[event_id] = outcome
        held = [holder for holder in self.holders.get((entry_key, version), []) if holder[0] != event_id]
        held.append((event_id, digest, outcome))  # the newest processed_at: last in the table's order
        self.holders[(entry_key, version)] = held
        self.event_ids.add(event_id)


def _literal(value: Any) -> str | None:
    """``value`` as an SQL literal, or None when it is not a plain text, whole number or null."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and "\x00" not in value:
        return "'" + value.replace("'", "''") + "'"
    return None


class Transaction(ABC):
    """One open transaction: what handlers (through their department's records) and the runtime write with."""

    _batch: _BatchIndex | None = None
    _memos: dict[str, dict[str, Any]] | None = None

    @abstractmethod
    def execute(self, sql: str, params: Params = ()) -> list[Row]:
        """Run one statement with ``?`` placeholders and return its rows (empty for statements without rows)."""

    @abstractmethod
    def execute_many(self, sql: str, rows: Sequence[Params]) -> None:
        """Run one statement for many parameter rows."""

    @abstractmethod
    def savepoint(self) -> AbstractContextManager[None]:
        """Undo only this block's writes if it raises (one event's effects, not the whole batch's)."""

    def pipelined(self) -> AbstractContextManager[None]:
        """Within this block, a statement that returns no rows need not wait for its result (round trips saved).

        Its error, if any, surfaces as a ``StatementError`` (or ``TransientError``) at a later statement or when
        the block ends, so only code that rolls the whole transaction back on any error may use it: the runtime's
        batch without savepoints. No savepoint or COPY inside. SQLite runs in-process and has nothing to save.
        """
        return nullcontext()

    def insert_frame(self, table: str, frame: pl.DataFrame) -> None:
        """Insert every row of ``frame`` (columns named as the table's) as one set-based write.

        SQLite: ``executemany`` a slice at a time (one prepared statement, rows never all in Python at once);
        PostgreSQL overrides it with ``COPY``. ``table`` and the column names are the caller's constants.
        """
        import polars as pl  # only a bulk load needs it; consumers start without it

        if frame.is_empty():
            return
        # A column with one value in every row (a status every loaded record starts with) is written once in the
        # statement, not bound a million times.
        same = frame.select(pl.all().n_unique()).row(0, named=True) if frame.height > 1 else {}
        literals = {column: _literal(frame[column][0]) for column, count in same.items() if count == 1}
        fixed = {column: literal for column, literal in literals.items() if literal is not None}
        bound = [column for column in frame.columns if column not in fixed]
        values = ", ".join(fixed.get(column, "?") for column in frame.columns)
        statement = f"INSERT INTO {table} ({', '.join(frame.columns)}) VALUES ({values})"  # noqa: S608
        for part in frame.select(bound).iter_slices(_SLICE_ROWS):
            self.execute_many(statement, part.rows())

    def secondary_indexes(self, table: str) -> list[tuple[str, str]]:
        """``(name, CREATE INDEX statement)`` of each index on ``table`` that no constraint needs: a bulk load drops
        them and builds them again after (one sort each instead of a million scattered inserts)."""
        return []

    def one(self, sql: str, params: Params = ()) -> Row | None:
        """The first row of a query, or None."""
        rows = self.execute(sql, params)
        return rows[0] if rows else None

    def select(self, columns: Sequence[str], rest: str, params: Params = ()) -> list[NamedRow]:
        """``SELECT columns rest`` with each row by column name (``a.x AS y`` is named ``y``, ``a.x`` is ``x``)."""
        names = [column.rsplit(" AS ", 1)[-1].rsplit(".", 1)[-1].strip() for column in columns]
        rows = self.execute(f"SELECT {', '.join(columns)} {rest}", params)
        return [NamedRow(dict(zip(names, row, strict=True))) for row in rows]

    def scalar(self, sql: str, params: Params = ()) -> Any:
        """The first column of the first row, or None."""
        row = self.one(sql, params)
        return None if row is None else row[0]

    # Runtime bookkeeping -----------------------------------------------------------------------------------

    def preload(self, event_ids: Sequence[str], entry_keys: Sequence[str]) -> None:
        """Read, in one query per few hundred ids, the outcomes and entry-version holders a batch will ask about.

        From here on ``outcome_of`` and ``version_holders`` answer from memory for these ids and entries, and
        ``record_outcome`` queues its rows until ``flush`` (the runtime flushes before storing the offsets).
        """
        self._claim_outcomes()
        index = _BatchIndex()
        ids, keys = sorted(set(event_ids)), sorted(set(entry_keys))
        found: dict[str, Row] = {}  # by event id: a row may match an id in one chunk and an entry in another
        for start in range(0, max(len(ids), len(keys)), _CHUNK):
            some_ids, some_keys = ids[start : start + _CHUNK], keys[start : start + _CHUNK]
            where = " OR ".join(
                clause
                for clause, values in (
                    (f"event_id IN ({', '.join('?' for _ in some_ids)})", some_ids),
                    (f"entry_key IN ({', '.join('?' for _ in some_keys)})", some_keys),
                )
                if values
            )
            for row in self.execute(
                "SELECT event_id, entry_key, version, outcome, content_digest, processed_at "  # noqa: S608
                f"FROM civreg_event_outcomes WHERE {where}",
                (*some_ids, *some_keys),
            ):
                found[str(row[0])] = row
        wanted = set(keys)
        for row in sorted(found.values(), key=lambda row: (str(row[5]), str(row[0]))):  # the table's order
            event_id, entry_key, version, outcome = str(row[0]), str(row[1]), int(row[2]), str(row[3])
            index.outcomes[event_id] = outcome
            if entry_key in wanted:
                digest = None if row[4] is None else str(row[4])
                index.holders.setdefault((entry_key, version), []).append((event_id, digest, outcome))
        index.event_ids.update(ids)
        index.event_ids.update(found)  # their outcomes are known too (a re-sent copy asks for its first's)
        index.entries.update(keys)
        self._batch = index
        self._memos = {}

    def batch_entry_keys(self) -> frozenset[str]:
        """The entry keys of the batch being applied (given to ``preload``); empty outside a batch."""
        return frozenset(self._batch.entries) if self._batch is not None else frozenset()

    def batch_memo(self, name: str) -> dict[str, Any] | None:
        """A dict, one per ``name``, in which a kit may mirror its own tables for the batch being applied.

        Why: a kit asked the same question for every event (``consumers.kit.life_events.EntryLog``) can read the
        answers for the whole batch in one query and keep them current as it writes, instead of a round trip per
        event. It exists from ``preload`` to the end of the transaction, and None is the answer (read the tables)
        outside a batch and for the rest of the batch once a savepoint has rolled back: the mirror would still
        hold what the rollback undid. The kit must make every write to what it mirrors through itself.
        """
        if self._memos is None:
            return None
        return self._memos.setdefault(name, {})

    def _rolled_back_to_savepoint(self) -> None:
        """A savepoint's writes were undone: forget every batch memo (they may hold them)."""
        self._memos = None

    def _claim_outcomes(self) -> None:
        """Lock the outcome table for writing before the batch's first statement, where the engine needs it."""
        return  # SQLite: one writer at a time already

    def flush(self) -> None:
        """Write the outcome and acknowledgement rows queued since ``preload`` (one ``execute_many`` each)."""
        index = self._batch
        if index is None:
            return
        if index.outcome_rows:
            self.execute_many(_RECORD_OUTCOME, index.outcome_rows)
            index.outcome_rows = []
        if index.acknowledgement_rows:
            self.execute_many(_QUEUE_ACKNOWLEDGEMENT, index.acknowledgement_rows)
            index.acknowledgement_rows = []

    def outcome_of(self, event_id: str) -> str | None:
        """The outcome already recorded for ``event_id``, or None if this department has not seen it."""
        if self._batch is not None:
            if event_id in self._batch.event_ids:
                return self._batch.outcomes.get(event_id)
            self.flush()  # not preloaded: the table must hold what this batch recorded before it is asked
        outcome = self.scalar("SELECT outcome FROM civreg_event_outcomes WHERE event_id = ?", (event_id,))
        return None if outcome is None else str(outcome)

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
        content_digest: str | None = None,
    ) -> None:
        """Record the one outcome of an event (replacing a dead-lettered one when the event is re-driven).

        ``content_digest`` (``consumers.runtime.versions``) is what tells a second event claiming the same entry
        version apart: the same content is a duplicate, other content a conflict.
        """
        row = (
            event_id,
            event_type,
            entry_key,
            version,
            outcome,
            note,
            topic,
            partition,
            offset,
            now_iso(),
            content_digest,
        )
        index = self._batch
        if index is None:
            self.execute(_RECORD_OUTCOME, row)
            self.queue_acknowledgement(event_id)
            return
        index.record(event_id, entry_key, version, outcome, content_digest)
        index.outcome_rows.append(row)
        index.acknowledgement_rows.append((event_id, uuid.uuid4().hex))

    def version_holders(self, entry_key: str, version: int, *, other_than: str) -> list[tuple[str, str | None]]:
        """(event id, content digest) of the other events whose outcome stands for this entry version.

        Dead-lettered events are not counted: they were never applied, and a re-drive is checked again. A digest
        is None for events recorded before digests were kept.
        """
        index = self._batch
        if index is not None and entry_key in index.entries:
            return [
                (held_by, digest)
                for held_by, digest, outcome in index.holders.get((entry_key, version), [])
                if held_by != other_than and outcome != "dead_lettered"
            ]
        self.flush()
        rows = self.execute(
            "SELECT event_id, content_digest FROM civreg_event_outcomes WHERE entry_key = ? AND version = ? "
            "AND event_id <> ? AND outcome <> 'dead_lettered' ORDER BY processed_at, event_id",
            (entry_key, version, other_than),
        )
        return [(str(row[0]), None if row[1] is None else str(row[1])) for row in rows]

    def queue_acknowledgement(self, event_id: str) -> None:
        """Owe an acknowledgement of this event's (new) outcome: an outbox row, published after the commit.

        Being in the same transaction as the outcome is what makes acknowledgements at-least-once: a crash after
        the commit leaves the row, and the next publisher run sends it. A new token marks a newer outcome (a
        review decision), so deleting the row for an older, already published one cannot lose it.
        """
        self.execute(_QUEUE_ACKNOWLEDGEMENT, (event_id, uuid.uuid4().hex))

    def record_undecodable(self, *, topic: str, partition: int, offset: int, reason: str, error_class: str) -> None:
        """Record a message that never became an event (it has gone to the dead-letter topic)."""
        self.execute(
            "INSERT INTO civreg_undecodable_messages VALUES (?, ?, ?, ?, ?, ?) "
            'ON CONFLICT (topic, partition, "offset") DO UPDATE SET reason = excluded.reason',
            (topic, partition, offset, reason, error_class, now_iso()),
        )

    def enqueue_review(
        self, *, event_id: str, event_type: str, entry_key: str, note: str, candidates: Sequence[str], event_json: str
    ) -> None:
        """Queue an event a person must look at (ambiguous or partial match); it keeps the whole event to re-apply."""
        self.execute(
            "INSERT INTO civreg_review_queue VALUES (?, ?, ?, ?, ?, ?, 'open', NULL, NULL, NULL, ?, NULL)",
            (event_id, event_type, entry_key, note, json.dumps(list(candidates)), event_json, now_iso()),
        )

    def save_offset(self, topic: str, partition: int, next_offset: int) -> None:
        """Store the next offset to read, in the same transaction as the effects."""
        # Never backwards: a consumer that lost its partitions (a zombie) must not rewind its successor's progress.
        self.execute(_SAVE_OFFSET, (topic, partition, next_offset))

    def save_offsets(self, next_offsets: Mapping[tuple[str, int], int]) -> None:
        """``save_offset`` for every partition of a batch in one ``execute_many``."""
        rows = [(topic, partition, offset) for (topic, partition), offset in next_offsets.items()]
        self.execute_many(_SAVE_OFFSET, rows)


class Store(Protocol):
    """A department's database as the runtime and the CLI use it."""

    def transaction(self) -> AbstractContextManager[Transaction]:
        """A write transaction: committed when the block ends, rolled back if it raises."""
        ...

    def read(self) -> Transaction:
        """A handle for read-only queries outside a write transaction (CLI lookups, reports)."""
        ...

    def stored_offsets(self) -> dict[tuple[str, int], int]:
        """Next offset to read per (topic, partition), as committed with the data."""
        ...

    def outcome_counts(self) -> dict[tuple[str, str], int]:
        """Events per (event type, outcome)."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


def offsets_from(rows: Iterator[Row] | list[Row]) -> dict[tuple[str, int], int]:
    """``civreg_offsets`` rows as a mapping."""
    return {(str(row[0]), int(row[1])): int(row[2]) for row in rows}


def counts_from(rows: Iterator[Row] | list[Row]) -> dict[tuple[str, str], int]:
    """Outcome-count rows as a mapping."""
    return {(str(row[0]), str(row[1])): int(row[2]) for row in rows}


OFFSETS_QUERY = "SELECT topic, partition, next_offset FROM civreg_offsets"
OUTCOME_COUNTS_QUERY = "SELECT event_type, outcome, COUNT(*) FROM civreg_event_outcomes GROUP BY event_type, outcome"
