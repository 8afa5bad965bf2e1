"""The clerical errors a simulated entry is first registered with, and which its correction puts right.

About 1% of entries are later corrected: the original carried a small error (a misspelt name, a wrong date of birth
or postcode) and the correction carries the whole entry as it should be. A date of birth is a factual error (the
informant's), the rest clerical (the registrar's). Every error still passes the contract's validators.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel

from producers.simulation.people import add_years
from schemas.models import (
    Address,
    BirthDetails,
    CivilPartnershipDetails,
    CorrectionKind,
    DeathDetails,
    MarriageDetails,
    Partner,
    Person,
)

__all__ = [
    "Details",
    "misspell",
    "revalidated",
    "with_error",
    "with_person_error",
    "wrong_date_of_birth",
    "wrong_postcode",
]

Details = BirthDetails | DeathDetails | MarriageDetails | CivilPartnershipDetails
_M = TypeVar("_M", bound=BaseModel)


def revalidated(model: _M, **changes: Any) -> _M:
    """A validated copy of a frozen model with some fields changed (``model_copy`` would skip validation)."""
    return type(model).model_validate({**dict(model), **changes})


def misspell(name: str, rng: random.Random) -> str:
    """The kind of slip a registrar makes: two letters swapped, one doubled or one dropped."""
    parts = name.split()
    word = parts[0]
    for _ in range(10):
        position = rng.randrange(1, max(2, len(word) - 1))
        slip = rng.randrange(3)
        if slip == 0 and len(word) > 2:
            candidate = word[:position] + word[position + 1] + word[position] + word[position + 2 :]
        elif slip == 1:
            candidate = word[:position] + word[position] + word[position:]
        else:
            candidate = word[:position] + word[position + 1 :] if len(word) > 3 else word + word[-1]
        if candidate != word and candidate.strip():
            return " ".join([candidate, *parts[1:]])
    return " ".join([word + word[-1], *parts[1:]])


def wrong_date_of_birth(born: date, latest: date, rng: random.Random) -> date:
    """A plausible wrong date: day and month transposed, a year out, or a day out; never after ``latest``."""
    candidates: list[date] = []
    if born.day <= 12 and born.day != born.month:
        candidates.append(born.replace(month=born.day, day=born.month))
    candidates += [add_years(born, -1), add_years(born, 1), born - timedelta(days=1), born + timedelta(days=1)]
    fitting = [day for day in candidates if day != born and day <= latest]
    return rng.choice(fitting) if fitting else born - timedelta(days=1)


def wrong_postcode(address: Address, rng: random.Random) -> Address:
    """The same address with a mistyped inward code (still a well-formed postcode)."""
    outward, inward = address.postcode.split()
    letters = "ABDEFGHJLNPQRSTUWXYZ"
    while True:
        wrong = (
            f"{rng.randrange(10)}{inward[1]}{rng.choice(letters)}"
            if rng.random() < 0.5
            else (f"{inward[0]}{rng.choice(letters)}{inward[2]}")
        )
        if wrong != inward:
            return revalidated(address, postcode=f"{outward} {wrong}")


def with_person_error(
    person: Person, latest: date, rng: random.Random, *, allow_dob: bool = True
) -> tuple[Person, CorrectionKind]:
    """``person`` with one small error; the kind says whether the registrar or the informant got it wrong."""
    kinds = ["given", "family", "postcode"] + (["dob"] if allow_dob and person.date_of_birth else [])
    if person.address is None:
        kinds.remove("postcode")
    kind = rng.choice(kinds)
    if kind == "given":
        return revalidated(person, given_names=misspell(person.given_names, rng)), CorrectionKind.CLERICAL_ERROR
    if kind == "family":
        return revalidated(person, family_name=misspell(person.family_name, rng)), CorrectionKind.CLERICAL_ERROR
    if kind == "postcode" and person.address is not None:
        return revalidated(person, address=wrong_postcode(person.address, rng)), CorrectionKind.CLERICAL_ERROR
    assert person.date_of_birth is not None
    wrong = wrong_date_of_birth(person.date_of_birth, latest, rng)
    return revalidated(person, date_of_birth=wrong), CorrectionKind.FACTUAL_ERROR


def with_error(details: Details, rng: random.Random) -> tuple[Details, CorrectionKind]:
    """The entry as first (wrongly) registered; the correction will carry ``details`` as they should be."""
    if isinstance(details, BirthDetails):
        if rng.random() < 0.7 or details.mother is None:
            child, kind = with_person_error(details.child, details.date_of_registration, rng, allow_dob=False)
            mother = details.mother
            if mother is not None and mother.address == details.child.address and child.address != mother.address:
                mother = revalidated(mother, address=child.address)
            return revalidated(details, child=child, mother=mother), kind
        mother, kind = with_person_error(details.mother, details.date_of_registration, rng)
        return revalidated(details, mother=mother), kind
    if isinstance(details, DeathDetails):
        deceased, kind = with_person_error(details.deceased, details.date_of_death, rng)
        return revalidated(details, deceased=deceased), kind
    if isinstance(details, MarriageDetails):
        name = rng.choice(("party_1", "party_2"))
        partner: Partner = getattr(details, name)
        person, kind = with_person_error(partner.person, details.date_of_marriage, rng)
        return revalidated(details, **{name: revalidated(partner, person=person)}), kind
    name = rng.choice(("partner_1", "partner_2"))
    partner = getattr(details, name)
    person, kind = with_person_error(partner.person, details.date_of_formation, rng)
    return revalidated(details, **{name: revalidated(partner, person=person)}), kind
