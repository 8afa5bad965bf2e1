"""Business rules of the Department for Work and Pensions: the State Pension.

- A death stops the State Pension: nothing is payable for the days after the date of death. Payments already made
  by the day the death is registered (four-weekly in arrears for most, some in advance: the schedule is in the
  pensioner's record) may cover days after it; what they paid for those days is an overpayment to recover from
  the estate.
- A marriage or civil partnership records the new marital status (and the new surname when there is one).
- A death that names the deceased's surviving spouse or civil partner records that pensioner as widowed (or
  surviving civil partner), matched as carefully as the deceased; a void restores their previous status.
- A pensioner is matched by NINO first, then by names + date of birth + postcode; anything less certain waits for a
  reviewer, who picks the pensioner, and the entry is then applied to that record.
- A correction re-applies the corrected entry: a corrected date of death recomputes the overpayment. A void means
  the person is alive: the pension is in payment again and any overpayment recovery is cancelled.
- Letters (annual pension statements) to a pensioner known deceased are never sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date

from consumers.kit.letters import ScheduledLetter
from consumers.kit.life_events import Bereavement, LifeEvents, Partnership, Snapshot
from consumers.pensions.records import SCHEMA, PensionRecords
from consumers.runtime import Department, Result
from schemas.models import DeathDetails
from schemas.topics import Register

__all__ = ["department", "letters_due"]

department = Department.declare(
    "pensions",
    registers={Register.DEATH, Register.MARRIAGE, Register.CIVIL_PARTNERSHIP},
    schema=SCHEMA,
    records=PensionRecords,
    legal_gateway="Social Security Administration Act 1992 s125; "
    "Social Security (Notification of Changes of Circumstances) Regulations 2010",
)
life = LifeEvents(department)


def stop_state_pension(records: PensionRecords, pensioner_id: str, death: DeathDetails) -> Snapshot:
    """Entitled up to the date of death; anything paid (by registration day) for later days is an overpayment."""
    overpaid = records.schedule(pensioner_id).paid_for_days_after(
        death.date_of_death, payments_until=death.date_of_registration
    )
    return records.stop_payments(pensioner_id, death.date_of_death, overpaid)


def pensioner_partnered(records: PensionRecords, pensioner_id: str, union: Partnership) -> Snapshot:
    """Married or civil partner from now on."""
    return records.record_partnership(pensioner_id, union.status, union.new_surname)


def pensioner_bereaved(records: PensionRecords, pensioner_id: str, bereaved: Bereavement) -> Snapshot | Result:
    """Widowed or surviving civil partner from the death of their spouse or civil partner."""
    if records.marital_status(pensioner_id) is bereaved.status:
        return Result.no_matching_record("status already recorded; no change")
    return records.record_bereavement(pensioner_id, bereaved.status)


life.on_death(stop_state_pension, undo=PensionRecords.restart_payments)
life.on_bereavement(pensioner_bereaved, undo=PensionRecords.restore)
life.on_partnership(pensioner_partnered, undo=PensionRecords.restore)


def letters_due(records: PensionRecords, first: date, last: date) -> Iterator[ScheduledLetter]:
    """Annual statements due; those to a pensioner whose pension stopped at death are marked."""
    for letter, status in records.statements_due(first, last):
        yield replace(letter, deceased="pension stopped: pensioner died") if status == "stopped" else letter
