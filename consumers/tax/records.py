"""HMRC's own records as the tax rules see them: taxpayers and Child Benefit claim invitations."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import polars as pl

from consumers.kit.customer_records import (
    PERSON_COLUMNS_DDL,
    CustomerRegister,
    PersonRecords,
    RegisterColumn,
    choice,
    identifier,
    optional_day,
    required,
)
from consumers.kit.letters import LetterSchedule, ScheduledLetter
from consumers.kit.life_events import ENTRY_LOG_SCHEMA, Snapshot
from consumers.kit.matching import matching_indexes, name_key
from consumers.runtime import Transaction
from consumers.runtime.store import now_iso
from schemas.identifiers import normalise_nino
from schemas.models import MaritalStatus, Person

__all__ = ["SCHEMA", "TaxRecords"]

SCHEMA = (
    f"""
CREATE TABLE IF NOT EXISTS taxpayers (
    taxpayer_id       TEXT PRIMARY KEY,
{PERSON_COLUMNS_DDL}
    nino              TEXT,
    marital_status    TEXT NOT NULL,
    self_assessment   INTEGER NOT NULL,
    sa_reminders      TEXT NOT NULL CHECK (sa_reminders IN ('on', 'stopped')),
    next_reminder_on  TEXT,
    status            TEXT NOT NULL CHECK (status IN ('live', 'deceased')),
    date_of_death     TEXT,
    updated_at        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS taxpayers_nino ON taxpayers (nino);
{matching_indexes("taxpayers")}
CREATE INDEX IF NOT EXISTS taxpayers_reminder ON taxpayers (next_reminder_on) WHERE self_assessment = 1;
CREATE TABLE IF NOT EXISTS child_benefit_invitations (
    taxpayer_id          TEXT NOT NULL,
    child_key            TEXT NOT NULL,
    child_given_names    TEXT NOT NULL,
    child_family_name    TEXT NOT NULL,
    child_date_of_birth  TEXT NOT NULL,
    invite_on            TEXT NOT NULL,
    status               TEXT NOT NULL CHECK (status IN ('due', 'withdrawn')),
    updated_at           TEXT NOT NULL,
    PRIMARY KEY (taxpayer_id, child_key)
);
CREATE INDEX IF NOT EXISTS child_benefit_invitations_due ON child_benefit_invitations (invite_on) WHERE status = 'due';
"""
    + ENTRY_LOG_SCHEMA
)


_SELF_ASSESSMENT_REMINDER = LetterSchedule(
    "self-assessment-reminder",
    "taxpayers",
    "taxpayer_id",
    "next_reminder_on",
    where="self_assessment = 1",
    nino="nino",
    also=("status",),
)
_CHILD_BENEFIT_INVITATION = LetterSchedule(
    "child-benefit-invitation",
    "child_benefit_invitations i JOIN taxpayers t ON t.taxpayer_id = i.taxpayer_id",
    "t.taxpayer_id",
    "i.invite_on",
    person="t",
    where="i.status = 'due'",
    nino="t.nino",
    also=("t.status",),
    order="i.invite_on, t.taxpayer_id, i.child_key",
)


def _self_assessment(value: str) -> int:
    """Whether the taxpayer is in Self Assessment: yes or no (any case)."""
    answer = required({"self_assessment": value}, "self_assessment").lower()
    if answer not in {"yes", "no"}:
        raise ValueError("self_assessment must be yes or no")
    return int(answer == "yes")


REGISTER = CustomerRegister(
    "taxpayers",
    "taxpayer_id",
    (
        choice("marital_status", MaritalStatus),
        RegisterColumn("self_assessment", _self_assessment, pl.Int64()),
        optional_day("next_reminder_on"),
        identifier("nino", normalise_nino),
    ),
    starts_with={"sa_reminders": "on", "status": "live", "date_of_death": None},
)
"""HMRC's register file: a taxpayer starts live, with Self Assessment reminders on if they are in it."""


class TaxRecords(PersonRecords):
    """Reads and writes HMRC's tables inside one transaction."""

    register = REGISTER

    def __init__(self, transaction: Transaction) -> None:
        super().__init__(transaction, "taxpayers", "taxpayer_id", identifier=("nino", lambda ids: ids.nino))
        self.taxpayers = self.table

    # What the rules change ----------------------------------------------------------------------------------

    def mark_deceased(self, taxpayer_id: str, date_of_death: date) -> Snapshot:
        """Record the death and stop self-assessment reminders."""
        return self.taxpayers.update(
            taxpayer_id, {"status": "deceased", "date_of_death": date_of_death.isoformat(), "sa_reminders": "stopped"}
        )

    def record_partnership(self, taxpayer_id: str, status: MaritalStatus, new_surname: str | None) -> Snapshot:
        """The new marital status, and the new surname when it changes."""
        changes: dict[str, str] = {"marital_status": status.value}
        if new_surname:
            changes |= self.taxpayers.surname(taxpayer_id, new_surname)
        return self.taxpayers.update(taxpayer_id, changes)

    def marital_status(self, taxpayer_id: str) -> MaritalStatus:
        """The marital status on the record."""
        return MaritalStatus(str(self.taxpayers.fields(taxpayer_id, "marital_status")["marital_status"]))

    def record_bereavement(self, taxpayer_id: str, status: MaritalStatus) -> Snapshot:
        """Widowed or surviving civil partner from now on; returns the status as it was."""
        return self.taxpayers.update(taxpayer_id, {"marital_status": status.value})

    def invite_child_benefit_claim(self, taxpayer_id: str, child: Person, invite_on: date) -> Snapshot:
        """Plan a Child Benefit claim invitation for the child's mother; returns how to withdraw it."""
        assert child.date_of_birth is not None  # a birth entry always has it
        key = f"{name_key(child.given_names, child.family_name)}|{child.date_of_birth.isoformat()}"
        self._tx.execute(
            "INSERT INTO child_benefit_invitations VALUES (?, ?, ?, ?, ?, ?, 'due', ?) "
            "ON CONFLICT (taxpayer_id, child_key) DO UPDATE SET status = 'due', invite_on = excluded.invite_on, "
            "updated_at = excluded.updated_at",
            (
                taxpayer_id,
                key,
                child.given_names,
                child.family_name,
                child.date_of_birth.isoformat(),
                invite_on.isoformat(),
                now_iso(),
            ),
        )
        return {"child_key": key}

    def withdraw_invitation(self, taxpayer_id: str, before: Snapshot) -> None:
        """The birth entry was voided or corrected: the invitation it planned is withdrawn."""
        self._tx.execute(
            "UPDATE child_benefit_invitations SET status = 'withdrawn', updated_at = ? "
            "WHERE taxpayer_id = ? AND child_key = ?",
            (now_iso(), taxpayer_id, before["child_key"]),
        )

    # Correspondence -----------------------------------------------------------------------------------------

    def reminders_due(self, first: date, last: date) -> Iterator[tuple[ScheduledLetter, str]]:
        """Self-assessment reminders scheduled in [first, last], with each taxpayer's status."""
        for letter, row in _SELF_ASSESSMENT_REMINDER.due_in(self._tx, first, last):
            yield letter, row.text("status")

    def invitations_due(self, first: date, last: date) -> Iterator[tuple[ScheduledLetter, str]]:
        """Child Benefit claim invitations planned in [first, last], with the mother's status."""
        for letter, row in _CHILD_BENEFIT_INVITATION.due_in(self._tx, first, last):
            yield letter, row.text("status")
