"""Business rules of electoral registration (the electoral registration officers of England and Wales).

- A death removes the elector from the register.
- A marriage or civil partnership records the elector's new surname when they take one (otherwise it is no change
  for the register: it holds no marital status).
- The register holds no national identifiers, so an elector is matched by names + date of birth + postcode; a
  partial or ambiguous match waits for a reviewer, who picks the elector, and the entry is then applied to them.
- A correction re-applies the corrected entry; a void means the person is alive: they are back on the register.
- Letters (poll cards) to an elector known deceased are never sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date

from consumers.electoral.records import SCHEMA, ElectoralRecords
from consumers.kit.letters import ScheduledLetter
from consumers.kit.life_events import LifeEvents, Partnership, Snapshot
from consumers.runtime import Department, Result
from schemas.models import DeathDetails
from schemas.topics import Register

__all__ = ["department", "letters_due"]

department = Department.declare(
    "electoral",
    registers={Register.DEATH, Register.MARRIAGE, Register.CIVIL_PARTNERSHIP},
    schema=SCHEMA,
    records=ElectoralRecords,
    legal_gateway="Representation of the People Act 1983 s9D; Representation of the People (England and Wales) "
    "Regulations 2001 reg 35 (records of registrars of births and deaths)",
)
life = LifeEvents(department)

ELECTOR_DIED = "elector died"


def remove_elector(records: ElectoralRecords, elector_id: str, death: DeathDetails) -> Snapshot:
    """Off the register from the day the death is registered."""
    return records.remove(elector_id, ELECTOR_DIED, death.date_of_registration)


def elector_partnered(records: ElectoralRecords, elector_id: str, union: Partnership) -> Snapshot | Result:
    """The new surname, when the elector takes one (nothing else about a marriage is on the register)."""
    if not union.new_surname:
        return Result.no_matching_record("no change for the electoral register")
    return records.change_surname(elector_id, union.new_surname)


life.on_death(remove_elector, undo=ElectoralRecords.restore)
life.on_partnership(elector_partnered, undo=ElectoralRecords.restore)


def letters_due(records: ElectoralRecords, first: date, last: date) -> Iterator[ScheduledLetter]:
    """Poll cards due; those to an elector removed because they died are marked."""
    for letter, removed_because in records.poll_cards_due(first, last):
        yield (
            replace(letter, deceased="removed from the register: elector died")
            if removed_because == ELECTOR_DIED
            else letter
        )
