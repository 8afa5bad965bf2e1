"""The surviving spouse or civil partner of a death, on a real store, SQLite and PostgreSQL (``store_backend``).

Tax and pensions record the survivor widowed (or surviving civil partner): matched like anyone else, undone by a
void, moved or undone by a correction, queued for a reviewer when ambiguous. The other departments' agreements
withhold the survivor, so nothing of them reaches their rules.
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

import pytest

from civreg.settings import Settings
from consumers import dvla, electoral, passports, pensions, suppression, tax
from consumers.operations.running import open_store
from consumers.runtime import Department, Outcome
from consumers.runtime.agreements import agreement_for
from consumers.runtime.review_queue import open_reviews, resolve_review
from producers.customer_records import RecordKind, simulate_customer_records
from producers.simulation import SimulatedPopulation, simulate_population, simulate_registrations
from schemas.models import (
    DeathDetails,
    DeathRegistered,
    MaritalStatus,
    Register,
    Sex,
    SurvivingPartner,
    SurvivorRelationship,
)
from tests.integration.test_department_rules import Opener, fields, open_department, outcome
from tests.support.customer_rows import row
from tests.support.delivery import deliver, load_rows
from tests.support.factories import make_correction, make_death, make_identifiers, make_person, make_void

__all__ = ["open_department"]  # the fixture, imported so pytest finds it here

WIDOW_NINO = "CE654321A"
# The deceased is Margaret Morgan (the factories' default); her husband John survives her at the same address.
JOHN = {"given_names": "John", "date_of_birth": "1939-06-21", "marital_status": "MARRIED", "nino": WIDOW_NINO}


def john(nino: str | None = WIDOW_NINO, **changes: Any) -> SurvivingPartner:
    person = make_person(
        changes.pop("given_names", "John"),
        "Morgan",
        changes.pop("date_of_birth", date(1939, 6, 21)),
        Sex.MALE,
        identifiers=make_identifiers(nino=nino, nhs_number=None, driving_licence_number=None, passport_number=None),
    )
    relationship = changes.pop("relationship", SurvivorRelationship.SPOUSE)
    assert not changes
    return SurvivingPartner(person=person, relationship=relationship)


def death_survived_by(survivor: SurvivingPartner | None, **changes: Any) -> Any:
    status = MaritalStatus.CIVIL_PARTNER if survivor and survivor.relationship.value == "CIVIL_PARTNER" else None
    death = make_death(marital_status=status or MaritalStatus.MARRIED, **changes)
    return death.model_copy(update={"death": death.death.model_copy(update={"surviving_partner": survivor})})


@pytest.mark.parametrize("department", [tax.department, pensions.department], ids=["tax", "pensions"])
def test_a_death_records_the_survivor_widowed_and_a_void_restores_married(
    open_department: Opener, department: Department[Any]
) -> None:
    name = department.name
    store = open_department(department, row(name, "R1", marital_status="MARRIED"), row(name, "R2", **JOHN))
    death = death_survived_by(john())
    result = deliver(store, department, death)
    assert result is not None
    assert (result.outcome, result.note) == (
        Outcome.APPLIED,
        "deceased: matched by nino; surviving_partner: matched by nino",
    )
    assert fields(store, name, "R2", "marital_status")["marital_status"] == "WIDOWED"

    assert outcome(store, department, death) is Outcome.APPLIED  # redelivered: nothing twice
    assert fields(store, name, "R2", "marital_status")["marital_status"] == "WIDOWED"

    assert outcome(store, department, make_void(of=death)) is Outcome.APPLIED
    assert fields(store, name, "R2", "marital_status")["marital_status"] == "MARRIED"
    assert store.outcome_counts()[("RegistrationVoided", "applied")] == 1


def test_a_surviving_civil_partner_is_matched_by_name_birth_and_postcode(open_department: Opener) -> None:
    store = open_department(tax.department, row("tax", "T2", **{**JOHN, "nino": "", "marital_status": "CIVIL_PARTNER"}))
    death = death_survived_by(john(nino=None, relationship=SurvivorRelationship.CIVIL_PARTNER))
    result = deliver(store, tax.department, death)
    assert result is not None and result.outcome is Outcome.APPLIED
    assert result.note == "deceased: no record matches; surviving_partner: matched by name_dob_postcode"
    assert fields(store, "tax", "T2", "marital_status")["marital_status"] == "SURVIVING_CIVIL_PARTNER"


def test_a_survivor_the_department_does_not_hold_changes_only_the_deceased(open_department: Opener) -> None:
    store = open_department(pensions.department, row("pensions", "P1", marital_status="MARRIED"))
    result = deliver(store, pensions.department, death_survived_by(john()))
    assert result is not None and result.outcome is Outcome.APPLIED
    assert result.note == "deceased: matched by nino; surviving_partner: no record matches"
    assert fields(store, "pensions", "P1", "status", "marital_status") == {
        "status": "stopped",
        "marital_status": "MARRIED",  # the deceased's own status is not the survivor's
    }


def test_a_survivor_held_by_nobody_and_a_deceased_held_by_nobody_is_no_matching_record(
    open_department: Opener,
) -> None:
    store = open_department(
        tax.department, row("tax", "T9", given_names="Ann", date_of_birth="1950-01-01", nino="JH112233B")
    )
    result = deliver(store, tax.department, death_survived_by(john(), nino=None))
    assert result is not None and result.outcome is Outcome.NO_MATCHING_RECORD
    assert fields(store, "tax", "T9", "marital_status")["marital_status"] == "WIDOWED"  # untouched


def test_a_survivor_already_recorded_widowed_is_no_change(open_department: Opener) -> None:
    store = open_department(tax.department, row("tax", "T2", **{**JOHN, "marital_status": "WIDOWED"}))
    death = death_survived_by(john(), nino=None)
    result = deliver(store, tax.department, death)
    assert result is not None and result.outcome is Outcome.NO_MATCHING_RECORD
    assert result.note == "deceased: no record matches; surviving_partner: status already recorded; no change"
    assert outcome(store, tax.department, make_void(of=death)) is Outcome.NO_MATCHING_RECORD
    assert fields(store, "tax", "T2", "marital_status")["marital_status"] == "WIDOWED"


def test_an_ambiguous_survivor_waits_for_a_reviewer_and_the_deceased_is_applied_meanwhile(
    open_department: Opener,
) -> None:
    twice = {**JOHN, "nino": ""}
    store = open_department(
        tax.department, row("tax", "T1", marital_status="MARRIED"), row("tax", "T2", **twice), row("tax", "T3", **twice)
    )
    death = death_survived_by(john(nino=None))
    result = deliver(store, tax.department, death)
    assert result is not None and result.outcome is Outcome.NEEDS_REVIEW
    assert result.candidates == ("T2", "T3")
    assert "surviving_partner: ambiguous" in result.note
    assert fields(store, "tax", "T1", "status")["status"] == "deceased"
    assert [fields(store, "tax", r, "marital_status")["marital_status"] for r in ("T2", "T3")] == ["MARRIED"] * 2

    [item] = open_reviews(store)
    assert resolve_review(store, tax.department, item.event_id, "T3", "reviewer-7").outcome is Outcome.APPLIED
    assert [fields(store, "tax", r, "marital_status")["marital_status"] for r in ("T2", "T3")] == ["MARRIED", "WIDOWED"]

    assert outcome(store, tax.department, make_void(of=death)) is Outcome.APPLIED
    assert fields(store, "tax", "T3", "marital_status")["marital_status"] == "MARRIED"
    assert fields(store, "tax", "T1", "status")["status"] == "live"


def test_a_correction_naming_another_survivor_moves_the_status_and_one_removing_them_undoes_it(
    open_department: Opener,
) -> None:
    store = open_department(
        pensions.department,
        row("pensions", "P2", **JOHN),
        row("pensions", "P3", **{**JOHN, "given_names": "Jon", "date_of_birth": "1938-02-02", "nino": "JH112233B"}),
    )
    death = death_survived_by(john(), nino=None)
    assert outcome(store, pensions.department, death) is Outcome.APPLIED
    assert fields(store, "pensions", "P2", "marital_status")["marital_status"] == "WIDOWED"

    other = make_correction(of=death, surviving_partner=john(nino="JH112233B", given_names="Jon"))
    result = deliver(store, pensions.department, other)
    assert result is not None and result.outcome is Outcome.APPLIED
    assert "surviving_partner: moved to the record the correction matches" in result.note
    assert [fields(store, "pensions", p, "marital_status")["marital_status"] for p in ("P2", "P3")] == [
        "MARRIED",
        "WIDOWED",
    ]

    without = make_correction(of=other, surviving_partner=None)
    result = deliver(store, pensions.department, without)
    assert result is not None
    assert "surviving_partner: undone: no longer in the entry" in result.note
    assert [fields(store, "pensions", p, "marital_status")["marital_status"] for p in ("P2", "P3")] == ["MARRIED"] * 2

    added = make_correction(of=without, surviving_partner=john())
    assert outcome(store, pensions.department, added) is Outcome.APPLIED  # a survivor added by a correction
    assert fields(store, "pensions", "P2", "marital_status")["marital_status"] == "WIDOWED"


@pytest.mark.parametrize(
    "department",
    [dvla.department, electoral.department, passports.department, suppression.department],
    ids=["dvla", "electoral", "passports", "suppression"],
)
def test_departments_without_a_use_for_the_survivor_never_receive_them(department: Department[Any]) -> None:
    agreement = agreement_for(department.name)
    death = death_survived_by(john())
    minimised = agreement.minimise(death)
    assert minimised.death.surviving_partner is None  # type: ignore[attr-defined]
    corrected = agreement.minimise(make_correction(of=death, place_of_death="Leeds"))
    assert isinstance(corrected.corrected, DeathDetails)  # type: ignore[attr-defined]
    assert corrected.corrected.surviving_partner is None  # type: ignore[attr-defined]


@pytest.mark.parametrize("department", [tax.department, pensions.department], ids=["tax", "pensions"])
def test_tax_and_pensions_receive_the_survivor_without_identifiers_they_may_not_see(
    department: Department[Any],
) -> None:
    survivor = john()
    survivor = survivor.model_copy(
        update={"person": survivor.person.model_copy(update={"identifiers": make_identifiers()})}
    )
    minimised = agreement_for(department.name).minimise(death_survived_by(survivor))
    kept = minimised.death.surviving_partner  # type: ignore[attr-defined]
    assert kept is not None and kept.person.identifiers.nino is not None
    assert kept.person.identifiers.nhs_number is None
    assert kept.person.identifiers.passport_number is None


def test_a_survivor_must_fit_the_deceased_marital_status() -> None:
    with pytest.raises(ValueError, match=r"surviving_partner\.relationship SPOUSE requires marital_status MARRIED"):
        DeathDetails.model_validate(
            {**dict(make_death().death), "marital_status": MaritalStatus.SINGLE, "surviving_partner": john()}
        )


# The simulator and its answer key ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def population() -> SimulatedPopulation:
    return simulate_population(1500, seed=11)


def test_simulated_deaths_of_married_people_name_a_survivor_kept_in_the_population(
    population: SimulatedPopulation,
) -> None:
    deaths = [event.death for event in population.events if isinstance(event, DeathRegistered)]
    partnered = [d for d in deaths if d.marital_status in {MaritalStatus.MARRIED, MaritalStatus.CIVIL_PARTNER}]
    named = [d for d in partnered if d.surviving_partner is not None]
    assert len(named) > 0.8 * len(partnered) > 50
    assert all(d.surviving_partner is None for d in deaths if d not in partnered)
    people = {(p.given_names, p.family_name, p.date_of_birth): p for p in population.people}
    for death in named:
        survivor = death.surviving_partner
        assert survivor is not None
        person = people[(survivor.person.given_names, survivor.person.family_name, survivor.person.date_of_birth)]
        assert person.address == death.deceased.address  # where departments will find them
        assert person.widowed_from is death.marital_status
    assert {p.marital_status for p in population.survivors} <= {
        MaritalStatus.WIDOWED,
        MaritalStatus.SURVIVING_CIVIL_PARTNER,
    }
    assert len(population.survivors) >= len(named) - 5  # only voided deaths leave a survivor married


def test_a_simulated_plain_stream_carries_the_same_survivors_as_a_population() -> None:
    kept = simulate_population(400, seed=3).events
    assert list(simulate_registrations(400, seed=3)) == kept


@pytest.mark.parametrize("department", [tax.department, pensions.department], ids=["tax", "pensions"])
def test_simulated_registers_hold_survivors_married_and_the_deaths_leave_them_as_the_answer_key_says(
    store_backend: Settings, population: SimulatedPopulation, department: Department[Any]
) -> None:
    name = department.name
    records = simulate_customer_records(population, name, seed=11)
    store = open_store(store_backend, department)
    try:
        load_rows(store, department, [record.row for record in records])
        for event in population.events:
            if event.family is Register.DEATH:
                deliver(store, department, event)
        people = {person.person_id: person for person in population.people}
        per_person = Counter(record.person_id for record in records)
        checked = Counter[str]()
        for record in records:
            person = people.get(record.person_id)
            if person is None or person.widowed_from is None:
                continue
            assert record.row["marital_status"] == person.widowed_from.value  # married before the events
            if record.kind is not RecordKind.CUSTOMER or per_person[record.person_id] != 1:
                continue  # near-duplicates wait for a reviewer
            now = fields(store, name, record.row["record_id"], "marital_status")["marital_status"]
            assert now == person.marital_status.value, record.row["record_id"]
            checked[now] += 1
        assert checked["WIDOWED"] > 10, checked
    finally:
        store.close()
