"""Department for Work and Pensions: State Pension stopped at death with any overpayment worked out."""

from consumers.pensions.records import PaymentSchedule, PensionRecords
from consumers.pensions.rules import department, letters_due

__all__ = ["PaymentSchedule", "PensionRecords", "department", "letters_due"]
