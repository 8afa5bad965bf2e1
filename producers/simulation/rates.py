"""How much a simulated run registers: annual volumes per register, follow-up shares and delays.

Why a module of its own: the defaults are England and Wales (about 590k births, 0.4% of them stillbirths, 580k
deaths, 250k marriages and 8k civil partnerships a year, so about 4k events a day), and tests and benches change
them in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate

from producers.simulation.calendar import OFFICE_DAYS_PER_YEAR, OFFICE_SECONDS
from schemas.models import Register

__all__ = ["DEFAULT_RATES", "REGISTERS", "SimulationRates"]

REGISTERS = (Register.BIRTH, Register.DEATH, Register.MARRIAGE, Register.CIVIL_PARTNERSHIP)
"""The four registers, in the order ``SimulationRates.register_cum_weights`` weighs them."""


@dataclass(frozen=True)
class SimulationRates:
    """Annual volumes and follow-up shares (the defaults are England and Wales) and follow-up delays.

    The delays are mean office hours after the entry (exponential, capped at 20 and 40 office days). Real
    corrections can take weeks; short means let a stream of a few days carry its share of corrections and voids.
    """

    births_per_year: int = 590_000
    deaths_per_year: int = 580_000
    marriages_per_year: int = 250_000
    civil_partnerships_per_year: int = 8_000
    stillbirth_share: float = 0.004
    correction_share: float = 0.01
    void_share: float = 0.0015
    correction_delay_office_hours: float = 4.0
    void_delay_office_hours: float = 8.0

    @property
    def registrations_per_year(self) -> int:
        """All four registers together."""
        return self.births_per_year + self.deaths_per_year + self.marriages_per_year + self.civil_partnerships_per_year

    @property
    def mean_gap_seconds(self) -> float:
        """Mean office-time gap between two registrations anywhere in England and Wales."""
        return OFFICE_DAYS_PER_YEAR * OFFICE_SECONDS / self.registrations_per_year

    @property
    def register_cum_weights(self) -> tuple[int, ...]:
        """Cumulative weights of the four registers, in ``REGISTERS`` order."""
        return tuple(
            accumulate(
                (self.births_per_year, self.deaths_per_year, self.marriages_per_year, self.civil_partnerships_per_year)
            )
        )


DEFAULT_RATES = SimulationRates()
