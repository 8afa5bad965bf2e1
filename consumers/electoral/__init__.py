"""Electoral registration: electors who died removed from the register, new surnames recorded."""

from consumers.electoral.records import ElectoralRecords
from consumers.electoral.rules import department, letters_due

__all__ = ["ElectoralRecords", "department", "letters_due"]
