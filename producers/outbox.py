"""The register office's transactional outbox: a registration and the event that announces it, in ONE transaction.

A register office's system writes its own registration rows and an outbox row in the same database transaction;
``civreg relay`` (``producers.relay``) later publishes the outbox rows in order and marks them sent. So an event is
published if and only if its registration committed: a rolled-back registration leaves no row, and a crash after
the commit leaves a row the relay still sends.

    outbox = Outbox.open("postgresql://registrations@db/registrations")   # or a SQLite file path
    with outbox.transaction() as tx:
        tx.execute("INSERT INTO death_entries (...) VALUES (%s, ...)", (...))   # the office's own SQL
        outbox.add(tx, death_registered)                                      # a schemas.models event

``tx.execute`` passes SQL straight to the engine's driver (``?`` placeholders on SQLite, ``%s`` on PostgreSQL);
``tx.connection`` is the driver's connection. ``add`` also accepts a connection the office opened itself, inside a
transaction it controls (``sqlite3.Connection`` or ``psycopg.Connection``), once ``Outbox.open`` created the table.

The table (``civreg_outbox``; DDL below, both engines):

- ``id``: the sequence. The relay publishes unsent rows in ``id`` order; one entry's events (registration,
  corrections, void) go on one partition in that order. Write one entry's events in the order they happened, in
  transactions that commit in that order (a correction's transaction commits after the registration's).
- ``event_id``: unique; adding an event twice is refused (``DuplicateEvent``), and a row published twice (relay
  killed after the broker acknowledged it, before marking it) is skipped by consumers, which de-duplicate by it.
- ``entry_key``, ``register``, ``event_type``: what the row is about, without decoding it (the topic is the
  register's topic under the relay's ``CIVREG_TOPIC_PREFIX``, so rows do not depend on a deployment's topic names).
- ``payload``: the event as JSON (``event_type`` plus the schema's fields), validated by the pydantic models when
  added and again when relayed; encoded to Avro (registry schema ids) only when published.
- ``created_at``, ``sent_at``: when added; when the broker acknowledged it (NULL: not yet).
- ``rejected``: NULL, or why the relay could not publish the row (it no longer validates): a reason an operator
  reads and clears; the row is held (not sent) until then. Never personal data.

Sent rows are kept for audit; ``purge_sent`` deletes those older than a cut-off.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import re
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self, TextIO

import psycopg
from pydantic import ValidationError

from civreg.errors import CivregError
from schemas.models import EVENT_MODELS, Event
from schemas.topics import Register

__all__ = [
    "POSTGRES_DDL",
    "SQLITE_DDL",
    "DuplicateEvent",
    "InvalidOutboxEvent",
    "Outbox",
    "OutboxError",
    "OutboxRow",
    "OutboxTransaction",
    "event_from_payload",
    "event_payload",
]

TABLE = "civreg_outbox"

SQLITE_DDL = """
CREATE TABLE IF NOT EXISTS civreg_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,       -- the sequence; AUTOINCREMENT never reuses an id
    event_id TEXT NOT NULL UNIQUE,              -- UUID text
    entry_key TEXT NOT NULL,                    -- the Kafka key: all of one entry's events on one partition
    register TEXT NOT NULL,                     -- BIRTH | DEATH | MARRIAGE | CIVIL_PARTNERSHIP: decides the topic
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,                      -- the event as JSON
    created_at TEXT NOT NULL,                   -- ISO 8601, UTC
    sent_at TEXT,                               -- NULL until the broker acknowledged it
    rejected TEXT                               -- NULL, or why the relay holds the row
);
CREATE INDEX IF NOT EXISTS civreg_outbox_unsent ON civreg_outbox (id) WHERE sent_at IS NULL;
"""

POSTGRES_DDL = """
CREATE TABLE IF NOT EXISTS civreg_outbox (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id UUID NOT NULL UNIQUE,
    entry_key TEXT NOT NULL,
    register TEXT NOT NULL,
    event_type TEXT NOT NULL,
    payload JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at TIMESTAMPTZ,
    rejected TEXT
);
CREATE INDEX IF NOT EXISTS civreg_outbox_unsent ON civreg_outbox (id) WHERE sent_at IS NULL;
"""

# A PostgreSQL URL or a libpq key=value string ("host=db dbname=registrations"); anything else is a SQLite file.
_POSTGRES_DSN = re.compile(r"^(postgres(ql)?://|\s*(host|hostaddr|dbname|user|port|service)\s*=)", re.IGNORECASE)
_BUSY_TIMEOUT_MS = 30_000
# The relay's PostgreSQL advisory lock: one relay per outbox, so rows go out in one order.
_RELAY_LOCK_KEY = 0x63697672656C6179  # "civrelay"


class OutboxError(CivregError, RuntimeError):
    """The outbox cannot be opened or written; the message says which and why (never a row's personal data)."""


class DuplicateEvent(OutboxError):
    """An event id already in the outbox: adding an event twice would announce one registration twice."""

    def __init__(self, event_id: str) -> None:
        super().__init__(f"event {event_id}: event_id is already in the outbox (each event is added once)")
        self.event_id = event_id


class InvalidOutboxEvent(OutboxError):
    """An event the schema does not accept; names the event id, the field and the rule, never the value."""


def _validation_text(event_id: str, error: ValidationError) -> str:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in detail['loc']) or '(event)'}: {detail['msg']}"
        for detail in error.errors(include_url=False, include_input=False, include_context=False)[:5]
    )
    return f"event {event_id}: {problems}"


def event_payload(event: Event) -> str:
    """The JSON stored for ``event``: ``event_type`` plus its fields as in the schema (the JSONL line format)."""
    return json.dumps({"event_type": event.event_type, **event.model_dump(mode="json")}, ensure_ascii=False)


def event_from_payload(payload: str | Mapping[str, Any], *, event_id: str = "?") -> Event:
    """The event a stored payload holds, validated again; ``InvalidOutboxEvent`` says what is wrong (no values)."""
    data = dict(json.loads(payload) if isinstance(payload, str) else payload)
    event_type = data.pop("event_type", None)
    model = EVENT_MODELS.get(event_type) if isinstance(event_type, str) else None
    if model is None:
        raise InvalidOutboxEvent(f"event {event_id}: event_type: is not a known event type")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidOutboxEvent(_validation_text(event_id, exc)) from None


def _validated(event: Event | Mapping[str, Any]) -> Event:
    """Validate again even an ``Event`` instance: ``model_construct`` or mutation could have bypassed the rules."""
    if isinstance(event, Event):
        return event_from_payload(event_payload(event), event_id=str(event.event_id))
    return event_from_payload(event, event_id=str(event.get("event_id", "?")))


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One unsent row, as the relay reads it."""

    id: int
    event_id: str
    entry_key: str
    register: Register
    event_type: str
    payload: str
    created_at: datetime


class OutboxTransaction:
    """One open transaction on the office's database: run the office's SQL, then ``Outbox.add`` the events."""

    def __init__(self, connection: sqlite3.Connection | psycopg.Connection[Any]) -> None:
        self.connection = connection

    def execute(self, statement: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[tuple[Any, ...]]:
        """Run the office's own SQL in the engine's dialect; returns the rows it produced (if any)."""
        cursor: Any = self.connection.execute(statement, params)
        if cursor.description is None:
            return []
        return [tuple(row) for row in cursor.fetchall()]


class Outbox:
    """The ``civreg_outbox`` table on SQLite or PostgreSQL: the office adds rows, the relay reads and marks them."""

    def __init__(self, connection: sqlite3.Connection | psycopg.Connection[Any], *, where: str) -> None:
        self._connection = connection
        self._postgres = isinstance(connection, psycopg.Connection)
        self.where = where  # for messages: a file path or a host/database, never a password
        self._relay_locked = False
        self._lock_file: TextIO | None = None

    @classmethod
    def open(cls, target: str | Path) -> Self:
        """Open (and create the table in) a PostgreSQL database (a ``postgresql://`` or ``key=value`` DSN) or a
        SQLite file."""
        text = str(target)
        if _POSTGRES_DSN.match(text):
            try:
                connection: Any = psycopg.connect(text, autocommit=True)
            except psycopg.Error as exc:
                raise OutboxError(f"cannot connect to the outbox database: {type(exc).__name__}") from None
            info = connection.info
            outbox = cls(connection, where=f"postgresql {info.host}:{info.port}/{info.dbname}")
            connection.execute("SET synchronous_commit = on")
            with connection.transaction():
                connection.execute("SELECT pg_advisory_xact_lock(%s)", (_RELAY_LOCK_KEY - 1,))  # one CREATE at once
                connection.execute(POSTGRES_DDL)
            return outbox
        path = Path(text)
        if path.parent and not path.parent.exists():
            raise OutboxError(f"outbox {path}: its directory does not exist")
        connection = sqlite3.connect(path, isolation_level=None, timeout=_BUSY_TIMEOUT_MS / 1000)
        connection.execute("PRAGMA journal_mode=WAL")  # the relay reads while the office writes
        connection.execute("PRAGMA synchronous=FULL")  # a committed registration's row survives a power cut
        connection.executescript(SQLITE_DDL)
        return cls(connection, where=str(path))

    @property
    def engine(self) -> str:
        """``postgresql`` or ``sqlite``."""
        return "postgresql" if self._postgres else "sqlite"

    def close(self) -> None:
        """Release the relay lock if held and close the connection (rolls back a transaction still open)."""
        if self._lock_file is not None:
            self._lock_file.close()  # releases the flock
            self._lock_file = None
        if isinstance(self._connection, psycopg.Connection) and self._relay_locked and not self._connection.closed:
            with contextlib.suppress(psycopg.Error):  # the server releases it with the session anyway
                self._connection.execute("SELECT pg_advisory_unlock(%s)", (_RELAY_LOCK_KEY,))
        self._connection.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ---- the office's side --------------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[OutboxTransaction]:
        """One transaction: committed if the block ends normally, rolled back (no row, nothing published) if not."""
        if self._postgres:
            assert isinstance(self._connection, psycopg.Connection)
            with self._connection.transaction():
                yield OutboxTransaction(self._connection)
            return
        assert isinstance(self._connection, sqlite3.Connection)
        self._connection.execute("BEGIN IMMEDIATE")  # take the write lock now: no upgrade deadlock later
        try:
            yield OutboxTransaction(self._connection)
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        self._connection.execute("COMMIT")

    def add(
        self,
        tx: OutboxTransaction | sqlite3.Connection | psycopg.Connection[Any],
        event: Event | Mapping[str, Any],
    ) -> int:
        """Add ``event`` (validated by the schema's models) in the transaction ``tx``; returns its sequence id."""
        valid = _validated(event)
        connection = tx.connection if isinstance(tx, OutboxTransaction) else tx
        event_id = str(valid.event_id)
        row = (
            event_id,
            valid.entry.key,
            valid.family.value,
            valid.event_type,
            event_payload(valid),
            datetime.now(UTC).isoformat(),
        )
        cursor: Any
        try:
            if isinstance(connection, psycopg.Connection):
                if connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE and connection.autocommit:
                    raise OutboxError("Outbox.add needs an open transaction (use outbox.transaction())")
                cursor = connection.execute(
                    "INSERT INTO civreg_outbox (event_id, entry_key, register, event_type, payload, created_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                    row,
                )
            else:
                if connection.isolation_level is None and not connection.in_transaction:
                    raise OutboxError("Outbox.add needs an open transaction (use outbox.transaction())")
                cursor = connection.execute(
                    "INSERT INTO civreg_outbox (event_id, entry_key, register, event_type, payload, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                    row,
                )
        except (sqlite3.IntegrityError, psycopg.errors.UniqueViolation):
            raise DuplicateEvent(event_id) from None
        fetched = cursor.fetchone()
        assert fetched is not None
        return int(fetched[0])

    # ---- the relay's side ---------------------------------------------------------------------------------

    def unsent(self, limit: int) -> list[OutboxRow]:
        """Up to ``limit`` rows not yet sent (and not held as rejected), oldest sequence first."""
        rows = self._connection.execute(
            self._sql(
                "SELECT id, event_id, entry_key, register, event_type, payload, created_at FROM civreg_outbox"
                " WHERE sent_at IS NULL AND rejected IS NULL ORDER BY id LIMIT ?"
            ),
            (limit,),
        ).fetchall()
        return [
            OutboxRow(
                id=int(r[0]),
                event_id=str(r[1]),
                entry_key=str(r[2]),
                register=Register(str(r[3])),
                event_type=str(r[4]),
                payload=r[5] if isinstance(r[5], str) else json.dumps(r[5]),
                created_at=_aware(r[6]),
            )
            for r in rows
        ]

    def mark_sent(self, ids: Sequence[int]) -> None:
        """Record that the broker acknowledged these rows (one transaction)."""
        if not ids:
            return
        now = datetime.now(UTC)
        statement = self._sql("UPDATE civreg_outbox SET sent_at = ? WHERE id = ? AND sent_at IS NULL")
        params = [(now if self._postgres else now.isoformat(), i) for i in ids]
        with self._write() as connection:
            connection.cursor().executemany(statement, params)

    def reject(self, row_id: int, reason: str) -> None:
        """Hold a row the relay cannot publish, with the reason (no values) for an operator."""
        with self._write() as connection:
            connection.execute(self._sql("UPDATE civreg_outbox SET rejected = ? WHERE id = ?"), (reason[:500], row_id))

    def backlog(self) -> tuple[int, datetime | None]:
        """Rows not yet sent (rejected ones included), and when the oldest of them was added."""
        row = self._connection.execute(
            "SELECT COUNT(*), MIN(created_at) FROM civreg_outbox WHERE sent_at IS NULL"
        ).fetchone()
        assert row is not None
        return int(row[0]), (_aware(row[1]) if row[1] is not None else None)

    def rejected_count(self) -> int:
        """Rows held because they no longer validate."""
        row = self._connection.execute(
            "SELECT COUNT(*) FROM civreg_outbox WHERE sent_at IS NULL AND rejected IS NOT NULL"
        ).fetchone()
        assert row is not None
        return int(row[0])

    def purge_sent(self, older_than: datetime) -> int:
        """Delete rows sent before ``older_than``; returns how many."""
        with self._write() as connection:
            cursor = connection.execute(
                self._sql("DELETE FROM civreg_outbox WHERE sent_at IS NOT NULL AND sent_at < ?"),
                (older_than if self._postgres else older_than.astimezone(UTC).isoformat(),),
            )
            return int(cursor.rowcount)

    def ping(self) -> None:
        """Raise if the database does not answer."""
        self._connection.execute("SELECT 1").fetchone()

    def try_lock_relay(self) -> bool:
        """Take the one-relay-per-outbox lock (PostgreSQL: a session advisory lock; SQLite: a lock file)."""
        if self._postgres:
            if not self._relay_locked:
                row = self._connection.execute("SELECT pg_try_advisory_lock(%s)", (_RELAY_LOCK_KEY,)).fetchone()
                self._relay_locked = bool(row and row[0])
            return self._relay_locked
        if self._lock_file is not None:
            return True
        handle = Path(f"{self.where}.relay-lock").open("a")  # noqa: SIM115 - held open for the relay's lifetime
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._lock_file = handle
        return True

    # ---- internals ----------------------------------------------------------------------------------------

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self._postgres else statement

    @contextmanager
    def _write(self) -> Iterator[Any]:
        if isinstance(self._connection, psycopg.Connection):
            with self._connection.transaction():
                yield self._connection
            return
        self._connection.execute("BEGIN IMMEDIATE")
        try:
            yield self._connection
        except BaseException:
            self._connection.execute("ROLLBACK")
            raise
        self._connection.execute("COMMIT")


def _aware(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
