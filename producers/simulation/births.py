"""The birth register: a child, the mother and usually a second parent, as the entry records them.

A birth is registered within 42 days; about 94% of entries name a second parent, most at the mother's address and
many sharing a surname; about 0.4% are stillbirths (``SimulationRates.stillbirth_share``). The child carries only
an NHS number; parents carry the identifiers informants usually know.
"""

from __future__ import annotations

from datetime import date

from producers.simulation.calendar import date_of_birth_before
from producers.simulation.people import Cast, SyntheticPerson, clamp, make_person, sometimes
from producers.simulation.places import HOSPITALS, Locality
from schemas.models import Address, BirthDetails, Identifiers, Sex

__all__ = ["birth"]


def birth(cast: Cast, day: date, locality: Locality, stillbirth_share: float) -> BirthDetails:
    """A birth (registered within 42 days), the mother and usually a second parent at the same address."""
    rng = cast.rng
    born = date_of_birth_before(day, rng)
    mother_age = clamp(rng.gauss(31, 5.5), 16, 48)
    second: SyntheticPerson | None = None
    mother_family_name: str | None = None
    address: Address | None = None
    if rng.random() < 0.94:
        second_sex = Sex.MALE if rng.random() < 0.98 else Sex.FEMALE
        second = cast.adult(second_sex, clamp(mother_age + rng.gauss(2.5, 4), 16, 75), born, locality)
        if rng.random() < 0.55:  # married, or sharing a surname
            mother_family_name = second.family_name
        if rng.random() < 0.9:
            address = second.address
    mother = cast.adult(Sex.FEMALE, mother_age, born, locality, family_name=mother_family_name, address=address)
    child_family_name = mother.family_name
    if second is not None:
        roll = rng.random()
        if roll < 0.04 and mother.family_name != second.family_name:
            child_family_name = f"{mother.family_name}-{second.family_name}"
        elif roll < 0.8:
            child_family_name = second.family_name
    sex = Sex.INDETERMINATE if rng.random() < 0.0002 else Sex.MALE if rng.random() < 0.512 else Sex.FEMALE
    child = make_person(
        rng,
        cast.new_person_id(),
        sex=sex,
        date_of_birth=born,
        on=day,
        locality=locality,
        family_name=child_family_name,
        address=mother.address,
    )
    child.stillborn = rng.random() < stillbirth_share
    if rng.random() < 0.023:
        place = f"{mother.address.lines[-1]}, {locality.town}"
    else:
        place = f"{locality.town} {HOSPITALS[len(locality.town) % len(HOSPITALS)]}"
    mother_ids = Identifiers(nino=sometimes(mother.nino, 0.75, rng), nhs_number=sometimes(mother.nhs_number, 0.75, rng))
    second_person = None
    if second is not None:
        second_person = second.to_person(Identifiers(nino=sometimes(second.nino, 0.5, rng)))
    details = BirthDetails(
        date_of_registration=day,
        child=child.to_person(Identifiers(nhs_number=child.nhs_number)),
        place_of_birth=place,
        stillbirth=child.stillborn,
        mother=mother.to_person(mother_ids),
        second_parent=second_person,
    )
    cast.keep(child, mother, second)
    return details
