"""Entry numbers as the General Register Office gives them: from 1 in each register of each sub-district,
restarting every 1 January.

So a stream longer than a year repeats (district, register, entry number) with another year of registration. Each
seed writes in its own register number (``register_number_of``), so streams of different seeds can share one bus
without two people sharing an entry.
"""

from __future__ import annotations

from datetime import date

from producers.simulation.places import District, Locality
from schemas.models import EntryReference, Register

__all__ = ["EntryNumbers", "register_number_of"]

_MAX_INT = 2_147_483_647  # Avro int


def register_number_of(seed: int) -> int:
    """The register number a simulated run writes its entries in, in every sub-district and year.

    Why from the seed: streams of different seeds are different people in the same districts and days; were they
    in the same registers, publishing two seeds to one bus would give two people one entry. One register per run
    (real sub-districts may fill several a year) keeps numbering simple: 1, 2, 3... per register and year.
    """
    return 1 + seed % (_MAX_INT - 1)


class EntryNumbers:
    """The entry counters of one run: per district, sub-district, register and year of registration."""

    def __init__(self, seed: int) -> None:
        self._register_number = register_number_of(seed)
        self._last: dict[tuple[str, str, Register, int], int] = {}

    def next(self, district: District, locality: Locality, register: Register, day: date) -> EntryReference:
        """The next entry in the sub-district's ``register`` this year: numbering restarts every year."""
        sub_district = district.sub_district(locality)
        key = (district.name, sub_district, register, day.year)
        number = self._last.get(key, 0) + 1
        self._last[key] = number
        return EntryReference(
            registration_district=district.name,
            sub_district=sub_district,
            register=register,
            register_number=self._register_number,
            entry_number=number,
            year_of_registration=day.year,
        )
