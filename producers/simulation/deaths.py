"""The death register: the deceased, mostly elderly, and the surviving spouse or civil partner the entry names.

A death is registered within 5 days. A death of a married person or civil partner usually names the surviving
spouse or civil partner (as the entry and Tell Us Once do): someone at the same address, kept in the population (so
department registers hold them, married, and the events leave them widowed). Survivors come from their own random
stream, so adding them changed no other draw of a seed.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from itertools import accumulate

from producers.simulation.calendar import date_of_death_before
from producers.simulation.corrections import revalidated
from producers.simulation.people import Cast, SyntheticPerson, Undo, add_years, clamp, make_person, sometimes
from producers.simulation.places import CARE_HOMES, HOSPICES, HOSPITALS, Locality
from schemas.models import (
    DeathDetails,
    EntryReference,
    Identifiers,
    MaritalStatus,
    Sex,
    SurvivingPartner,
    SurvivorRelationship,
)

__all__ = ["death", "record_death"]

# Share of deaths by age band (England and Wales, roughly): mostly the elderly.
_DEATH_AGE_BANDS = (
    (0, 0, 0.5),
    (1, 14, 0.2),
    (15, 44, 3.0),
    (45, 64, 13.0),
    (65, 74, 17.0),
    (75, 84, 28.0),
    (85, 94, 30.0),
    (95, 104, 8.3),
)
_DEATH_AGE_CUM = tuple(accumulate(band[2] for band in _DEATH_AGE_BANDS))


def death(
    cast: Cast, survivor_rng: random.Random, day: date, locality: Locality
) -> tuple[DeathDetails, SyntheticPerson, SyntheticPerson | None]:
    """A death registered within 5 days, mostly of an elderly person, and the survivor it names (if any)."""
    rng = cast.rng
    died = date_of_death_before(day, rng)
    low, high, _ = _DEATH_AGE_BANDS[rng.choices(range(len(_DEATH_AGE_BANDS)), cum_weights=_DEATH_AGE_CUM)[0]]
    age = rng.randint(low, high)
    sex = Sex.MALE if rng.random() < 0.5 else Sex.FEMALE
    deceased = cast.adult(sex, age, died, locality)
    deceased.marital_status = _status_at_death(rng, age, sex)
    deceased.date_of_death = died
    place = _place_of_death(rng, deceased, locality)
    identifiers = Identifiers(
        nino=sometimes(deceased.nino, 0.88, rng),
        nhs_number=sometimes(deceased.nhs_number, 0.92, rng),
        driving_licence_number=sometimes(deceased.driving_licence_number, 0.85, rng),
        passport_number=sometimes(deceased.passport_number, 0.7, rng),
    )
    details = DeathDetails(
        date_of_registration=day,
        deceased=deceased.to_person(identifiers),
        date_of_death=died,
        place_of_death=place,
        marital_status=deceased.marital_status,
    )
    survivor = _survivor(cast, survivor_rng, deceased, died, locality)
    if survivor is not None:
        details = revalidated(details, surviving_partner=survivor[1])
    cast.keep(deceased)
    return details, deceased, None if survivor is None else survivor[0]


def record_death(entry: EntryReference, deceased: SyntheticPerson, survivor: SyntheticPerson | None) -> Undo:
    """Mark ``deceased`` dead under ``entry``; return what a void of it puts back (the survivor's status too)."""
    deceased.death_entry = entry
    deceased.death_registered = True
    void_subjects: Undo = ((deceased, deceased.family_name, deceased.marital_status),)
    if survivor is not None and survivor.widowed_from is not None:
        void_subjects += ((survivor, survivor.family_name, survivor.widowed_from),)
    return void_subjects


def _survivor(
    cast: Cast, survivor_rng: random.Random, deceased: SyntheticPerson, died: date, locality: Locality
) -> tuple[SyntheticPerson, SurvivingPartner] | None:
    """The spouse or civil partner who survives a married or partnered person, when the informant names them.

    Drawn from ``survivor_rng`` only (``cast`` gives the id and keeps them). The survivor lives at the deceased's
    address, usually shares the surname, is of a similar age, and is kept in the population widowed (or surviving
    civil partner).
    """
    rng = survivor_rng
    civil = deceased.marital_status is MaritalStatus.CIVIL_PARTNER
    if not (civil or deceased.marital_status is MaritalStatus.MARRIED) or rng.random() >= 0.9:
        return None
    same_sex = rng.random() < (0.4 if civil else 0.03)
    other = Sex.MALE if deceased.sex is Sex.FEMALE else Sex.FEMALE
    sex = deceased.sex if same_sex else other
    age = clamp(deceased.age_on(died) + rng.gauss(2 if sex is Sex.FEMALE else -2, 4), 18, 104)
    survivor = make_person(
        rng,
        cast.new_person_id(),
        sex=sex,
        date_of_birth=add_years(died, -age) - timedelta(days=rng.randrange(365)),
        on=died,
        locality=locality,
        family_name=deceased.family_name if rng.random() < 0.75 else None,
        address=deceased.address,
    )
    survivor.widowed_from = MaritalStatus.CIVIL_PARTNER if civil else MaritalStatus.MARRIED
    relationship = SurvivorRelationship.CIVIL_PARTNER if civil else SurvivorRelationship.SPOUSE
    partner = SurvivingPartner(
        person=survivor.to_person(
            Identifiers(
                nino=sometimes(survivor.nino, 0.7, rng),
                nhs_number=sometimes(survivor.nhs_number, 0.3, rng),
                driving_licence_number=sometimes(survivor.driving_licence_number, 0.3, rng),
                passport_number=sometimes(survivor.passport_number, 0.2, rng),
            )
        ),
        relationship=relationship,
    )
    survivor.marital_status = partner.status
    cast.keep(survivor)
    return survivor, partner


def _status_at_death(rng: random.Random, age: int, sex: Sex) -> MaritalStatus:
    """Status at death by age and sex: elderly women are more often widowed."""
    if age < 25:
        return MaritalStatus.SINGLE
    statuses = (
        MaritalStatus.MARRIED,
        MaritalStatus.WIDOWED,
        MaritalStatus.DIVORCED,
        MaritalStatus.SINGLE,
        MaritalStatus.CIVIL_PARTNER,
        MaritalStatus.SURVIVING_CIVIL_PARTNER,
    )
    if age < 75:
        weights = (50.0, 8.0, 20.0, 21.0, 0.5, 0.5)
    elif sex is Sex.FEMALE:
        weights = (25.0, 55.0, 10.0, 9.0, 0.5, 0.5)
    else:
        weights = (50.0, 25.0, 13.0, 11.0, 0.5, 0.5)
    return rng.choices(statuses, weights=weights)[0]


def _place_of_death(rng: random.Random, deceased: SyntheticPerson, locality: Locality) -> str:
    """Where people die: hospital, home, care home, hospice or elsewhere, in England and Wales proportions."""
    where = rng.choices(("hospital", "home", "care home", "hospice", "elsewhere"), weights=(44, 28, 20, 6, 2))[0]
    if where == "hospital":
        return f"{locality.town} {HOSPITALS[len(locality.town) % len(HOSPITALS)]}"
    if where == "home":
        return f"{', '.join(deceased.address.lines)}, {locality.town}"
    if where == "care home":
        return f"{rng.choice(CARE_HOMES)} House Care Home, {locality.town}"
    if where == "hospice":
        return f"{rng.choice(HOSPICES)}, {locality.town}"
    return f"Public place, {locality.town}"
