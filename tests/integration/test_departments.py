"""The five departments on the real broker, through the real consumer: agreements enforced where events are
dispatched, reactions applied once; and after a simulated population of 10,000 registrations is published and
consumed, a letters run in every department addresses nobody the simulation says is dead."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from civreg.settings import Settings
from consumers import dvla
from consumers.departments import CORRESPONDENCE, DEPARTMENTS
from consumers.kit.customer_records import RecordTable, load_customer_records
from consumers.kit.letters import run_letters
from consumers.kit.life_events import Partnership, Snapshot
from consumers.operations.running import open_store, run_department
from consumers.runtime import BatchReport
from producers.customer_records import RecordKind, simulate_customer_records
from producers.publisher import Publisher
from producers.simulation import simulate_population
from schemas.models import Event
from tests.support.customer_rows import row
from tests.support.factories import make_birth, make_death, make_marriage, make_person, make_void

pytestmark = pytest.mark.kafka


def publish(settings: Settings, events: Iterable[Event]) -> None:
    with Publisher(settings) as publisher:
        for event in events:
            publisher.publish(event)


def consume(settings: Settings, department: str) -> BatchReport:
    return run_department(settings, department, until_caught_up=True, handle_signals=False)


def load(settings: Settings, department: str, rows: Iterable[dict[str, str]]) -> None:
    store = open_store(settings, department)
    try:
        load_customer_records(store, DEPARTMENTS[department], rows)
    finally:
        store.close()


def test_departments_apply_what_their_agreements_allow_through_the_real_consumer(
    bus_store_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = bus_store_settings
    sarah = {"given_names": "Sarah Jane", "date_of_birth": "1994-06-01", "nino": "SM123456A"}
    load(settings, "tax", [row("tax", "T1"), row("tax", "T2", **sarah)])
    emily = row("dvla", "D1", given_names="Emily", family_name="Clarke", date_of_birth="1990-05-17")
    load(settings, "dvla", [emily])
    seen: list[Partnership] = []
    original = dvla.rules.life._apply["partnership"]

    def spy(records: Any, record_id: str, union: Partnership) -> Snapshot:
        seen.append(union)
        return original(records, record_id, union)

    monkeypatch.setitem(dvla.rules.life._apply, "partnership", spy)

    death = make_death()
    mother = make_person("Sarah Jane", "Morgan", date(1994, 6, 1), nino="SM123456A")
    stillbirth = make_birth(entry_number=2, stillbirth=True, mother=mother)
    birth = make_birth(entry_number=3, mother=mother)
    publish(settings, [death, stillbirth, birth, make_marriage(), make_void(of=death)])

    tax_report = consume(settings, "tax")
    assert tax_report.withheld == {("BirthRegistered", "stillbirth"): 1}
    assert tax_report.outcomes == {
        ("DeathRegistered", "applied"): 1,
        ("BirthRegistered", "applied"): 1,
        ("MarriageRegistered", "no_matching_record"): 1,
        ("RegistrationVoided", "applied"): 1,
    }
    store = open_store(settings, "tax")
    try:
        taxpayers = RecordTable(store.read(), "taxpayers", "taxpayer_id")
        assert taxpayers.fields("T1", "status", "sa_reminders") == {"status": "live", "sa_reminders": "on"}
        invited = store.read().execute("SELECT taxpayer_id, status FROM child_benefit_invitations")
        assert [tuple(r) for r in invited] == [("T2", "due")]  # the live birth; none for the stillbirth
        recorded = {str(r[0]) for r in store.read().execute("SELECT event_id FROM civreg_event_outcomes")}
        assert str(stillbirth.event_id) not in recorded  # withheld: not an outcome
    finally:
        store.close()

    dvla_report = consume(settings, "dvla")
    assert dvla_report.withheld == {}
    assert dvla_report.outcomes[("MarriageRegistered", "applied")] == 1
    [union] = seen
    assert union.partner.occupation is None  # DVLA needs no occupations: removed before its rule ran
    assert union.partner.person.identifiers.nino is None
    assert union.new_surname == "Hughes"


def test_after_ten_thousand_registrations_no_department_writes_to_the_dead(
    bus_store_settings: Settings, tmp_path: Path
) -> None:
    bus_settings = bus_store_settings  # SQLite and PostgreSQL
    population = simulate_population(10_000, seed=1953)
    people = {person.person_id: person for person in population.people}
    truth: dict[str, dict[str, str]] = {}
    for name in CORRESPONDENCE:
        records = simulate_customer_records(population, name, seed=1953)
        truth[name] = {record.row["record_id"]: record.person_id for record in records}
        assert any(record.kind is RecordKind.MOVED for record in records)
        load(bus_settings, name, (record.row for record in records))
    publish(bus_settings, population.events)

    for name in DEPARTMENTS:
        report = consume(bus_settings, name)
        received = sum(report.outcomes.values()) + sum(report.withheld.values()) + report.duplicates
        assert received == report.messages, name
        assert report.dead_letters == 0, name
        if name != "suppression":
            assert report.outcomes[("DeathRegistered", "applied")] > 0, name
            assert report.outcomes[("DeathRegistered", "needs_review")] > 0, name
            assert report.outcomes[("DeathRegistered", "no_matching_record")] > 0, name

    suppression = open_store(bus_settings, "suppression")
    try:
        for name, letters_due in CORRESPONDENCE.items():
            store = open_store(bus_settings, name)
            out, report_path = tmp_path / f"{name}-letters.csv", tmp_path / f"{name}-held.csv"
            try:
                run = run_letters(
                    DEPARTMENTS[name],
                    letters_due,
                    store,
                    suppression,
                    first_day=population.start,
                    days=366,
                    out=out,
                    report=report_path,
                )
            finally:
                store.close()
            with out.open(newline="", encoding="utf-8") as handle:
                sent = [letter["record_id"] for letter in csv.DictReader(handle)]
            assert sent, name
            addressed_to_the_dead = [
                record_id
                for record_id in sent
                if truth[name][record_id] in people and people[truth[name][record_id]].is_deceased
            ]
            assert addressed_to_the_dead == [], name
            assert run.held, name
            wrongly_held = [
                letter.record_id
                for letter in run.held
                if letter.held_by == "department records"
                and not (truth[name][letter.record_id] in people and people[truth[name][letter.record_id]].is_deceased)
            ]
            assert wrongly_held == [], name  # a voided death restored everything: their letters go again
    finally:
        suppression.close()
