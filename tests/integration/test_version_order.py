"""Every order of an entry's versions converges to the state of version order, in all six departments, both engines.

Property: take one entry's history (registration v1, corrections v2..n, perhaps a void last) and deliver it through
the runtime's apply path (``consumers.runtime.dispatch``, no Kafka) in some order; the department's tables end as
they do when the same events arrive in version order. History rows (the suppression log, undone links, withdrawn
invitations, voided listings) and timestamps are not state: what a department acts on is.

Each example opens fresh stores (a new SQLite file, or a new PostgreSQL schema in the test's database), so
hypothesis's function-scoped fixture check is suppressed on purpose.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from civreg.settings import Settings
from consumers.departments import DEPARTMENTS
from consumers.kit.customer_records import load_customer_records
from consumers.runtime import Department, SqliteStore, Store
from consumers.runtime.agreements import agreement_for
from consumers.runtime.dispatch import EventFailed, dispatch
from consumers.runtime.postgres_store import PostgresStore
from consumers.runtime.store import StatementError
from schemas.models import Event, Identifiers, MaritalStatus, Register
from tests.support.customer_rows import row
from tests.support.factories import (
    make_address,
    make_birth,
    make_correction,
    make_death,
    make_marriage,
    make_partner,
    make_person,
    make_void,
)

Change = Callable[[Event], dict[str, Any]]
"""A correction, as the changed fields of the entry's details (built from the registration)."""

ANN = make_person("Ann", "Morgan", date(1950, 1, 1), identifiers=Identifiers())
EMILY = make_person("Emily", "Clarke", date(1990, 5, 17), identifiers=Identifiers())
SOPHIE = make_person("Sophie", "Hughes", date(1995, 2, 14), identifiers=Identifiers())

DEATH_CORRECTIONS: list[Change] = [
    lambda _: {"date_of_death": date(2024, 3, 8)},
    lambda _: {"place_of_death": "St James's University Hospital, Leeds"},
    lambda _: {"deceased": ANN},  # the entry now names someone else the department holds
    lambda _: {"deceased": make_person(identifiers=Identifiers())},  # matched by name, birth and postcode only
    lambda _: {"deceased": make_person(identifiers=Identifiers(), address=make_address(postcode="LS6 2AB"))},
]
MARRIAGE_CORRECTIONS: list[Change] = [
    lambda _: {"date_of_marriage": date(2024, 3, 2)},
    lambda event: {"party_1": make_partner(EMILY, MaritalStatus.SINGLE, surname_after="Clarke-Hughes")},
    lambda event: {"party_1": make_partner(EMILY, MaritalStatus.SINGLE, surname_after=None)},
    lambda event: {"party_1": make_partner(ANN, MaritalStatus.WIDOWED, surname_after="Hughes")},
]
BIRTH_CORRECTIONS: list[Change] = [
    lambda _: {"place_of_birth": "St James's University Hospital, Leeds"},
    lambda _: {"child": make_person("Olivia Rose", "Morgan", date(2024, 3, 1), identifiers=Identifiers())},
    lambda _: {"mother": SOPHIE},  # the entry now names another mother the department holds
    lambda _: {"mother": EMILY.model_copy(update={"address": make_address(postcode="LS6 2AB")})},  # partial match
    lambda _: {"stillbirth": True},  # HMRC receives a withdrawal of the entry instead
    lambda _: {"stillbirth": False},  # and a live birth again after it
]
HISTORIES: dict[Register, tuple[Callable[[], Event], list[Change]]] = {
    Register.DEATH: (make_death, DEATH_CORRECTIONS),
    Register.MARRIAGE: (
        lambda: make_marriage(party_1=make_partner(EMILY, surname_after="Hughes")),
        MARRIAGE_CORRECTIONS,
    ),
    Register.BIRTH: (lambda: make_birth(mother=EMILY), BIRTH_CORRECTIONS),
}
IDENTIFIER_COLUMN = {
    "tax": "nino",
    "pensions": "nino",
    "dvla": "driving_licence_number",
    "passports": "passport_number",
}


def register_rows(department: str) -> list[dict[str, str]]:
    """Margaret (the factories' person, with the department's identifier), Ann at her address, Emily and Sophie."""
    if department == "suppression":
        return []
    blank = {IDENTIFIER_COLUMN[department]: ""} if department in IDENTIFIER_COLUMN else {}
    if department == "dvla":
        blank["vehicles"] = ""
    return [
        row(department, "R1"),
        row(department, "R2", given_names="Ann", date_of_birth="1950-01-01", **blank),
        row(department, "R3", given_names="Emily", family_name="Clarke", date_of_birth="1990-05-17", **blank)
        | ({"marital_status": "SINGLE"} if department in {"tax", "pensions"} else {}),
        row(department, "R4", given_names="Sophie", family_name="Hughes", date_of_birth="1995-02-14", **blank),
    ]


# Stores and state ---------------------------------------------------------------------------------------------

StoreOpener = Callable[[Department[Any]], Store]


@pytest.fixture
def fresh_store(store_backend: Settings, tmp_path: Path) -> Iterator[StoreOpener]:
    """Open a new, empty store for a department on the test's engine, every call (one per hypothesis example)."""
    opened: list[Store] = []

    def open_(department: Department[Any]) -> Store:
        name = uuid.uuid4().hex[:12]
        store: Store
        if store_backend.postgres_dsn is not None:
            dsn = store_backend.postgres_dsn.get_secret_value()
            store = PostgresStore(dsn, f"civreg_{department.name}_{name}", department.schema)
        else:
            store = SqliteStore(tmp_path / f"{department.name}-{name}.sqlite3", department.schema)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


HISTORY_ROWS = {
    "do_not_contact": "status = 'suppressed'",  # a voided listing is kept for audit; it suppresses nothing
    "do_not_contact_history": None,
    "life_event_links": "status = 'applied'",
    "child_benefit_invitations": "status = 'due'",
}

NOT_STATE = {
    # What a record was before the entry, for a void to put back: an undo inside a correction may leave its own
    # mark there (DWP: a recovery started by version 1 and cancelled by version 2 is real history). The records
    # themselves are compared.
    ("life_event_links", "snapshot"),
}


def _columns(store: Store, table: str) -> list[str]:
    if isinstance(store, PostgresStore):
        rows = store.read().execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
            "ORDER BY ordinal_position",
            (store.schema, table),
        )
        return [str(r[0]) for r in rows]
    return [str(r[1]) for r in store.read().execute(f"PRAGMA table_info({table})")]


def department_state(store: Store, department: Department[Any]) -> dict[str, list[tuple[Any, ...]]]:
    """Every department table's rows that state what it acts on, without timestamps, sorted."""
    state: dict[str, list[tuple[Any, ...]]] = {}
    for table in re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", department.schema):
        where = HISTORY_ROWS.get(table, "1 = 1")
        if where is None:
            continue
        columns = [c for c in _columns(store, table) if not c.endswith("_at") and (table, c) not in NOT_STATE]
        rows = store.read().execute(f"SELECT {', '.join(columns)} FROM {table} WHERE {where}")
        state[table] = sorted((tuple(r) for r in rows), key=repr)
    return state


def deliver_all(store: Store, department: Department[Any], events: list[Event]) -> None:
    """Each event in its own batch transaction, through the runtime's apply path."""
    agreement = agreement_for(department.name)
    for offset, event in enumerate(events):
        with store.transaction() as transaction:
            dispatch(department, agreement, transaction, event, topic="test", partition=0, offset=offset)


def deliver_as_one_batch(store: Store, department: Department[Any], events: list[Event]) -> None:
    """Every event in ONE batch transaction, as ``DepartmentConsumer`` applies a batch: outcomes and the entry log
    read once for the whole batch (``preload``, ``EntryLog``'s mirror), pipelined without savepoints, and if an
    event fails, the batch again with a savepoint per event."""
    agreement = agreement_for(department.name)
    for isolated in (False, True):
        try:
            with store.transaction() as transaction, ExitStack() as pipeline:
                if not isolated:
                    pipeline.enter_context(transaction.pipelined())
                transaction.preload([str(e.event_id) for e in events], [e.entry.key for e in events])
                for offset, event in enumerate(events):
                    dispatch(
                        department,
                        agreement,
                        transaction,
                        event,
                        topic="t",
                        partition=0,
                        offset=offset,
                        isolated=isolated,
                    )
                transaction.flush()
            return
        except (EventFailed, StatementError):
            if isolated:
                raise


def outcomes(store: Store) -> list[tuple[Any, ...]]:
    """Each event's outcome and note."""
    return sorted(tuple(r) for r in store.read().execute("SELECT event_id, outcome, note FROM civreg_event_outcomes"))


# The property -------------------------------------------------------------------------------------------------


@st.composite
def histories(draw: st.DrawFn, departments: list[str]) -> tuple[str, list[Event], list[Event]]:
    """(department, events in version order, the same events in a drawn order)."""
    name = draw(st.sampled_from(departments))
    register = draw(st.sampled_from(sorted(r for r in DEPARTMENTS[name].registers if r in HISTORIES)))
    make_registration, corrections = HISTORIES[register]
    registration = make_registration()
    events: list[Event] = [registration]
    for change in draw(st.lists(st.sampled_from(corrections), max_size=4)):
        events.append(make_correction(of=events[-1], **change(registration)))
    if draw(st.booleans()):
        events.append(make_void(of=events[-1]))
    return name, events, draw(st.permutations(events))


PROPERTY = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def converges(fresh_store: StoreOpener, history: tuple[str, list[Event], list[Event]]) -> None:
    name, in_order, arrived = history
    department = DEPARTMENTS[name]
    expected_store, actual_store = fresh_store(department), fresh_store(department)
    for store in (expected_store, actual_store):
        if rows := register_rows(name):
            load_customer_records(store, department, rows)
    try:
        deliver_all(expected_store, department, in_order)
        deliver_all(actual_store, department, arrived)
        assert department_state(actual_store, department) == department_state(expected_store, department)
    finally:  # hundreds of examples: PostgreSQL allows only so many connections
        expected_store.close()
        actual_store.close()


@PROPERTY
@given(history=histories(["suppression"]))
def test_suppression_ends_in_the_version_order_state_whatever_order_versions_arrive_in(
    fresh_store: StoreOpener, history: tuple[str, list[Event], list[Event]]
) -> None:
    converges(fresh_store, history)


def _known(name: str, registration: Event, changes: list[dict[str, Any]], void: bool, order: list[int]) -> Any:
    """An explicit example: the history built from ``changes``, delivered in ``order`` (indexes into it)."""
    events = [registration]
    for change in changes:
        events.append(make_correction(of=events[-1], **change))
    if void:
        events.append(make_void(of=events[-1]))
    return example(history=(name, events, [events[i] for i in order]))


PARTIAL_MARGARET = make_person(identifiers=Identifiers(), address=make_address(postcode="LS6 2AB"))


@_known("tax", make_death(), [{"deceased": PARTIAL_MARGARET}], False, [1, 0])  # a partial match arriving first
@_known("pensions", make_death(), [{"deceased": ANN}], False, [1, 0])  # the recovery version 1 started, cancelled
@_known("pensions", make_death(), [{"deceased": ANN}], True, [2, 0, 1])
@_known("dvla", make_death(), [{"deceased": ANN}, {"deceased": PARTIAL_MARGARET}], False, [0, 2, 1])
@_known("tax", make_birth(mother=EMILY), [{"stillbirth": True}, {"stillbirth": False}], False, [2, 1, 0])
@PROPERTY
@given(history=histories(["dvla", "electoral", "passports", "pensions", "tax"]))
def test_life_event_departments_end_in_the_version_order_state_whatever_order_versions_arrive_in(
    fresh_store: StoreOpener, history: tuple[str, list[Event], list[Event]]
) -> None:
    converges(fresh_store, history)


@_known("tax", make_death(), [{"deceased": PARTIAL_MARGARET}], False, [1, 0])
@_known("pensions", make_death(), [{"deceased": ANN}], True, [2, 0, 1])
@_known("tax", make_birth(mother=EMILY), [{"stillbirth": True}, {"stillbirth": False}], False, [2, 1, 0])
@settings(PROPERTY, max_examples=60)
@given(history=histories(["dvla", "electoral", "passports", "pensions", "tax"]))
def test_an_entrys_versions_in_one_batch_end_as_they_do_one_batch_each(
    fresh_store: StoreOpener, history: tuple[str, list[Event], list[Event]]
) -> None:
    """The batch's mirror of the entry log answers as the tables would: same outcomes, same state."""
    name, _, arrived = history
    department = DEPARTMENTS[name]
    one_each, one_batch = fresh_store(department), fresh_store(department)
    try:
        for store in (one_each, one_batch):
            if rows := register_rows(name):
                load_customer_records(store, department, rows)
        deliver_all(one_each, department, arrived)
        deliver_as_one_batch(one_batch, department, arrived)
        assert outcomes(one_batch) == outcomes(one_each)
        assert department_state(one_batch, department) == department_state(one_each, department)
    finally:
        one_each.close()
        one_batch.close()
