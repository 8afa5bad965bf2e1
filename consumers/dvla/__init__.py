"""Driver and Vehicle Licensing Agency: licences cancelled at death, vehicles of deceased keepers flagged."""

from consumers.dvla.records import DvlaRecords
from consumers.dvla.rules import department, letters_due

__all__ = ["DvlaRecords", "department", "letters_due"]
