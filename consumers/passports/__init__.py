"""HM Passport Office: passports cancelled at death."""

from consumers.passports.records import PassportRecords
from consumers.passports.rules import department, letters_due

__all__ = ["PassportRecords", "department", "letters_due"]
