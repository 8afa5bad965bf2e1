"""The one recorded outcome of every event in every department."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Outcome", "Result"]


class Outcome(StrEnum):
    """What a department did with an event. Every event ends in exactly one of these; nothing is dropped."""

    APPLIED = "applied"
    NO_MATCHING_RECORD = "no_matching_record"
    NEEDS_REVIEW = "needs_review"
    DEAD_LETTERED = "dead_lettered"


@dataclass(frozen=True)
class Result:
    """A handler's outcome with a short note for operators (no personal data)."""

    outcome: Outcome
    note: str = ""
    candidates: tuple[str, ...] = ()
    """For needs_review: the department's own record ids a person should choose between (never personal data)."""

    @classmethod
    def applied(cls, note: str = "") -> Result:
        """The department changed its records."""
        return cls(Outcome.APPLIED, note)

    @classmethod
    def no_matching_record(cls, note: str = "") -> Result:
        """The department holds nobody this event is about."""
        return cls(Outcome.NO_MATCHING_RECORD, note)

    @classmethod
    def needs_review(cls, note: str = "", candidates: tuple[str, ...] = ()) -> Result:
        """Ambiguous or partial match: queued for a person, never applied by guess."""
        return cls(Outcome.NEEDS_REVIEW, note, candidates)
