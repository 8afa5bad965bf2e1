"""Business rules of HM Passport Office.

- A death cancels the passport, so nobody else can travel on it or use it as proof of identity.
- A passport is matched by passport number first, then by names + date of birth + postcode; anything less certain
  waits for a reviewer, who picks the passport record, and the entry is then applied to it.
- A correction re-applies the corrected entry; a void means the person is alive: the passport is valid again.
- Letters (renewal reminders) to a holder known deceased are never sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date

from consumers.kit.letters import ScheduledLetter
from consumers.kit.life_events import LifeEvents, Snapshot
from consumers.passports.records import SCHEMA, PassportRecords
from consumers.runtime import Department
from schemas.models import DeathDetails
from schemas.topics import Register

__all__ = ["department", "letters_due"]

department = Department.declare(
    "passports",
    registers={Register.DEATH},
    schema=SCHEMA,
    records=PassportRecords,
    legal_gateway="Registration Service Act 1953 s19AA; Identity Documents Act 2010 (passport records)",
)
life = LifeEvents(department)

HOLDER_DIED = "holder died"


def cancel_passport(records: PassportRecords, passport_id: str, death: DeathDetails) -> Snapshot:
    """Cancelled from the day the death is registered."""
    return records.cancel(passport_id, HOLDER_DIED, death.date_of_registration)


life.on_death(cancel_passport, undo=PassportRecords.restore)


def letters_due(records: PassportRecords, first: date, last: date) -> Iterator[ScheduledLetter]:
    """Renewal reminders due; those to a holder whose passport was cancelled at death are marked."""
    for letter, cancelled_because in records.renewals_due(first, last):
        yield (
            replace(letter, deceased="passport cancelled: holder died") if cancelled_because == HOLDER_DIED else letter
        )
