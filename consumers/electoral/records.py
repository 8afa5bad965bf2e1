"""The electoral register as the electoral rules see it: electors, with no national identifiers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from consumers.kit.customer_records import (
    PERSON_COLUMNS_DDL,
    CustomerRegister,
    PersonRecords,
    optional_day,
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


_POLL_CARD = LetterSchedule("poll-card", "electors", "elector_id", "poll_card_on", also=("removed_reason",))


REGISTER = CustomerRegister(
    "electors",
    "elector_id",
    (optional_day("poll_card_on"),),
    starts_with={"status": "registered", "removed_reason": None, "removed_on": None},
)
"""The electoral register file: every elector loaded is registered."""


class ElectoralRecords(PersonRecords):
    """Reads and writes the electoral register inside one transaction."""

    register = REGISTER

    def __init__(self, transaction: Transaction) -> None:
        super().__init__(transaction, "electors", "elector_id")
        self.electors = self.table

    def remove(self, elector_id: str, reason: str, on: date) -> Snapshot:
        """Take the elector off the register."""
        return self.electors.update(
            elector_id, {"status": "removed", "removed_reason": reason, "removed_on": on.isoformat()}
        )

    def poll_cards_due(self, first: date, last: date) -> Iterator[tuple[ScheduledLetter, str | None]]:
        """Poll cards due in [first, last], with the reason an elector was removed (if they were)."""
        for letter, row in _POLL_CARD.due_in(self._tx, first, last):
            yield letter, row.optional_text("removed_reason")
