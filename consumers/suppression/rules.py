"""Business rules of the cross-government letter-suppression service.

Every department's mailing run consults this list, so a death registered anywhere stops letters everywhere.

- A registered death puts the deceased on the do-not-contact list.
- A correction of a death entry updates the details on the list (or adds the entry if it was not yet there: the
  corrected entry is the whole entry as it now stands).
- A voided death entry (entered in error: the person is not dead) comes off the list, and letters may go again.
  The void is remembered even when the death has not arrived yet: a death or correction of a voided entry, however
  late, never puts the person on the list.
- An event older than what is already applied changes nothing: whatever order an entry's versions arrive in, the
  list ends as if they had arrived in version order.
"""

from __future__ import annotations

from consumers.runtime import Department, Result
from consumers.suppression.records import SCHEMA, SuppressionList
from schemas.models import DeathDetails, DeathRegistered, RegistrationCorrected, RegistrationVoided
from schemas.topics import Register

__all__ = ["department"]

department = Department.declare(
    "suppression",
    registers={Register.DEATH},
    schema=SCHEMA,
    records=SuppressionList,
    legal_gateway="Digital Economy Act 2017 s35 (public service delivery); Registration Service Act 1953 s19AA",
)


def _superseded(records: SuppressionList, event: DeathRegistered | RegistrationCorrected | RegistrationVoided) -> bool:
    applied = records.version_of(event.entry)
    return applied is not None and applied >= event.version


@department.handles(DeathRegistered)
def stop_letters_to_the_deceased(event: DeathRegistered, records: SuppressionList) -> Result:
    """A death is registered: nobody writes to this person again."""
    if records.voided(event.entry):
        return Result.no_matching_record("entry was voided; the death is not listed")
    if _superseded(records, event):
        return Result.applied("already on the list at this version")
    records.suppress(event.entry, event.version, event.death, str(event.event_id))
    return Result.applied("suppressed")


@department.handles(RegistrationCorrected)
def amend_corrected_death(event: RegistrationCorrected, records: SuppressionList) -> Result:
    """A death entry is corrected: match on the corrected details from now on."""
    if not isinstance(event.corrected, DeathDetails):
        return Result.no_matching_record("not a death entry")
    if records.voided(event.entry):
        return Result.no_matching_record("entry was voided; correction not applied")
    if _superseded(records, event):
        return Result.applied("a later version is already applied")
    records.suppress(event.entry, event.version, event.corrected, str(event.event_id))
    return Result.applied("details corrected")


@department.handles(RegistrationVoided)
def restore_letters_after_void(event: RegistrationVoided, records: SuppressionList) -> Result:
    """A death entry is voided: the person is not dead, so their letters are no longer suppressed."""
    status = records.status_of(event.entry)
    if records.voided(event.entry):
        return Result.applied("already voided") if status else Result.no_matching_record("already voided")
    records.void(event.entry, event.version, str(event.event_id))
    if status is None:
        return Result.no_matching_record("entry not on the list; the void is remembered for a late death")
    return Result.applied("un-suppressed")
