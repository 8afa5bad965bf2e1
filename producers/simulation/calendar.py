"""The register offices' calendar: open days and office hours, registration lags, and "never after today".

Why a module of its own: every time in a simulated stream comes from here, so the rules a reader checks against
the law and the office week (births registered within 42 days, deaths within 5, marriages entered from the
schedule within 21; offices open Monday to Saturday, 09:00-17:00 UTC, closed on 1 January and 25-26 December) are
written once. Registrations are never dated after today (the contract refuses them): a clock that would pass today
raises ``SimulationReachesToday``. Years matter to entry numbers, which restart every 1 January (``entries``).
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta

__all__ = [
    "DEFAULT_START",
    "OFFICE_DAYS_PER_YEAR",
    "OFFICE_SECONDS",
    "OfficeClock",
    "SimulationReachesToday",
    "after_office_time",
    "date_of_birth_before",
    "date_of_death_before",
    "date_of_marriage_before",
    "follow_up_time",
    "is_open",
    "next_open_day",
    "opening",
]

DEFAULT_START = date(2025, 1, 6)
"""A fixed Monday, so a seed alone decides the stream (never today's date)."""

OFFICE_SECONDS = 8 * 3600
OFFICE_DAYS_PER_YEAR = 365 - 52 - 3
_OPENING = time(9)
_CLOSED_DAYS = frozenset({(1, 1), (12, 25), (12, 26)})


class SimulationReachesToday(ValueError):
    """The simulated clock would pass today: the contract refuses registrations dated in the future."""

    def __init__(self, today: date) -> None:
        super().__init__(
            f"the simulated registrations would be dated after today ({today.isoformat()}): "
            "give an earlier start (--start) or fewer events (--count)"
        )


def is_open(day: date) -> bool:
    """Register offices open Monday to Saturday, except 1 January and 25-26 December."""
    return day.weekday() != 6 and (day.month, day.day) not in _CLOSED_DAYS


def next_open_day(day: date) -> date:
    """``day`` itself when offices open on it, else the next day they do."""
    while not is_open(day):
        day += timedelta(days=1)
    return day


def opening(day: date) -> datetime:
    """When offices open on ``day`` (09:00 UTC)."""
    return datetime.combine(day, _OPENING, tzinfo=UTC)


def after_office_time(moment: datetime, seconds: float) -> datetime:
    """``moment`` (in office hours) plus ``seconds`` of office time: nights, Sundays and holidays do not count."""
    day = moment.date()
    offset = (moment - opening(day)).total_seconds() + seconds
    while offset >= OFFICE_SECONDS:
        offset -= OFFICE_SECONDS
        day = next_open_day(day + timedelta(days=1))
    return opening(day) + timedelta(seconds=offset)


class OfficeClock:
    """A run's clock: it moves through office hours of open days only, and never past today."""

    def __init__(self, start: date) -> None:
        self._day = next_open_day(start)
        self._last_day = datetime.now(UTC).date()
        if self._day > self._last_day:
            raise SimulationReachesToday(self._last_day)
        self._offset = 0.0

    def advance(self, seconds: float) -> datetime:
        """The moment ``seconds`` of office time later; raises ``SimulationReachesToday`` past today."""
        self._offset += seconds
        while self._offset >= OFFICE_SECONDS:
            self._offset -= OFFICE_SECONDS
            self._day = next_open_day(self._day + timedelta(days=1))
            if self._day > self._last_day:
                raise SimulationReachesToday(self._last_day)
        return opening(self._day) + timedelta(seconds=self._offset)


def follow_up_time(
    moment: datetime, mean_office_hours: float, cap_office_days: int, minimum_hours: float, rng: random.Random
) -> datetime:
    """When a correction or void of an entry made at ``moment`` is made: exponential office hours, capped."""
    hours = min(rng.expovariate(1 / mean_office_hours), cap_office_days * 8) + minimum_hours
    return after_office_time(moment, hours * 3600)


def date_of_birth_before(registered: date, rng: random.Random) -> date:
    """A birth registered on ``registered``: within 42 days before, mostly the first fortnight."""
    return registered - timedelta(days=min(42, int(rng.triangular(0, 43, 9))))


def date_of_death_before(registered: date, rng: random.Random) -> date:
    """A death registered on ``registered``: within 5 days before, mostly one to three."""
    return registered - timedelta(days=rng.choices(range(6), weights=(6, 26, 24, 20, 14, 10))[0])


def date_of_marriage_before(registered: date, rng: random.Random) -> date:
    """A marriage entered on ``registered`` from its schedule: up to 21 days after the ceremony."""
    return registered - timedelta(days=rng.choices(range(22), weights=(10,) + (8,) * 7 + (2,) * 14)[0])
