"""The cross-government letter-suppression service: a do-not-contact list every mailing run consults."""

from consumers.suppression.mailing import Action, Decision, MailingSummary, Recipient, decide, filter_mailing
from consumers.suppression.records import SuppressionList
from consumers.suppression.rules import department

__all__ = [
    "Action",
    "Decision",
    "MailingSummary",
    "Recipient",
    "SuppressionList",
    "decide",
    "department",
    "filter_mailing",
]
