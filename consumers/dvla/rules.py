"""Business rules of the Driver and Vehicle Licensing Agency.

- A death cancels the driving licence (so it cannot be used or renewed) and flags every vehicle whose registered
  keeper died: the vehicle's record needs a new keeper, and no tax reminder goes to the deceased.
- A marriage or civil partnership records the driver's new surname when they take one (otherwise it is no change for
  DVLA). DVLA holds no marital status and receives no occupations (its data-sharing agreement removes them).
- A driver is matched by driving licence number first, then by names + date of birth + postcode; anything less
  certain waits for a reviewer, who picks the driver, and the entry is then applied to that record.
- A correction re-applies the corrected entry; a void means the person is alive: the licence is valid again and
  their vehicles are unflagged.
- Letters (licence renewal and vehicle tax reminders) to a driver or keeper known deceased are never sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date

from consumers.dvla.records import SCHEMA, DvlaRecords
from consumers.kit.letters import ScheduledLetter
from consumers.kit.life_events import LifeEvents, Partnership, Snapshot
from consumers.runtime import Department, Result
from schemas.models import DeathDetails
from schemas.topics import Register

__all__ = ["department", "letters_due"]

department = Department.declare(
    "dvla",
    registers={Register.DEATH, Register.MARRIAGE, Register.CIVIL_PARTNERSHIP},
    schema=SCHEMA,
    records=DvlaRecords,
    legal_gateway="Registration Service Act 1953 s19AA; Road Traffic Act 1988 s99; "
    "Vehicle Excise and Registration Act 1994 s22",
)
life = LifeEvents(department)

HOLDER_DIED = "holder died"


def driver_died(records: DvlaRecords, driver_id: str, death: DeathDetails) -> Snapshot:
    """Cancel the licence from the day the death is registered; flag the vehicles they keep."""
    before = records.cancel_licence(driver_id, HOLDER_DIED, death.date_of_registration)
    return {"driver": before, "flagged_vehicles": records.flag_vehicles_of_deceased_keeper(driver_id)}


def death_voided(records: DvlaRecords, driver_id: str, before: Snapshot) -> None:
    """The driver is alive: the licence is valid again and their vehicles are no longer flagged."""
    records.restore(driver_id, before["driver"])
    records.unflag_vehicles(before["flagged_vehicles"])


def driver_partnered(records: DvlaRecords, driver_id: str, union: Partnership) -> Snapshot | Result:
    """The new surname, when the driver takes one (nothing else about a marriage concerns DVLA)."""
    if not union.new_surname:
        return Result.no_matching_record("no change for DVLA")
    return records.change_surname(driver_id, union.new_surname)


life.on_death(driver_died, undo=death_voided)
life.on_partnership(driver_partnered, undo=DvlaRecords.restore)


def letters_due(records: DvlaRecords, first: date, last: date) -> Iterator[ScheduledLetter]:
    """Renewal and vehicle tax reminders due; those to a driver or keeper who died are marked."""
    for letter, cancelled_because in records.renewals_due(first, last):
        yield replace(letter, deceased="licence cancelled: holder died") if cancelled_because == HOLDER_DIED else letter
    for letter, keeper_died in records.vehicle_tax_reminders_due(first, last):
        yield replace(letter, deceased="registered keeper died") if keeper_died else letter
