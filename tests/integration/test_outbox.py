"""The register office's outbox on both engines (SQLite and a real PostgreSQL): one transaction for the office's
registration and its event, validated events, one row per event id, one relay per outbox."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from civreg.settings import Settings
from producers.outbox import DuplicateEvent, InvalidOutboxEvent, Outbox, OutboxError, event_from_payload
from tests.support.factories import make_correction, make_death

OFFICE_DDL = "CREATE TABLE IF NOT EXISTS death_entries (entry_key TEXT PRIMARY KEY, family_name TEXT NOT NULL)"


def outbox_target(settings: Settings, tmp_path: Path) -> str:
    """The outbox on ``store_backend``'s engine: its PostgreSQL database, or a SQLite file."""
    if settings.postgres_dsn is not None:
        return settings.postgres_dsn.get_secret_value()
    return str(tmp_path / "registrations.sqlite3")


def _insert(outbox: Outbox) -> str:
    return (
        "INSERT INTO death_entries VALUES (%s, %s)"
        if outbox.engine == "postgresql"
        else ("INSERT INTO death_entries VALUES (?, ?)")
    )


@pytest.fixture
def outbox(store_backend: Settings, tmp_path: Path) -> Any:
    box = Outbox.open(outbox_target(store_backend, tmp_path))
    with box.transaction() as tx:
        tx.execute(OFFICE_DDL)
    yield box
    box.close()


def test_a_committed_registration_and_its_event_are_written_together_a_rolled_back_one_not_at_all(
    outbox: Outbox,
) -> None:
    kept, lost = make_death(entry_number=1), make_death(entry_number=2)
    with outbox.transaction() as tx:
        tx.execute(_insert(outbox), (kept.entry.key, "Okafor"))
        row_id = outbox.add(tx, kept)
    with pytest.raises(RuntimeError, match="registrar cancelled"), outbox.transaction() as tx:
        tx.execute(_insert(outbox), (lost.entry.key, "Smith"))
        outbox.add(tx, lost)
        raise RuntimeError("registrar cancelled")

    with outbox.transaction() as tx:
        assert tx.execute("SELECT entry_key FROM death_entries") == [(kept.entry.key,)]
    [row] = outbox.unsent(10)
    assert (row.id, row.event_id, row.entry_key, row.event_type) == (
        row_id,
        str(kept.event_id),
        kept.entry.key,
        "DeathRegistered",
    )
    assert row.register.value == "DEATH"
    assert event_from_payload(row.payload) == kept
    assert outbox.backlog()[0] == 1


def test_rows_come_in_sequence_order_and_sent_ones_are_not_read_again(outbox: Outbox) -> None:
    death = make_death(entry_number=7)
    events = [death, make_correction(of=death, place_of_death="St James's Hospital"), make_death(entry_number=8)]
    with outbox.transaction() as tx:
        ids = [outbox.add(tx, event) for event in events]
    assert ids == sorted(ids)
    assert [r.event_id for r in outbox.unsent(10)] == [str(e.event_id) for e in events]
    outbox.mark_sent(ids[:2])
    assert [r.event_id for r in outbox.unsent(10)] == [str(events[2].event_id)]
    count, oldest = outbox.backlog()
    assert count == 1 and oldest is not None and oldest <= datetime.now(UTC)
    assert outbox.purge_sent(datetime.now(UTC) + timedelta(seconds=1)) == 2


def test_an_invalid_event_is_refused_naming_the_field_and_rule_not_the_value(outbox: Outbox) -> None:
    data = {"event_type": "DeathRegistered", **make_death().model_dump(mode="json")}
    data["death"]["deceased"]["identifiers"]["nino"] = "ZZ999999Q"
    with pytest.raises(InvalidOutboxEvent) as caught, outbox.transaction() as tx:
        outbox.add(tx, data)
    assert "nino" in str(caught.value) and "ZZ999999Q" not in str(caught.value)
    assert outbox.unsent(10) == []


def test_an_event_id_is_added_once(outbox: Outbox) -> None:
    death = make_death()
    with outbox.transaction() as tx:
        outbox.add(tx, death)
    with pytest.raises(DuplicateEvent, match=str(death.event_id)), outbox.transaction() as tx:
        outbox.add(tx, death)
    assert len(outbox.unsent(10)) == 1


def test_adding_outside_a_transaction_is_refused(outbox: Outbox) -> None:
    with pytest.raises(OutboxError, match="open transaction"):
        outbox.add(outbox._connection, make_death())


def test_the_office_may_use_its_own_connection_and_transaction(store_backend: Settings, tmp_path: Path) -> None:
    target = outbox_target(store_backend, tmp_path)
    Outbox.open(target).close()  # creates the table
    box = Outbox.open(target)
    death = make_death()
    if store_backend.postgres_dsn is not None:
        with psycopg.connect(target) as connection, connection.transaction():
            box.add(connection, death)
    else:
        with sqlite3.connect(target) as connection:  # the context manager commits
            box.add(connection, death)
    assert [r.event_id for r in box.unsent(10)] == [str(death.event_id)]
    box.close()


def test_one_relay_per_outbox(store_backend: Settings, tmp_path: Path) -> None:
    target = outbox_target(store_backend, tmp_path)
    first, second = Outbox.open(target), Outbox.open(target)
    try:
        assert first.try_lock_relay()
        assert not second.try_lock_relay()
        first.close()
        assert second.try_lock_relay()  # the lock goes with the relay's connection
    finally:
        second.close()


def test_a_row_that_no_longer_validates_is_held_as_rejected(outbox: Outbox) -> None:
    death = make_death()
    with outbox.transaction() as tx:
        row_id = outbox.add(tx, death)
    outbox.reject(row_id, "event x: death.deceased: field required")
    assert outbox.unsent(10) == []
    assert outbox.backlog()[0] == 1 and outbox.rejected_count() == 1
