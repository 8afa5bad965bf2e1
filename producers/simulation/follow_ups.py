"""Corrections and voids: drawn when an entry is made, emitted when their time comes.

About 1% of entries are later corrected and about 0.15% voided, always after the entry (hours to a few days of
office time later) and with the entry's version going up by one each time; a voided entry is never corrected
afterwards. A void puts back what the entry changed about its people (a surname, a marital status, a death).
Follow-ups that would fall after the last requested event are never emitted, so a stream of a day or two has
noticeably fewer of them.
"""

from __future__ import annotations

import heapq
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from producers.simulation.calendar import follow_up_time
from producers.simulation.corrections import Details, with_error
from producers.simulation.people import Undo
from producers.simulation.rates import SimulationRates
from schemas.models import (
    CorrectionKind,
    EntryReference,
    Event,
    Register,
    RegistrationCorrected,
    RegistrationVoided,
    VoidReason,
)

__all__ = ["FollowUp", "FollowUps"]


@dataclass(order=True)
class FollowUp:
    """A correction or void waiting for its time."""

    at: datetime
    sequence: int
    entry: EntryReference = field(compare=False)
    register_office: str = field(compare=False)
    version: int = field(compare=False)
    corrected: Details | None = field(compare=False, default=None)
    correction_kind: CorrectionKind | None = field(compare=False, default=None)
    void_reason: VoidReason | None = field(compare=False, default=None)
    void_subjects: Undo = field(compare=False, default=())

    def event(self, event_id: uuid.UUID) -> Event:
        """The correction or void, applying a void's effect on the people it named."""
        common: dict[str, Any] = {
            "event_id": event_id,
            "entry": self.entry,
            "version": self.version,
            "recorded_at": self.at,
            "register_office": self.register_office,
        }
        if self.corrected is not None and self.correction_kind is not None:
            return RegistrationCorrected(**common, kind=self.correction_kind, corrected=self.corrected)
        assert self.void_reason is not None
        for person, family_name_before, status_before in self.void_subjects:
            if self.entry.register is Register.DEATH and person.death_entry == self.entry:
                person.death_voided = True
            elif self.entry.register is Register.DEATH:  # the survivor: married again, as before the death
                person.marital_status = status_before
            else:  # the marriage or partnership never happened: undo the change of name and status
                if person.family_name != family_name_before:
                    person.previous_family_names.append(person.family_name)
                person.family_name = family_name_before
                person.marital_status = status_before
        return RegistrationVoided(**common, reason=self.void_reason)


class FollowUps:
    """The follow-ups of one run, in time order (ties in the order they were drawn)."""

    def __init__(self, rng: random.Random, rates: SimulationRates) -> None:
        self._rng = rng
        self._rates = rates
        self._pending: list[FollowUp] = []
        self._sequence = 0

    def schedule(
        self, moment: datetime, entry: EntryReference, office: str, truth: Details, void_subjects: Undo
    ) -> Details:
        """Decide whether this entry is later corrected and/or voided; return the details as first registered."""
        rng = self._rng
        corrected_at = voided_at = None
        rates = self._rates
        if rng.random() < rates.correction_share:
            corrected_at = follow_up_time(moment, rates.correction_delay_office_hours, 20, 0.25, rng)
        if rng.random() < rates.void_share:
            voided_at = follow_up_time(moment, rates.void_delay_office_hours, 40, 0.5, rng)
        if corrected_at is not None and voided_at is not None and voided_at <= corrected_at:
            corrected_at = None  # a voided entry is never corrected afterwards
        original = truth
        version = 1
        if corrected_at is not None:
            original, kind = with_error(truth, rng)
            version += 1
            self._push(FollowUp(corrected_at, 0, entry, office, version, corrected=truth, correction_kind=kind))
        if voided_at is not None:
            version += 1
            if entry.register is Register.DEATH:
                reason = VoidReason.ENTERED_IN_ERROR if rng.random() < 0.95 else VoidReason.COURT_ORDER
            else:
                reason = rng.choices(tuple(VoidReason), weights=(50, 40, 10))[0]
            self._push(FollowUp(voided_at, 0, entry, office, version, void_reason=reason, void_subjects=void_subjects))
        return original

    def pop_due(self, moment: datetime) -> FollowUp | None:
        """The earliest follow-up due at or before ``moment``, taken off the queue; None when none is."""
        if self._pending and self._pending[0].at <= moment:
            return heapq.heappop(self._pending)
        return None

    def _push(self, follow_up: FollowUp) -> None:
        self._sequence += 1
        follow_up.sequence = self._sequence
        heapq.heappush(self._pending, follow_up)
