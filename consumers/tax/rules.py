"""Business rules of HM Revenue & Customs: income tax, self assessment and Child Benefit.

- A death marks the taxpayer deceased from the date of death and stops self-assessment reminders.
- A marriage or civil partnership records the new marital status, and the new surname when the taxpayer takes one.
- A death that names the deceased's surviving spouse or civil partner records that taxpayer as widowed (or surviving
  civil partner); the survivor is matched as carefully as the deceased, and a void restores their previous status.
- A birth plans a Child Benefit claim invitation to the mother. Stillbirths never reach HMRC (its data-sharing
  agreement excludes them), so no invitation can follow one.
- A taxpayer is matched by NINO first, then by names + date of birth + postcode; anything less certain waits for
  a reviewer, who picks the taxpayer, and the entry is then applied to that record.
- A correction re-applies the corrected entry (a corrected date of death or surname, or another taxpayer when the
  corrected details match someone else); a void puts back exactly what the entry changed (the taxpayer is live
  again and reminders resume; an invitation is withdrawn).
- Letters (self-assessment reminders, Child Benefit invitations) to a taxpayer known deceased are never sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from itertools import chain

from consumers.kit.letters import ScheduledLetter
from consumers.kit.life_events import Bereavement, LifeEvents, Partnership, Snapshot
from consumers.runtime import Department, Result
from consumers.tax.records import SCHEMA, TaxRecords
from schemas.models import BirthDetails, DeathDetails
from schemas.topics import Register

__all__ = ["department", "letters_due"]

department = Department.declare(
    "tax",
    registers={Register.BIRTH, Register.DEATH, Register.MARRIAGE, Register.CIVIL_PARTNERSHIP},
    schema=SCHEMA,
    records=TaxRecords,
    legal_gateway="Registration Service Act 1953 s19AA; Commissioners for Revenue and Customs Act 2005 s5; "
    "Social Security Contributions and Benefits Act 1992 Part IX (Child Benefit)",
)
life = LifeEvents(department)


def taxpayer_died(records: TaxRecords, taxpayer_id: str, death: DeathDetails) -> Snapshot:
    """Deceased from the date of death: no more self-assessment reminders."""
    return records.mark_deceased(taxpayer_id, death.date_of_death)


def taxpayer_partnered(records: TaxRecords, taxpayer_id: str, union: Partnership) -> Snapshot:
    """Married or civil partner from now on, under the new surname if they take one."""
    return records.record_partnership(taxpayer_id, union.status, union.new_surname)


def taxpayer_bereaved(records: TaxRecords, taxpayer_id: str, bereaved: Bereavement) -> Snapshot | Result:
    """Widowed or surviving civil partner from the death of their spouse or civil partner."""
    if records.marital_status(taxpayer_id) is bereaved.status:
        return Result.no_matching_record("status already recorded; no change")
    return records.record_bereavement(taxpayer_id, bereaved.status)


def child_born(records: TaxRecords, taxpayer_id: str, birth: BirthDetails) -> Snapshot:
    """Invite the mother to claim Child Benefit for the child."""
    return records.invite_child_benefit_claim(taxpayer_id, birth.child, birth.date_of_registration)


life.on_death(taxpayer_died, undo=TaxRecords.restore)
life.on_bereavement(taxpayer_bereaved, undo=TaxRecords.restore)
life.on_partnership(taxpayer_partnered, undo=TaxRecords.restore)
life.on_birth(child_born, undo=TaxRecords.withdraw_invitation)


def letters_due(records: TaxRecords, first: date, last: date) -> Iterator[ScheduledLetter]:
    """Self-assessment reminders and Child Benefit invitations due; those to a deceased taxpayer are marked."""
    for letter, status in chain(records.reminders_due(first, last), records.invitations_due(first, last)):
        yield replace(letter, deceased="taxpayer deceased") if status == "deceased" else letter
