"""HM Passport Office's own records as its rules see them: passports and their holders."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date, timedelta

from consumers.kit.customer_records import (
    PERSON_COLUMNS,
    PERSON_COLUMNS_DDL,
    STORED_PERSON_COLUMNS,
    PersonColumns,
    RecordTable,
    optional,
    optional_date,
)
from consumers.kit.letters import ADDRESSEE_COLUMNS, ScheduledLetter, scheduled_letter
from consumers.kit.life_events import ENTRY_LOG_SCHEMA, EntryLog, Snapshot
from consumers.kit.matching import PersonTable
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
CREATE INDEX IF NOT EXISTS passports_name_birth ON passports (name_key, date_of_birth);
CREATE INDEX IF NOT EXISTS passports_birth_postcode ON passports (date_of_birth, postcode_key);
CREATE INDEX IF NOT EXISTS passports_name_postcode ON passports (name_key, postcode_key);
CREATE INDEX IF NOT EXISTS passports_expiry ON passports (expires_on);
"""
    + ENTRY_LOG_SCHEMA
)

RENEWAL_NOTICE = timedelta(days=90)
"""A renewal reminder goes 90 days before the passport expires."""

_SPECIFIC = ("passport_number", "status", "cancelled_reason", "cancelled_on", "expires_on")


class PassportRecords:
    """Reads and writes HMPO's passport table inside one transaction."""

    record_columns = (*PERSON_COLUMNS, "passport_number", "expires_on")

    def __init__(self, transaction: Transaction) -> None:
        self._tx = transaction
        self.people = PersonTable(
            transaction, "passports", "passport_id", identifier=("passport_number", lambda ids: ids.passport_number)
        )
        self.entries = EntryLog(transaction)
        self.passports = RecordTable(transaction, "passports", "passport_id")

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

    def restore(self, passport_id: str, before: Snapshot) -> None:
        """Put the fields an entry changed back as they were."""
        self.passports.update(passport_id, before)

    def renewals_due(self, first: date, last: date) -> Iterator[tuple[ScheduledLetter, str | None]]:
        """Renewal reminders due in [first, last], with the reason a passport was cancelled (if it was)."""
        rows = self._tx.execute(
            f"SELECT passport_id, expires_on, cancelled_reason, {ADDRESSEE_COLUMNS} FROM passports "  # noqa: S608
            "WHERE expires_on BETWEEN ? AND ? ORDER BY expires_on, passport_id",
            ((first + RENEWAL_NOTICE).isoformat(), (last + RENEWAL_NOTICE).isoformat()),
        )
        for row in rows:
            due_on = date.fromisoformat(str(row[1])) - RENEWAL_NOTICE
            letter = scheduled_letter(row[3:], record_id=str(row[0]), kind="passport-renewal-reminder", due_on=due_on)
            yield letter, None if row[2] is None else str(row[2])
