"""The electoral register as the electoral rules see it: electors, with no national identifiers."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date

from consumers.kit.customer_records import (
    PERSON_COLUMNS,
    PERSON_COLUMNS_DDL,
    STORED_PERSON_COLUMNS,
    PersonColumns,
    RecordTable,
    optional_date,
)
from consumers.kit.letters import ADDRESSEE_COLUMNS, ScheduledLetter, scheduled_letter
from consumers.kit.life_events import ENTRY_LOG_SCHEMA, EntryLog, Snapshot
from consumers.kit.matching import PersonTable, name_key
from consumers.runtime import Transaction

__all__ = ["SCHEMA", "ElectoralRecords"]

SCHEMA = (
    f"""
CREATE TABLE IF NOT EXISTS electors (
    elector_id      TEXT PRIMARY KEY,
{PERSON_COLUMNS_DDL}
    status          TEXT NOT NULL CHECK (status IN ('registered', 'removed')),
    removed_reason  TEXT,
    removed_on      TEXT,
    poll_card_on    TEXT,
    updated_at      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS electors_name_birth ON electors (name_key, date_of_birth);
CREATE INDEX IF NOT EXISTS electors_birth_postcode ON electors (date_of_birth, postcode_key);
CREATE INDEX IF NOT EXISTS electors_name_postcode ON electors (name_key, postcode_key);
CREATE INDEX IF NOT EXISTS electors_poll_card ON electors (poll_card_on);
"""
    + ENTRY_LOG_SCHEMA
)

_SPECIFIC = ("status", "removed_reason", "removed_on", "poll_card_on")


class ElectoralRecords:
    """Reads and writes the electoral register inside one transaction."""

    record_columns = (*PERSON_COLUMNS, "poll_card_on")

    def __init__(self, transaction: Transaction) -> None:
        self._tx = transaction
        self.people = PersonTable(transaction, "electors", "elector_id")
        self.entries = EntryLog(transaction)
        self.electors = RecordTable(transaction, "electors", "elector_id")

    def add(self, row: Mapping[str, str]) -> None:
        """One elector from a register row."""
        person = PersonColumns.from_row(row)
        poll_card = optional_date(row, "poll_card_on")
        self.electors.replace(
            person.record_id,
            ("elector_id", *STORED_PERSON_COLUMNS, *_SPECIFIC),
            (
                person.record_id,
                *person.values(),
                "registered",
                None,
                None,
                None if poll_card is None else poll_card.isoformat(),
            ),
        )

    def remove(self, elector_id: str, reason: str, on: date) -> Snapshot:
        """Take the elector off the register."""
        return self.electors.update(
            elector_id, {"status": "removed", "removed_reason": reason, "removed_on": on.isoformat()}
        )

    def change_surname(self, elector_id: str, new_surname: str) -> Snapshot:
        """The elector's new surname."""
        given = str(self.electors.fields(elector_id, "given_names")["given_names"])
        return self.electors.update(elector_id, {"family_name": new_surname, "name_key": name_key(given, new_surname)})

    def restore(self, elector_id: str, before: Snapshot) -> None:
        """Put the fields an entry changed back as they were."""
        self.electors.update(elector_id, before)

    def poll_cards_due(self, first: date, last: date) -> Iterator[tuple[ScheduledLetter, str | None]]:
        """Poll cards due in [first, last], with the reason an elector was removed (if they were)."""
        rows = self._tx.execute(
            f"SELECT elector_id, poll_card_on, removed_reason, {ADDRESSEE_COLUMNS} FROM electors "  # noqa: S608
            "WHERE poll_card_on BETWEEN ? AND ? ORDER BY poll_card_on, elector_id",
            (first.isoformat(), last.isoformat()),
        )
        for row in rows:
            letter = scheduled_letter(
                row[3:], record_id=str(row[0]), kind="poll-card", due_on=date.fromisoformat(str(row[1]))
            )
            yield letter, None if row[2] is None else str(row[2])
