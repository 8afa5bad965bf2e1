"""HM Passport Office's own records as its rules see them: passports and their holders."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date, timedelta

from consumers.kit.customer_records import (
    PERSON_COLUMNS_DDL,
    STORED_PERSON_COLUMNS,
    PersonColumns,
    PersonRecords,
    optional,
    optional_date,
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

_SPECIFIC = ("passport_number", "status", "cancelled_reason", "cancelled_on", "expires_on")


_PASSPORT_RENEWAL_REMINDER = LetterSchedule(
    "passport-renewal-reminder",
    "passports",
    "passport_id",
    "expires_on",
    notice=RENEWAL_NOTICE,
    also=("cancelled_reason",),
)


class PassportRecords(PersonRecords):
    """Reads and writes HMPO's passport table inside one transaction."""

    def __init__(self, transaction: Transaction) -> None:
        super().__init__(
            transaction, "passports", "passport_id", identifier=("passport_number", lambda ids: ids.passport_number)
        )
        self.passports = self.table

    def add(self, row: Mapping[str, str]) -> None:
        """One passport from a register row."""
        person = PersonColumns.from_row(row)
        expires = optional_date(row, "expires_on")
        self.passports.replace(
            person.record_id,
            ("passport_id", *STORED_PERSON_COLUMNS, *_SPECIFIC),
            (
                person.record_id,
                *person.values(),
                optional(row, "passport_number", normalise_passport_number),
                "valid",
                None,
                None,
                None if expires is None else expires.isoformat(),
            ),
        )

    def cancel(self, passport_id: str, reason: str, on: date) -> Snapshot:
        """The passport is no longer valid for travel or as proof of identity."""
        return self.passports.update(
            passport_id, {"status": "cancelled", "cancelled_reason": reason, "cancelled_on": on.isoformat()}
        )

    def renewals_due(self, first: date, last: date) -> Iterator[tuple[ScheduledLetter, str | None]]:
        """Renewal reminders due in [first, last], with the reason a passport was cancelled (if it was)."""
        for letter, row in _PASSPORT_RENEWAL_REMINDER.due_in(self._tx, first, last):
            yield letter, row.optional_text("cancelled_reason")
