"""HM Passport Office's own records as its rules see them: passports and their holders."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

from consumers.kit.customer_records import (
    PERSON_COLUMNS_DDL,
    CustomerRegister,
    PersonRecords,
    identifier,
    optional_day,
)
from consumers.kit.letters import LetterSchedule, ScheduledLetter
from consumers.kit.life_events import ENTRY_LOG_SCHEMA, Snapshot
from consumers.kit.matching import matching_indexes
from consumers.runtime import Transaction
from schemas.identifiers import normalise_passport_number

__all__ = ["SCHEMA", "PassportRecords"]

SCHEMA = (
    f"""
CREATE TABLE IF NOT EXISTS passports (
    passport_id       TEXT PRIMARY KEY,
{PERSON_COLUMNS_DDL}
    passport_number   TEXT,
    status            TEXT NOT NULL CHECK (status IN ('valid', 'cancelled')),
    cancelled_reason  TEXT,
    cancelled_on      TEXT,
    expires_on        TEXT,
    updated_at        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS passports_number ON passports (passport_number);
{matching_indexes("passports")}
CREATE INDEX IF NOT EXISTS passports_expiry ON passports (expires_on);
"""
    + ENTRY_LOG_SCHEMA
)

RENEWAL_NOTICE = timedelta(days=90)
"""A renewal reminder goes 90 days before the passport expires."""


_PASSPORT_RENEWAL_REMINDER = LetterSchedule(
    "passport-renewal-reminder",
    "passports",
    "passport_id",
    "expires_on",
    notice=RENEWAL_NOTICE,
    also=("cancelled_reason",),
)


REGISTER = CustomerRegister(
    "passports",
    "passport_id",
    (optional_day("expires_on"), identifier("passport_number", normalise_passport_number)),
    starts_with={"status": "valid", "cancelled_reason": None, "cancelled_on": None},
)
"""HMPO's passport register file: every passport loaded is valid."""


class PassportRecords(PersonRecords):
    """Reads and writes HMPO's passport table inside one transaction."""

    register = REGISTER

    def __init__(self, transaction: Transaction) -> None:
        super().__init__(
            transaction, "passports", "passport_id", identifier=("passport_number", lambda ids: ids.passport_number)
        )
        self.passports = self.table

    def cancel(self, passport_id: str, reason: str, on: date) -> Snapshot:
        """The passport is no longer valid for travel or as proof of identity."""
        return self.passports.update(
            passport_id, {"status": "cancelled", "cancelled_reason": reason, "cancelled_on": on.isoformat()}
        )

    def renewals_due(self, first: date, last: date) -> Iterator[tuple[ScheduledLetter, str | None]]:
        """Renewal reminders due in [first, last], with the reason a passport was cancelled (if it was)."""
        for letter, row in _PASSPORT_RENEWAL_REMINDER.due_in(self._tx, first, last):
            yield letter, row.optional_text("cancelled_reason")
