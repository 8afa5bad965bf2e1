"""The marriage and civil partnership registers: two parties, their condition before, and a change of surname.

A marriage is entered up to 21 days after the ceremony (from the schedule); a civil partnership when the partners
sign. Parties are of similar age, some same-sex (more among civil partnerships); older people are more often
divorced or widowed before. After the entry the people take their new status and (sometimes) surname, which a
void puts back (the ``Undo`` returned).
"""

from __future__ import annotations

import random
from datetime import date

from producers.simulation.calendar import date_of_marriage_before
from producers.simulation.people import Cast, SyntheticPerson, Undo, clamp, occupation, sometimes
from producers.simulation.places import CHURCHES, VENUES, Locality
from schemas.models import (
    CivilPartnershipDetails,
    Identifiers,
    MaritalStatus,
    MarriageDetails,
    Partner,
    Sex,
)

__all__ = ["civil_partnership", "marriage"]


def marriage(cast: Cast, day: date, locality: Locality, office: str) -> tuple[MarriageDetails, Undo]:
    """A marriage, entered in the register up to 21 days after the ceremony (the marriage schedule)."""
    rng = cast.rng
    married = date_of_marriage_before(day, rng)
    first, second = _couple(cast, married, locality, (0.015, 0.02))
    party_1, party_2, before = _partners(cast, first, second, married, partnership=False)
    where = rng.choices(("office", "venue", "church"), weights=(22, 58, 20))[0]
    place = (
        office if where == "office" else (f"{rng.choice(VENUES if where == 'venue' else CHURCHES)}, {locality.town}")
    )
    details = MarriageDetails(
        date_of_registration=day,
        date_of_marriage=married,
        place_of_marriage=place,
        party_1=party_1,
        party_2=party_2,
    )
    return details, before


def civil_partnership(cast: Cast, day: date, locality: Locality, office: str) -> tuple[CivilPartnershipDetails, Undo]:
    """A civil partnership, registered when the partners sign (mostly opposite-sex since 2019)."""
    rng = cast.rng
    first, second = _couple(cast, day, locality, (0.1, 0.1))
    partner_1, partner_2, before = _partners(cast, first, second, day, partnership=True)
    place = office if rng.random() < 0.5 else f"{rng.choice(VENUES)}, {locality.town}"
    details = CivilPartnershipDetails(
        date_of_registration=day,
        date_of_formation=day,
        place_of_formation=place,
        partner_1=partner_1,
        partner_2=partner_2,
    )
    return details, before


def _couple(
    cast: Cast, on: date, locality: Locality, same_sex_shares: tuple[float, float]
) -> tuple[SyntheticPerson, SyntheticPerson]:
    """Two adults marrying or forming a partnership; ``same_sex_shares`` are (male-male, female-female)."""
    rng = cast.rng
    roll = rng.random()
    if roll < same_sex_shares[0]:
        sexes = (Sex.MALE, Sex.MALE)
    elif roll < same_sex_shares[0] + same_sex_shares[1]:
        sexes = (Sex.FEMALE, Sex.FEMALE)
    else:
        sexes = (Sex.MALE, Sex.FEMALE) if rng.random() < 0.5 else (Sex.FEMALE, Sex.MALE)
    first_age = clamp(rng.gauss(35, 9), 18, 90)
    first = cast.adult(sexes[0], first_age, on, locality)
    shared = first.address if rng.random() < 0.55 else None
    second = cast.adult(sexes[1], clamp(first_age + rng.gauss(0, 4), 18, 95), on, locality, address=shared)
    return first, second


def _condition(rng: random.Random, age: int, partnership: bool) -> MaritalStatus:
    """Status before the ceremony: older people are more often divorced or widowed."""
    statuses = (
        MaritalStatus.SINGLE,
        MaritalStatus.DIVORCED,
        MaritalStatus.WIDOWED,
        MaritalStatus.FORMER_CIVIL_PARTNER,
        MaritalStatus.SURVIVING_CIVIL_PARTNER,
    )
    if age < 28:
        weights = (95.0, 5.0, 0.0, 0.0, 0.0)
    elif age < 60:
        weights = (65.0, 30.0, 3.0, 1.5, 0.5)
    else:
        weights = (20.0, 55.0, 22.0, 2.0, 1.0)
    if partnership:
        weights = (weights[0], weights[1] * 0.6, weights[2] * 0.6, weights[3] * 3 + 1, weights[4] * 3)
    return rng.choices(statuses, weights=weights)[0]


def _partners(
    cast: Cast, first: SyntheticPerson, second: SyntheticPerson, on: date, partnership: bool
) -> tuple[Partner, Partner, Undo]:
    """Both parties as the entry records them; then the people take their new status and surname."""
    rng = cast.rng
    surnames_after: list[str | None] = [None, None]
    opposite = first.sex is not second.sex
    for index, (person, other) in enumerate(((first, second), (second, first))):
        roll = rng.random()
        takes_name = 0.75 if opposite and person.sex is Sex.FEMALE else 0.02 if opposite else 0.12
        if partnership:
            takes_name /= 3
        if roll < takes_name:
            surnames_after[index] = other.family_name
        elif roll < takes_name + 0.04 and person.family_name != other.family_name:
            surnames_after[index] = f"{person.family_name}-{other.family_name}"
    if surnames_after[0] is not None and surnames_after[1] is not None:
        surnames_after[1] = None  # at most one party changes to the other's name
    partners = []
    for person, surname_after in zip((first, second), surnames_after, strict=True):
        age = person.age_on(on)
        person.occupation = occupation(rng, age) if rng.random() < 0.9 else None
        identifiers = Identifiers(
            nino=sometimes(person.nino, 0.6, rng),
            nhs_number=sometimes(person.nhs_number, 0.3, rng),
            driving_licence_number=sometimes(person.driving_licence_number, 0.5, rng),
            passport_number=sometimes(person.passport_number, 0.3, rng),
        )
        partners.append(
            Partner(
                person=person.to_person(identifiers),
                condition=_condition(rng, age, partnership),
                surname_after=surname_after,
                occupation=person.occupation,
            )
        )
    before = tuple(
        (person, person.family_name, partner.condition)
        for person, partner in zip((first, second), partners, strict=True)
    )
    for person, surname_after in zip((first, second), surnames_after, strict=True):
        person.marital_status = MaritalStatus.CIVIL_PARTNER if partnership else MaritalStatus.MARRIED
        if surname_after is not None and surname_after != person.family_name:
            person.previous_family_names.append(person.family_name)
            person.family_name = surname_after
    cast.keep(first, second)
    return partners[0], partners[1], before
