"""The electoral register as the electoral rules see it: electors, with no national identifiers."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date

from consumers.kit.customer_records import (
    PERSON_COLUMNS_DDL,
    STORED_PERSON_COLUMNS,
    PersonColumns,
    PersonRecords,
    optional_date,
)
from consumers.kit.letters import LetterSchedule, ScheduledLetter
from consumers.kit.life_events import ENTRY_LOG_SCHEMA, Snapshot
from consumers.kit.matching import matching_indexes
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
{matching_indexes("electors")}
CREATE INDEX IF NOT EXISTS electors_poll_card ON electors (poll_card_on);
"""
    + ENTRY_LOG_SCHEMA
)

_SPECIFIC = ("status", "removed_reason", "removed_on", "poll_card_on")


_POLL_CARD = LetterSchedule("poll-card", "electors", "elector_id", "poll_card_on", also=("removed_reason",))


class ElectoralRecords(PersonRecords):
    """Reads and writes the electoral register inside one transaction."""

    def __init__(self, transaction: Transaction) -> None:
        super().__init__(transaction, "electors", "elector_id")
        self.electors = self.table

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

    def poll_cards_due(self, first: date, last: date) -> Iterator[tuple[ScheduledLetter, str | None]]:
        """Poll cards due in [first, last], with the reason an elector was removed (if they were)."""
        for letter, row in _POLL_CARD.due_in(self._tx, first, last):
            yield letter, row.optional_text("removed_reason")
