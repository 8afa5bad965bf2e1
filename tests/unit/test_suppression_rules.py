"""The suppression service's rules and mailing filter on a real SQLite store (no Kafka: the rules are pure)."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pytest

from consumers.runtime import Outcome, SqliteStore
from consumers.suppression import Action, SuppressionList, decide, department, filter_mailing
from consumers.suppression.mailing import Recipient
from schemas.models import Event
from tests.support.factories import make_address, make_correction, make_death, make_person, make_void


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "suppression.sqlite3", department.schema)


def apply(store: SqliteStore, event: Event) -> Outcome:
    with store.transaction() as tx:
        return department.apply(event, tx).outcome


def recipient(**overrides: object) -> Recipient:
    fields: dict[str, object] = {
        "recipient_id": "r1",
        "given_names": "Margaret",
        "family_name": "Morgan",
        "date_of_birth": date(1941, 11, 3),
        "postcode": "LS1 4AP",
    }
    fields.update(overrides)
    return Recipient(**fields)  # type: ignore[arg-type]


def decision(store: SqliteStore, who: Recipient) -> Action:
    return decide(SuppressionList(store.read()), who).action


def test_death_suppresses_and_void_restores(store: SqliteStore) -> None:
    death = make_death(deceased=make_person(address=make_address(postcode="LS1 4AP")))
    assert decision(store, recipient()) is Action.SEND
    assert apply(store, death) is Outcome.APPLIED
    assert decision(store, recipient()) is Action.SUPPRESS
    assert decision(store, recipient(nino="AB123456C", given_names="x", family_name="y")) is Action.SUPPRESS
    assert apply(store, make_void(of=death)) is Outcome.APPLIED
    assert decision(store, recipient()) is Action.SEND


def test_void_of_unknown_entry_is_no_matching_record(store: SqliteStore) -> None:
    assert apply(store, make_void(of=make_death(entry_number=99))) is Outcome.NO_MATCHING_RECORD


def test_correction_moves_the_match_to_the_corrected_details(store: SqliteStore) -> None:
    death = make_death(deceased=make_person(address=make_address(postcode="LS1 4AP")))
    apply(store, death)
    corrected_person = make_person(given_names="Margarethe", address=make_address(postcode="LS2 7EE"))
    assert apply(store, make_correction(of=death, deceased=corrected_person)) is Outcome.APPLIED
    assert decision(store, recipient(nino=None, given_names="Margarethe", postcode="LS2 7EE")) is Action.SUPPRESS
    # The old spelling with the old postcode no longer matches exactly (identifiers aside).
    assert decision(store, recipient(given_names="Margaret", postcode="LS1 4AP")) is Action.SEND


def test_stale_versions_change_nothing(store: SqliteStore) -> None:
    death = make_death()
    correction = make_correction(of=death, place_of_death="Elsewhere")
    apply(store, death)
    apply(store, correction)
    assert apply(store, death) is Outcome.APPLIED  # version 1 after version 2: no effect
    with store.transaction() as tx:
        assert SuppressionList(tx).version_of(death.entry) == 2


def test_name_and_date_of_birth_with_other_postcode_is_held_not_guessed(store: SqliteStore) -> None:
    apply(store, make_death(deceased=make_person(address=make_address(postcode="LS1 4AP"))))
    assert decision(store, recipient(postcode="M1 1AE")) is Action.HOLD
    assert decision(store, recipient(date_of_birth=date(1950, 1, 1))) is Action.SEND


def test_a_misspelt_entry_at_the_same_birth_date_and_postcode_is_held(store: SqliteStore) -> None:
    misspelt = make_person(family_name="Mrogan", address=make_address(postcode="LS1 4AP"))
    apply(store, make_death(deceased=misspelt))
    who = decide(SuppressionList(store.read()), recipient())
    assert who.action is Action.HOLD
    assert who.matched_by == "dob_postcode" and "name differs" in who.reason
    assert decision(store, recipient(postcode="M1 1AE")) is Action.SEND


def test_a_recipient_without_a_date_of_birth_is_held_when_name_and_postcode_match(store: SqliteStore) -> None:
    apply(store, make_death(deceased=make_person(address=make_address(postcode="LS1 4AP"))))
    who = decide(SuppressionList(store.read()), recipient(date_of_birth=None))
    assert who.action is Action.HOLD
    assert who.matched_by == "name_postcode" and "no date of birth" in who.reason
    assert decision(store, recipient(date_of_birth=None, postcode="M1 1AE")) is Action.SEND


def test_two_entries_for_one_person_and_one_voided_stays_suppressed(store: SqliteStore) -> None:
    person = make_person(address=make_address(postcode="LS1 4AP"))
    first = make_death(entry_number=1, deceased=person)
    duplicate = make_death(entry_number=2, deceased=person)
    apply(store, first)
    apply(store, duplicate)
    apply(store, make_void(of=duplicate))
    assert decision(store, recipient()) is Action.SUPPRESS


def test_mailing_filter_writes_sendable_rows_and_a_report_without_names(store: SqliteStore, tmp_path: Path) -> None:
    apply(store, make_death(deceased=make_person(address=make_address(postcode="LS1 4AP"))))
    recipients = tmp_path / "recipients.csv"
    rows = [
        {
            "recipient_id": "dead",
            "given_names": "Margaret Anne",
            "family_name": "MORGAN",
            "date_of_birth": "1941-11-03",
            "postcode": "ls14ap",
            "nino": "",
            "nhs_number": "",
            "town": "Leeds",
        },
        {
            "recipient_id": "alive",
            "given_names": "Peter",
            "family_name": "Jones",
            "date_of_birth": "1960-01-01",
            "postcode": "LS1 4AP",
            "nino": "",
            "nhs_number": "",
            "town": "Leeds",
        },
        {
            "recipient_id": "moved",
            "given_names": "Margaret",
            "family_name": "Morgan",
            "date_of_birth": "1941-11-03",
            "postcode": "M1 1AE",
            "nino": "",
            "nhs_number": "",
            "town": "Leeds",
        },
        {
            "recipient_id": "broken",
            "given_names": "Ann",
            "family_name": "Lee",
            "date_of_birth": "03/11/1941",
            "postcode": "LS1 4AP",
            "nino": "",
            "nhs_number": "",
            "town": "Leeds",
        },
    ]
    with recipients.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    summary = filter_mailing(store, recipients, tmp_path / "send.csv", tmp_path / "report.csv")
    assert summary.recipients == 4
    assert summary.actions == {Action.SEND: 1, Action.SUPPRESS: 1, Action.HOLD: 2}
    sent = list(csv.DictReader((tmp_path / "send.csv").open()))
    assert [row["recipient_id"] for row in sent] == ["alive"]
    assert sent[0]["town"] == "Leeds"  # other columns pass through
    report_text = (tmp_path / "report.csv").read_text()
    report = {row["recipient_id"]: row for row in csv.DictReader(report_text.splitlines())}
    assert report["dead"]["action"] == "suppress" and report["dead"]["matched_by"] == "name_dob_postcode"
    assert report["moved"]["action"] == "hold"
    assert "date_of_birth" in report["broken"]["reason"]
    assert "Morgan" not in report_text and "MORGAN" not in report_text and "1941" not in report_text


def test_mailing_filter_names_missing_columns(store: SqliteStore, tmp_path: Path) -> None:
    recipients = tmp_path / "bad.csv"
    recipients.write_text("id,name\n1,x\n")
    with pytest.raises(ValueError, match="missing column"):
        filter_mailing(store, recipients, tmp_path / "s.csv", tmp_path / "r.csv")
