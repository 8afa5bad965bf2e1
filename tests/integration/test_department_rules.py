"""The five departments' business rules on a real store, SQLite and PostgreSQL (``store_backend``), without Kafka.

Each reaction, its correction and its void; matching by identifier and by name + date of birth + postcode; an
ambiguous or partial match queued for review and then resolved by a reviewer. Events are delivered as the runtime
dispatches them (agreement first: see ``tests/support/delivery.py``); the real consumer is in the Kafka tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import pytest

from civreg.settings import Settings
from consumers import dvla, electoral, passports, pensions, tax
from consumers.kit.customer_records import RecordTable
from consumers.operations.running import open_store
from consumers.pensions import PaymentSchedule
from consumers.runtime import Department, Outcome, Store
from consumers.runtime.review_queue import open_reviews, resolve_review
from schemas.models import Identifiers, MaritalStatus, Sex
from tests.support.customer_rows import row
from tests.support.delivery import deliver, load_rows
from tests.support.factories import (
    event_id_for,
    make_address,
    make_birth,
    make_civil_partnership,
    make_correction,
    make_death,
    make_identifiers,
    make_marriage,
    make_partner,
    make_person,
    make_void,
)

TABLES = {
    "tax": ("taxpayers", "taxpayer_id"),
    "pensions": ("pensioners", "pensioner_id"),
    "dvla": ("drivers", "driver_id"),
    "electoral": ("electors", "elector_id"),
    "passports": ("passports", "passport_id"),
}


Opener = Callable[..., Store]


@pytest.fixture
def open_department(store_backend: Settings) -> Iterator[Opener]:
    """Open a department's store on the test's engine and load register rows into it."""
    opened: list[Store] = []

    def open_(department: Department[Any], *rows: dict[str, str]) -> Store:
        store = open_store(store_backend, department)
        opened.append(store)
        if rows:
            load_rows(store, department, rows)
        return store

    yield open_
    for store in opened:
        store.close()


def fields(store: Store, department: str, record_id: str, *columns: str) -> dict[str, Any]:
    table, key = TABLES[department]
    return RecordTable(store.read(), table, key).fields(record_id, *columns)


def outcome(store: Store, department: Department[Any], event: Any) -> Outcome:
    result = deliver(store, department, event)
    assert result is not None, "withheld by the agreement"
    return result.outcome


# Tax --------------------------------------------------------------------------------------------------------


def test_tax_death_marks_the_taxpayer_deceased_and_stops_reminders_a_void_restores(open_department: Opener) -> None:
    store = open_department(tax.department, row("tax", "T1"), row("tax", "T2", nino="CE654321A", given_names="Ann"))
    death = make_death()
    result = deliver(store, tax.department, death)
    assert result is not None
    assert (result.outcome, result.note) == (Outcome.APPLIED, "matched by nino")
    assert fields(store, "tax", "T1", "status", "date_of_death", "sa_reminders") == {
        "status": "deceased",
        "date_of_death": "2024-03-10",
        "sa_reminders": "stopped",
    }
    assert fields(store, "tax", "T2", "status")["status"] == "live"

    corrected = make_correction(of=death, date_of_death=date(2024, 3, 8))
    assert outcome(store, tax.department, corrected) is Outcome.APPLIED
    assert fields(store, "tax", "T1", "date_of_death")["date_of_death"] == "2024-03-08"

    assert outcome(store, tax.department, make_void(of=corrected)) is Outcome.APPLIED
    assert fields(store, "tax", "T1", "status", "date_of_death", "sa_reminders") == {
        "status": "live",
        "date_of_death": None,
        "sa_reminders": "on",
    }


def test_tax_marriage_records_surname_and_status_for_the_party_it_holds(open_department: Opener) -> None:
    emily = row("tax", "T1", given_names="Emily", family_name="Clarke", date_of_birth="1990-05-17", nino="CE654321A")
    store = open_department(tax.department, emily | {"marital_status": "SINGLE"})
    marriage = make_marriage()  # Emily Clarke takes Hughes; Thomas Hughes is not an HMRC customer here
    result = deliver(store, tax.department, marriage)
    assert result is not None and result.outcome is Outcome.APPLIED
    assert "party_2: no record matches" in result.note
    assert fields(store, "tax", "T1", "family_name", "marital_status", "name_key") == {
        "family_name": "Hughes",
        "marital_status": "MARRIED",
        "name_key": "hughes|emily",
    }
    assert outcome(store, tax.department, make_void(of=marriage)) is Outcome.APPLIED
    assert fields(store, "tax", "T1", "family_name", "marital_status") == {
        "family_name": "Clarke",
        "marital_status": "SINGLE",
    }


def test_tax_civil_partnership_records_civil_partner_status(open_department: Opener) -> None:
    owen = row("tax", "T1", given_names="Owen", family_name="Evans", date_of_birth="1975-12-30", nino="WE778899A")
    store = open_department(tax.department, owen)
    assert outcome(store, tax.department, make_civil_partnership()) is Outcome.APPLIED
    assert fields(store, "tax", "T1", "family_name", "marital_status") == {
        "family_name": "Evans-Patel",
        "marital_status": MaritalStatus.CIVIL_PARTNER.value,
    }


def _invitations(store: Store) -> list[tuple[Any, ...]]:
    rows = store.read().execute("SELECT taxpayer_id, status FROM child_benefit_invitations ORDER BY taxpayer_id")
    return [tuple(r) for r in rows]


def test_tax_birth_invites_the_mother_to_claim_child_benefit_and_a_stillbirth_never_arrives(
    open_department: Opener,
) -> None:
    mother = row("tax", "T1", given_names="Sarah Jane", date_of_birth="1994-06-01")
    store = open_department(tax.department, mother)
    assert deliver(store, tax.department, make_birth(entry_number=2, stillbirth=True)) is None
    assert _invitations(store) == []

    birth = make_birth()
    assert outcome(store, tax.department, birth) is Outcome.APPLIED
    assert _invitations(store) == [("T1", "due")]
    assert outcome(store, tax.department, make_void(of=birth)) is Outcome.APPLIED
    assert _invitations(store) == [("T1", "withdrawn")]


def test_tax_a_birth_corrected_to_a_stillbirth_withdraws_the_invitation(open_department: Opener) -> None:
    store = open_department(tax.department, row("tax", "T1", given_names="Sarah Jane", date_of_birth="1994-06-01"))
    birth = make_birth()
    assert outcome(store, tax.department, birth) is Outcome.APPLIED
    assert _invitations(store) == [("T1", "due")]
    # HMRC may not see the stillbirth, but it must undo what the live birth did: it receives a withdrawal.
    assert outcome(store, tax.department, make_correction(of=birth, stillbirth=True)) is Outcome.APPLIED
    assert _invitations(store) == [("T1", "withdrawn")]


def test_tax_a_stillbirth_corrected_back_to_a_live_birth_invites_again(open_department: Opener) -> None:
    store = open_department(tax.department, row("tax", "T1", given_names="Sarah Jane", date_of_birth="1994-06-01"))
    birth = make_birth()
    withdrawn = make_correction(of=birth, stillbirth=True)  # HMRC receives it as a withdrawal of the entry
    live_again = make_correction(of=withdrawn, stillbirth=False)
    assert outcome(store, tax.department, birth) is Outcome.APPLIED
    assert outcome(store, tax.department, withdrawn) is Outcome.APPLIED
    assert _invitations(store) == [("T1", "withdrawn")]
    assert outcome(store, tax.department, live_again) is Outcome.APPLIED  # what the registrar means: a live birth
    assert _invitations(store) == [("T1", "due")]


def test_tax_a_stillbirth_corrected_back_to_a_live_birth_invites_the_mother_again(open_department: Opener) -> None:
    store = open_department(tax.department, row("tax", "T1", given_names="Sarah Jane", date_of_birth="1994-06-01"))
    birth = make_birth()
    assert outcome(store, tax.department, birth) is Outcome.APPLIED
    to_stillbirth = make_correction(of=birth, stillbirth=True)
    assert outcome(store, tax.department, to_stillbirth) is Outcome.APPLIED
    assert _invitations(store) == [("T1", "withdrawn")]
    # The registrar corrects it back: the child was born alive, so the birth's effects apply again.
    back_to_live = make_correction(of=to_stillbirth, stillbirth=False)
    result = deliver(store, tax.department, back_to_live)
    assert result is not None and result.outcome is Outcome.APPLIED, result
    assert _invitations(store) == [("T1", "due")]
    # A registrar's void still ends the entry for good, and the invitation with it.
    assert outcome(store, tax.department, make_void(of=back_to_live)) is Outcome.APPLIED
    assert _invitations(store) == [("T1", "withdrawn")]


# Pensions ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("anchor", "paid_in", "overpaid_days"),
    [
        ("2024-03-12", "arrears", 2),  # paid 12 March for the four weeks to 12 March; died 10 March
        ("2024-02-16", "arrears", 0),  # the next payment (15 March) falls after the death is registered
        ("2024-03-05", "advance", 22),  # paid 5 March for 5 March to 1 April
        ("2024-03-13", "arrears", 3),  # paid 13 March, after the death, before it was registered
    ],
)
def test_pension_schedule_computes_what_was_paid_for_days_after_death(
    anchor: str, paid_in: str, overpaid_days: int
) -> None:
    schedule = PaymentSchedule(22120, 28, date.fromisoformat(anchor), paid_in == "advance")
    assert schedule.paid_for_days_after(date(2024, 3, 10), payments_until=date(2024, 3, 14)) == (
        22120 * overpaid_days // 7
    )


def test_pensions_death_stops_payments_computes_overpayment_correction_recomputes_void_cancels_recovery(
    open_department: Opener,
) -> None:
    store = open_department(
        pensions.department, row("pensions", "P1", paid_in="advance", payment_anchor_on="2024-03-05")
    )
    death = make_death()
    assert outcome(store, pensions.department, death) is Outcome.APPLIED
    stopped = fields(store, "pensions", "P1", "status", "entitled_to", "overpayment_pence", "recovery")
    assert stopped == {
        "status": "stopped",
        "entitled_to": "2024-03-10",
        "overpayment_pence": 22120 * 22 // 7,
        "recovery": "pending",
    }

    corrected = make_correction(of=death, date_of_death=date(2024, 3, 4))  # before the 5 March payment
    assert outcome(store, pensions.department, corrected) is Outcome.APPLIED
    assert fields(store, "pensions", "P1", "entitled_to", "overpayment_pence") == {
        "entitled_to": "2024-03-04",
        "overpayment_pence": 22120 * 28 // 7,
    }

    assert outcome(store, pensions.department, make_void(of=corrected)) is Outcome.APPLIED
    assert fields(store, "pensions", "P1", "status", "entitled_to", "overpayment_pence", "recovery") == {
        "status": "in_payment",
        "entitled_to": None,
        "overpayment_pence": 0,
        "recovery": "cancelled",
    }


def test_pensions_marriage_updates_marital_status(open_department: Opener) -> None:
    thomas = row(
        "pensions", "P1", given_names="Thomas", family_name="Hughes", date_of_birth="1988-09-02", nino="JH112233B"
    )
    store = open_department(pensions.department, thomas | {"marital_status": "DIVORCED"})
    assert outcome(store, pensions.department, make_marriage()) is Outcome.APPLIED
    assert fields(store, "pensions", "P1", "marital_status")["marital_status"] == "MARRIED"


# DVLA -------------------------------------------------------------------------------------------------------


def _flagged(store: Store) -> dict[str, int]:
    rows = store.read().execute("SELECT registration_mark, keeper_deceased FROM vehicles ORDER BY registration_mark")
    return {str(r[0]): int(r[1]) for r in rows}


def test_dvla_death_cancels_the_licence_and_flags_vehicles_a_void_restores_both(open_department: Opener) -> None:
    store = open_department(dvla.department, row("dvla", "D1"))
    death = make_death(nino=None)  # matched on DVLA's own number
    result = deliver(store, dvla.department, death)
    assert result is not None and result.note == "matched by driving_licence_number"
    assert fields(store, "dvla", "D1", "licence_status", "cancelled_reason", "cancelled_on") == {
        "licence_status": "cancelled",
        "cancelled_reason": "holder died",
        "cancelled_on": "2024-03-14",
    }
    assert _flagged(store) == {"AB12CDE": 1, "XY70ABC": 1}

    assert outcome(store, dvla.department, make_void(of=death)) is Outcome.APPLIED
    assert fields(store, "dvla", "D1", "licence_status", "cancelled_reason")["licence_status"] == "valid"
    assert _flagged(store) == {"AB12CDE": 0, "XY70ABC": 0}


def test_dvla_a_partnership_without_a_new_surname_changes_nothing(open_department: Opener) -> None:
    thomas = row("dvla", "D1", given_names="Thomas", family_name="Hughes", date_of_birth="1988-09-02")
    store = open_department(dvla.department, thomas | {"driving_licence_number": ""})
    result = deliver(store, dvla.department, make_marriage())  # Thomas keeps his surname; Emily is not a driver
    assert result is not None and result.outcome is Outcome.NO_MATCHING_RECORD
    assert "no change for DVLA" in result.note
    assert fields(store, "dvla", "D1", "family_name")["family_name"] == "Hughes"


def test_dvla_marriage_records_the_new_surname_only(open_department: Opener) -> None:
    emily = row("dvla", "D1", given_names="Emily", family_name="Clarke", date_of_birth="1990-05-17")
    store = open_department(dvla.department, emily)
    assert outcome(store, dvla.department, make_marriage()) is Outcome.APPLIED
    assert fields(store, "dvla", "D1", "family_name")["family_name"] == "Hughes"


# Electoral register ---------------------------------------------------------------------------------------------


def test_electoral_death_removes_the_elector_by_name_birth_and_postcode_and_a_void_reinstates(
    open_department: Opener,
) -> None:
    store = open_department(electoral.department, row("electoral", "E1"), row("electoral", "E2", given_names="Ann"))
    death = make_death()
    result = deliver(store, electoral.department, death)
    assert result is not None
    assert (result.outcome, result.note) == (Outcome.APPLIED, "matched by name_dob_postcode")
    assert fields(store, "electoral", "E1", "status", "removed_reason") == {
        "status": "removed",
        "removed_reason": "elector died",
    }
    assert fields(store, "electoral", "E2", "status")["status"] == "registered"
    assert outcome(store, electoral.department, make_void(of=death)) is Outcome.APPLIED
    assert fields(store, "electoral", "E1", "status", "removed_reason") == {
        "status": "registered",
        "removed_reason": None,
    }


def test_electoral_marriage_records_the_new_surname(open_department: Opener) -> None:
    emily = row("electoral", "E1", given_names="Emily", family_name="Clarke", date_of_birth="1990-05-17")
    store = open_department(electoral.department, emily)
    marriage = make_marriage()
    assert outcome(store, electoral.department, marriage) is Outcome.APPLIED
    assert fields(store, "electoral", "E1", "family_name")["family_name"] == "Hughes"
    corrected = make_correction(
        of=marriage,
        party_1=make_partner(
            make_person("Emily", "Clarke", date(1990, 5, 17), nino="CE654321A"), surname_after="Clarke-Hughes"
        ),
    )
    assert outcome(store, electoral.department, corrected) is Outcome.APPLIED
    assert fields(store, "electoral", "E1", "family_name")["family_name"] == "Clarke-Hughes"


def test_electoral_a_partnership_without_a_new_surname_changes_nothing(open_department: Opener) -> None:
    thomas = row("electoral", "E1", given_names="Thomas", family_name="Hughes", date_of_birth="1988-09-02")
    store = open_department(electoral.department, thomas)
    marriage = make_marriage()  # Thomas keeps his surname; Emily is not on this register
    result = deliver(store, electoral.department, marriage)
    assert result is not None and result.outcome is Outcome.NO_MATCHING_RECORD
    assert "no change for the electoral register" in result.note
    assert fields(store, "electoral", "E1", "family_name")["family_name"] == "Hughes"
    assert store.outcome_counts() == {("MarriageRegistered", "no_matching_record"): 1}
    voided = deliver(store, electoral.department, make_void(of=marriage))  # nothing was changed, nothing to undo
    assert voided is not None and voided.outcome is Outcome.NO_MATCHING_RECORD


# Passports ----------------------------------------------------------------------------------------------------


def test_passport_death_cancels_the_passport_and_a_void_restores_it(open_department: Opener) -> None:
    store = open_department(passports.department, row("passports", "H1"))
    death = make_death()
    result = deliver(store, passports.department, death)
    assert result is not None and result.note == "matched by passport_number"
    assert fields(store, "passports", "H1", "status", "cancelled_reason")["status"] == "cancelled"
    assert outcome(store, passports.department, make_void(of=death)) is Outcome.APPLIED
    assert fields(store, "passports", "H1", "status", "cancelled_reason") == {
        "status": "valid",
        "cancelled_reason": None,
    }


def test_a_correction_that_identifies_another_holder_moves_the_effect(open_department: Opener) -> None:
    store = open_department(
        passports.department,
        row("passports", "H1", passport_number="111111111"),
        row("passports", "H2", passport_number="222222222", given_names="Mary", date_of_birth="1939-01-01"),
    )
    death = make_death(passport_number="111111111")
    assert outcome(store, passports.department, death) is Outcome.APPLIED
    fixed = make_death(
        deceased=make_person("Mary", "Morgan", date(1939, 1, 1), passport_number="222222222"),
    ).death
    corrected = make_correction(of=death, corrected=fixed)
    result = deliver(store, passports.department, corrected)
    assert result is not None and result.note == "moved to the record the correction matches"
    assert fields(store, "passports", "H1", "status")["status"] == "valid"
    assert fields(store, "passports", "H2", "status")["status"] == "cancelled"


# Matching, review and resolution -----------------------------------------------------------------------------


def test_an_ambiguous_match_waits_for_a_reviewer_who_chooses_the_record(open_department: Opener) -> None:
    store = open_department(electoral.department, row("electoral", "E1"), row("electoral", "E2"))  # listed twice
    death = make_death()
    result = deliver(store, electoral.department, death)
    assert result is not None and result.outcome is Outcome.NEEDS_REVIEW
    assert result.candidates == ("E1", "E2")
    assert "ambiguous" in result.note
    assert fields(store, "electoral", "E1", "status")["status"] == "registered"  # nothing applied by guess

    [item] = open_reviews(store)
    assert item.candidates == ("E1", "E2")
    resolved = resolve_review(store, electoral.department, item.event_id, "E2", "reviewer-7")
    assert resolved.outcome is Outcome.APPLIED
    assert fields(store, "electoral", "E2", "status")["status"] == "removed"
    assert fields(store, "electoral", "E1", "status")["status"] == "registered"
    assert store.outcome_counts() == {("DeathRegistered", "applied"): 1}

    # The void undoes what the reviewer's decision applied.
    assert outcome(store, electoral.department, make_void(of=death)) is Outcome.APPLIED
    assert fields(store, "electoral", "E2", "status")["status"] == "registered"


def test_a_partial_match_is_queued_and_a_reviewer_can_say_no_record_matches(open_department: Opener) -> None:
    store = open_department(tax.department, row("tax", "T1", nino="", postcode="M1 1AE"))  # moved, no NINO
    result = deliver(store, tax.department, make_death())
    assert result is not None and result.outcome is Outcome.NEEDS_REVIEW
    assert result.note == "partial: name and date of birth match, postcode differs"
    assert result.candidates == ("T1",)
    [item] = open_reviews(store)
    resolved = resolve_review(store, tax.department, item.event_id, None, "reviewer-7")
    assert resolved.outcome is Outcome.NO_MATCHING_RECORD
    assert fields(store, "tax", "T1", "status")["status"] == "live"


def test_a_marriage_applies_the_certain_party_and_queues_the_other(open_department: Opener) -> None:
    store = open_department(
        tax.department,
        row("tax", "T1", given_names="Emily", family_name="Clarke", date_of_birth="1990-05-17", nino="CE654321A"),
        row("tax", "T2", given_names="Tom", family_name="Hughes", date_of_birth="1988-09-02", nino=""),
    )
    marriage = make_marriage(
        party_2=make_partner(
            make_person("Thomas", "Hughes", date(1988, 9, 2), Sex.MALE, identifiers=make_identifiers(nino=None)),
            MaritalStatus.DIVORCED,
        )
    )
    result = deliver(store, tax.department, marriage)
    assert result is not None and result.outcome is Outcome.NEEDS_REVIEW
    assert result.candidates == ("T2",)  # same date of birth and postcode, another first name
    assert fields(store, "tax", "T1", "family_name")["family_name"] == "Hughes"  # party 1 applied already
    [item] = open_reviews(store)
    assert resolve_review(store, tax.department, item.event_id, "T2", "reviewer-7").outcome is Outcome.APPLIED
    assert fields(store, "tax", "T2", "marital_status")["marital_status"] == "MARRIED"


def test_a_correction_matching_nobody_or_others_ambiguously_undoes_the_effect(open_department: Opener) -> None:
    ann = {"given_names": "Ann", "date_of_birth": "1950-01-01"}
    store = open_department(
        electoral.department,
        row("electoral", "E1"),
        row("electoral", "E2", **ann),
        row("electoral", "E3", **ann),  # listed twice
    )
    death = make_death()
    assert outcome(store, electoral.department, death) is Outcome.APPLIED
    nobody = make_correction(of=death, deceased=make_person("Mary", "Morgan", date(1939, 1, 1)))
    result = deliver(store, electoral.department, nobody)
    assert result is not None and result.outcome is Outcome.NO_MATCHING_RECORD
    assert fields(store, "electoral", "E1", "status")["status"] == "registered"  # Margaret is not dead

    other = make_death(entry_number=2)
    assert outcome(store, electoral.department, other) is Outcome.APPLIED
    ambiguous = make_correction(of=other, deceased=make_person("Ann", "Morgan", date(1950, 1, 1)))
    result = deliver(store, electoral.department, ambiguous)
    assert result is not None and result.outcome is Outcome.NEEDS_REVIEW
    assert result.candidates == ("E2", "E3")
    assert [fields(store, "electoral", e, "status")["status"] for e in ("E1", "E2", "E3")] == ["registered"] * 3
    [item] = open_reviews(store)
    assert resolve_review(store, electoral.department, item.event_id, "E3", "reviewer-7").outcome is Outcome.APPLIED
    assert fields(store, "electoral", "E3", "status")["status"] == "removed"


def test_a_correction_keeps_the_effect_on_a_reviewed_record_among_the_candidates(open_department: Opener) -> None:
    store = open_department(electoral.department, row("electoral", "E1"), row("electoral", "E2"))  # listed twice
    death = make_death()
    assert outcome(store, electoral.department, death) is Outcome.NEEDS_REVIEW
    [item] = open_reviews(store)
    resolve_review(store, electoral.department, item.event_id, "E2", "reviewer-7")
    corrected = make_correction(of=death, date_of_death=date(2024, 3, 8))
    assert outcome(store, electoral.department, corrected) is Outcome.APPLIED
    assert fields(store, "electoral", "E2", "status")["status"] == "removed"
    assert fields(store, "electoral", "E1", "status")["status"] == "registered"


def test_a_marriage_where_both_parties_need_review_stays_queued_until_both_are_resolved(
    open_department: Opener,
) -> None:
    store = open_department(
        tax.department,
        row("tax", "T1", given_names="Em", family_name="Clarke", date_of_birth="1990-05-17", nino=""),
        row("tax", "T2", given_names="Tom", family_name="Hughes", date_of_birth="1988-09-02", nino=""),
    )
    no_nino = make_identifiers(nino=None)
    marriage = make_marriage(
        party_1=make_partner(
            make_person("Emily", "Clarke", date(1990, 5, 17), identifiers=no_nino), surname_after="Hughes"
        ),
        party_2=make_partner(make_person("Thomas", "Hughes", date(1988, 9, 2), Sex.MALE, identifiers=no_nino)),
    )
    result = deliver(store, tax.department, marriage)
    assert result is not None and result.outcome is Outcome.NEEDS_REVIEW
    assert result.candidates == ("T1", "T2")
    [item] = open_reviews(store)
    first = resolve_review(store, tax.department, item.event_id, "T1", "reviewer-7")
    assert first.outcome is Outcome.NEEDS_REVIEW  # party 2 still waits
    assert fields(store, "tax", "T1", "family_name")["family_name"] == "Hughes"
    [still] = open_reviews(store)
    assert (still.event_id, still.candidates) == (item.event_id, ("T2",))
    assert resolve_review(store, tax.department, item.event_id, "T2", "reviewer-7").outcome is Outcome.APPLIED
    assert fields(store, "tax", "T2", "marital_status")["marital_status"] == "MARRIED"
    assert open_reviews(store) == []
    assert store.outcome_counts() == {("MarriageRegistered", "applied"): 1}


def _two_party_review(open_department: Opener) -> tuple[Store, str]:
    """A marriage in tax where neither party has a NINO: both wait for a reviewer (T1 is Emily's, T2 Thomas's)."""
    store = open_department(
        tax.department,
        row("tax", "T1", given_names="Em", family_name="Clarke", date_of_birth="1990-05-17", nino=""),
        row("tax", "T2", given_names="Tom", family_name="Hughes", date_of_birth="1988-09-02", nino=""),
    )
    no_nino = make_identifiers(nino=None)
    marriage = make_marriage(
        party_1=make_partner(
            make_person("Emily", "Clarke", date(1990, 5, 17), identifiers=no_nino), surname_after="Hughes"
        ),
        party_2=make_partner(make_person("Thomas", "Hughes", date(1988, 9, 2), Sex.MALE, identifiers=no_nino)),
    )
    result = deliver(store, tax.department, marriage)
    assert result is not None and result.outcome is Outcome.NEEDS_REVIEW
    [item] = open_reviews(store)
    return store, item.event_id


def test_a_no_match_decision_on_a_two_party_review_closes_only_the_party_it_is_about(open_department: Opener) -> None:
    store, event_id = _two_party_review(open_department)
    with pytest.raises(ValueError, match="party_1, party_2"):  # which of the two does no record match?
        resolve_review(store, tax.department, event_id, None, "reviewer-7")
    first = resolve_review(store, tax.department, event_id, None, "reviewer-7", party="party_2")
    assert first.outcome is Outcome.NEEDS_REVIEW  # party 1 still waits
    [still] = open_reviews(store)
    assert (still.event_id, still.candidates) == (event_id, ("T1",))
    assert fields(store, "tax", "T2", "marital_status")["marital_status"] == "WIDOWED"
    second = resolve_review(store, tax.department, event_id, "T1", "reviewer-7")
    assert second.outcome is Outcome.APPLIED
    assert fields(store, "tax", "T1", "family_name", "marital_status") == {
        "family_name": "Hughes",
        "marital_status": "MARRIED",
    }
    assert fields(store, "tax", "T2", "marital_status")["marital_status"] == "WIDOWED"
    assert open_reviews(store) == []
    assert store.outcome_counts() == {("MarriageRegistered", "applied"): 1}


def test_a_no_match_decision_for_the_last_party_waiting_closes_the_review(open_department: Opener) -> None:
    store, event_id = _two_party_review(open_department)
    assert resolve_review(store, tax.department, event_id, "T2", "reviewer-7").outcome is Outcome.NEEDS_REVIEW
    with pytest.raises(ValueError, match="party_2 does not await"):
        resolve_review(store, tax.department, event_id, None, "reviewer-7", party="party_2")
    last = resolve_review(store, tax.department, event_id, None, "reviewer-7")  # only party 1 is left
    assert last.outcome is Outcome.APPLIED and "party_1: reviewer: no record matches" in last.note
    assert open_reviews(store) == []
    assert fields(store, "tax", "T1", "family_name")["family_name"] == "Clarke"
    assert fields(store, "tax", "T2", "marital_status")["marital_status"] == "MARRIED"


def test_no_match_on_both_parties_records_no_matching_record(open_department: Opener) -> None:
    store, event_id = _two_party_review(open_department)
    resolve_review(store, tax.department, event_id, None, "reviewer-7", party="party_1")
    last = resolve_review(store, tax.department, event_id, None, "reviewer-7", party="party_2")
    assert last.outcome is Outcome.NO_MATCHING_RECORD
    assert open_reviews(store) == []
    assert store.outcome_counts() == {("MarriageRegistered", "no_matching_record"): 1}


def test_redelivered_and_stale_versions_change_nothing(open_department: Opener) -> None:
    store = open_department(passports.department, row("passports", "H1"))
    death = make_death()
    corrected = make_correction(of=death, date_of_death=date(2024, 3, 9))
    assert outcome(store, passports.department, death) is Outcome.APPLIED
    assert outcome(store, passports.department, corrected) is Outcome.APPLIED
    before = fields(store, "passports", "H1", "status", "cancelled_on")
    stale = make_death(event_id=event_id_for("DeathRegistered", death.entry, 1, "republished"))
    assert outcome(store, passports.department, stale) is Outcome.APPLIED  # "version 1 already applied"
    assert fields(store, "passports", "H1", "status", "cancelled_on") == before


def test_a_registration_arriving_after_its_correction_is_replayed_in_version_order(open_department: Opener) -> None:
    store = open_department(tax.department, row("tax", "T1"))
    death = make_death()
    elsewhere = make_person(identifiers=Identifiers(), address=make_address(postcode="LS6 2AB"))
    moved = make_correction(of=death, deceased=elsewhere)
    first = deliver(store, tax.department, moved)  # partial on its own: name and date of birth, another postcode
    assert first is not None and first.outcome is Outcome.NEEDS_REVIEW
    late = deliver(store, tax.department, death)  # matched by NINO; the correction then amends that record
    assert late is not None and late.outcome is Outcome.APPLIED
    assert late.note == "arrived after version 2; the entry was applied again in version order: amended"
    assert fields(store, "tax", "T1", "status")["status"] == "deceased"


def test_a_reviewers_choice_is_kept_when_a_late_version_replays_the_entry(open_department: Opener) -> None:
    store = open_department(electoral.department, row("electoral", "E1"), row("electoral", "E2"))  # listed twice
    death = make_death()
    corrected = make_correction(of=death, date_of_death=date(2024, 3, 8))
    assert outcome(store, electoral.department, corrected) is Outcome.NEEDS_REVIEW
    [item] = open_reviews(store)
    assert resolve_review(store, electoral.department, item.event_id, "E2", "reviewer-7").outcome is Outcome.APPLIED
    # Version 1 (just as ambiguous) arrives late: the entry is replayed, and version 2 goes where the reviewer said.
    late = deliver(store, electoral.department, death)
    assert late is not None and late.outcome is Outcome.APPLIED
    assert [fields(store, "electoral", e, "status")["status"] for e in ("E1", "E2")] == ["registered", "removed"]


def test_a_review_of_a_late_version_applies_the_entry_as_it_now_stands(open_department: Opener) -> None:
    store = open_department(electoral.department, row("electoral", "E1"), row("electoral", "E2"))  # listed twice
    death = make_death()
    corrected = make_correction(of=death, date_of_death=date(2024, 3, 8))
    assert outcome(store, electoral.department, corrected) is Outcome.NEEDS_REVIEW
    assert outcome(store, electoral.department, death) is Outcome.NEEDS_REVIEW  # replayed: still ambiguous
    late = next(item for item in open_reviews(store) if item.event_id == str(death.event_id))
    assert resolve_review(store, electoral.department, late.event_id, "E1", "reviewer-7").outcome is Outcome.APPLIED
    assert fields(store, "electoral", "E1", "status", "removed_on") == {"status": "removed", "removed_on": "2024-03-14"}
    assert store.read().scalar("SELECT version FROM life_event_links WHERE status = 'applied'") == 2


def test_a_reviewers_no_match_is_kept_when_a_late_version_replays_the_entry(open_department: Opener) -> None:
    store = open_department(electoral.department, row("electoral", "E1"), row("electoral", "E2"))  # listed twice
    death = make_death()
    corrected = make_correction(of=death, date_of_death=date(2024, 3, 8))
    assert outcome(store, electoral.department, corrected) is Outcome.NEEDS_REVIEW
    [item] = open_reviews(store)
    declined = resolve_review(store, electoral.department, item.event_id, None, "reviewer-7")
    assert declined.outcome is Outcome.NO_MATCHING_RECORD
    # Version 1 (just as ambiguous) arrives late: the replay makes the reviewer's decision on version 2 again.
    late = deliver(store, electoral.department, death)
    assert late is not None and late.outcome is Outcome.NO_MATCHING_RECORD, late
    assert late.note.endswith("reviewer: no record matches")
    assert open_reviews(store) == []
    assert [fields(store, "electoral", e, "status")["status"] for e in ("E1", "E2")] == ["registered", "registered"]


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 2, 0)])
def test_a_correction_after_a_registrars_void_is_not_applied_in_any_order(
    open_department: Opener, order: tuple[int, ...]
) -> None:
    # Unlike a withdrawal (a birth corrected to a stillbirth), a registrar's void ends the entry for good.
    store = open_department(passports.department, row("passports", "H1"))
    death = make_death()
    void = make_void(of=death)
    history = [death, void, make_correction(of=death, version=3, date_of_death=date(2024, 3, 9))]
    for index in order:
        deliver(store, passports.department, history[index])
    assert fields(store, "passports", "H1", "status")["status"] == "valid"
    assert store.read().scalar("SELECT status FROM life_event_entries") == "voided"


def test_a_void_of_an_entry_that_changed_nothing_is_no_matching_record(open_department: Opener) -> None:
    store = open_department(
        passports.department,
        row("passports", "H1", given_names="Ann", date_of_birth="1950-01-01", passport_number="999999999"),
    )
    death = make_death()
    assert outcome(store, passports.department, death) is Outcome.NO_MATCHING_RECORD
    assert outcome(store, passports.department, make_void(of=death)) is Outcome.NO_MATCHING_RECORD


def test_an_entry_without_date_of_birth_or_identifier_is_never_applied_on_name_alone(open_department: Opener) -> None:
    store = open_department(electoral.department, row("electoral", "E1"))
    death = make_death(deceased=make_person(date_of_birth=None, address=make_address()))
    result = deliver(store, electoral.department, death)
    assert result is not None and result.outcome is Outcome.NEEDS_REVIEW
    assert result.note == "partial: name and postcode match, the entry has no date of birth"
    elsewhere = make_death(
        entry_number=2, deceased=make_person(date_of_birth=None, address=make_address(postcode="M1 1AE"))
    )
    assert outcome(store, electoral.department, elsewhere) is Outcome.NO_MATCHING_RECORD


def test_same_name_at_the_same_address_with_another_date_of_birth_waits_for_a_reviewer(
    open_department: Opener,
) -> None:
    # A wrong date of birth in the entry (its correction not here yet), or a father and son: a person decides.
    store = open_department(electoral.department, row("electoral", "E1", date_of_birth="1942-11-03"))
    result = deliver(store, electoral.department, make_death())
    assert result is not None and result.outcome is Outcome.NEEDS_REVIEW
    assert (result.note, result.candidates) == ("partial: name and postcode match, date of birth differs", ("E1",))
    assert fields(store, "electoral", "E1", "status")["status"] == "registered"


def test_two_records_with_the_same_identifier_are_ambiguous(open_department: Opener) -> None:
    store = open_department(tax.department, row("tax", "T1"), row("tax", "T2", postcode="M1 1AE"))
    result = deliver(store, tax.department, make_death())
    assert result is not None and result.outcome is Outcome.NEEDS_REVIEW
    assert (result.note, result.candidates) == ("ambiguous: 2 records share the nino", ("T1", "T2"))


def test_the_same_details_under_another_identifier_are_not_applied(open_department: Opener) -> None:
    store = open_department(tax.department, row("tax", "T1", nino="CE654321A"))
    result = deliver(store, tax.department, make_death())  # the entry's NINO is AB123456C
    assert result is not None and result.outcome is Outcome.NEEDS_REVIEW
    assert result.note == "partial: name, date of birth and postcode match, nino differs"
    assert fields(store, "tax", "T1", "status")["status"] == "live"
