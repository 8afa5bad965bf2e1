"""An entry version claimed twice: the same event again, the same content under a new id, or a conflict.

Through the runtime's apply path (``consumers.runtime.dispatch``) on both engines, with the suppression service.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from uuid import uuid4

import pytest

from civreg.settings import Settings
from consumers import suppression
from consumers.operations.running import open_store
from consumers.runtime import Outcome, Result, SqliteStore, Store
from consumers.runtime.agreements import agreement_for
from consumers.runtime.dispatch import CONFLICTING_ENTRY_VERSION, ConflictingEntryVersion, Dispatched, dispatch
from consumers.suppression import SuppressionList
from schemas.models import Event
from tests.support.factories import make_death, make_void

DEPARTMENT = suppression.department


@pytest.fixture
def store(store_backend: Settings) -> Iterator[Store]:
    opened = open_store(store_backend, DEPARTMENT)
    yield opened
    opened.close()


def send(store: Store, event: Event) -> Dispatched:
    with store.transaction() as transaction:
        return dispatch(
            DEPARTMENT, agreement_for(DEPARTMENT.name), transaction, event, topic="t", partition=0, offset=0
        )


def outcomes(store: Store) -> list[tuple[str, str]]:
    rows = store.read().execute("SELECT event_id, outcome FROM civreg_event_outcomes ORDER BY processed_at")
    return [(str(r[0]), str(r[1])) for r in rows]


def test_the_same_event_again_is_a_duplicate(store: Store) -> None:
    death = make_death()
    assert send(store, death).result is not None
    again = send(store, death)
    assert (again.result, again.duplicate_of) == (None, str(death.event_id))
    assert outcomes(store) == [(str(death.event_id), "applied")]


def test_the_same_content_under_a_new_event_id_is_a_duplicate_of_the_first(store: Store) -> None:
    death = make_death()
    send(store, death)
    resent = death.model_copy(update={"event_id": uuid4(), "recorded_at": death.recorded_at.replace(hour=17)})
    twin = send(store, resent)
    assert twin.duplicate_of == str(death.event_id)
    # Nothing applied twice, but the new id has its own outcome (so trace and its acknowledgement answer it).
    assert twin.result == Result(Outcome.APPLIED, f"same content as event {death.event_id}")
    assert outcomes(store) == [(str(death.event_id), "applied"), (str(resent.event_id), "applied")]
    assert store.read().scalar("SELECT COUNT(*) FROM do_not_contact_history") == 1
    owed = {str(r[0]) for r in store.read().execute("SELECT event_id FROM civreg_unacknowledged")}
    assert str(resent.event_id) in owed
    # Delivered again, the copy is a redelivery of its own id: nothing new is recorded.
    assert send(store, resent).result is None
    assert len(outcomes(store)) == 2


def test_the_same_content_as_an_event_with_no_matching_record_takes_that_outcome(store: Store) -> None:
    void = make_void(of=make_death())  # nothing listed: no matching record
    first = send(store, void)
    assert first.result is not None and first.result.outcome is Outcome.NO_MATCHING_RECORD
    resent = void.model_copy(update={"event_id": uuid4()})
    twin = send(store, resent)
    assert twin.result == Result(Outcome.NO_MATCHING_RECORD, f"same content as event {void.event_id}")


def test_other_content_for_an_applied_version_is_a_conflict_never_skipped_nor_applied(store: Store) -> None:
    death = make_death()
    send(store, death)
    other = make_death(event_id=uuid4(), date_of_death=date(2024, 3, 1))  # same entry, same version 1
    conflict = send(store, other)
    assert conflict.result is not None and conflict.result.outcome is Outcome.DEAD_LETTERED
    assert conflict.reason == CONFLICTING_ENTRY_VERSION
    assert isinstance(conflict.error, ConflictingEntryVersion)
    assert conflict.result.note.startswith(f"{CONFLICTING_ENTRY_VERSION}: version 1 ")
    assert str(death.event_id) in conflict.result.note  # which event holds the version: ids, never personal data
    assert outcomes(store) == [(str(death.event_id), "applied"), (str(other.event_id), "dead_lettered")]
    listed = store.read().scalar("SELECT date_of_death FROM do_not_contact")
    assert listed == "2024-03-10"  # the first stands; the conflicting one changed nothing
    # Delivered again (or re-driven), it is still a conflict: a person must decide which fact is right.
    assert send(store, other).reason == CONFLICTING_ENTRY_VERSION


def test_a_version_recorded_before_digests_were_kept_cannot_be_proved_the_same_so_it_conflicts(store: Store) -> None:
    death = make_death()
    send(store, death)
    with store.transaction() as transaction:
        transaction.execute("UPDATE civreg_event_outcomes SET content_digest = NULL")
    resent = death.model_copy(update={"event_id": uuid4()})
    assert send(store, resent).reason == CONFLICTING_ENTRY_VERSION


def test_a_dead_lettered_event_holds_no_version(store: Store) -> None:
    death = make_death()
    send(store, death)
    with store.transaction() as transaction:
        transaction.execute("UPDATE civreg_event_outcomes SET outcome = 'dead_lettered'")
    other = make_death(event_id=uuid4(), date_of_death=date(2024, 3, 1))
    applied = send(store, other)
    assert applied.result is not None and applied.result.outcome is Outcome.APPLIED


def test_a_sqlite_database_from_before_digests_gains_the_column_at_open(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as old:
        old.execute(
            "CREATE TABLE civreg_event_outcomes (event_id TEXT PRIMARY KEY, event_type TEXT NOT NULL, "
            "entry_key TEXT NOT NULL, version INTEGER NOT NULL, outcome TEXT NOT NULL, note TEXT NOT NULL, "
            'topic TEXT NOT NULL, partition INTEGER NOT NULL, "offset" BIGINT NOT NULL, processed_at TEXT NOT NULL)'
        )
    store = SqliteStore(path, DEPARTMENT.schema)
    try:
        assert send(store, make_death()).result is not None
        assert store.read().scalar("SELECT COUNT(*) FROM civreg_event_outcomes WHERE content_digest IS NOT NULL") == 1
    finally:
        store.close()


def test_suppression_remembers_a_void_that_arrives_before_its_death(store: Store) -> None:
    death = make_death()
    send(store, make_void(of=death))
    late = send(store, death)
    assert late.result is not None and late.result.outcome is Outcome.NO_MATCHING_RECORD
    exact, _ = SuppressionList(store.read()).find(nino=death.death.deceased.identifiers.nino)
    assert exact is None  # the living person is not suppressed
