"""HM Revenue & Customs: taxpayers marked deceased, reminders stopped, names and status updated, Child Benefit."""

from consumers.tax.records import TaxRecords
from consumers.tax.rules import department, letters_due

__all__ = ["TaxRecords", "department", "letters_due"]
