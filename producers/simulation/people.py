"""Synthetic people for simulations: names and identifiers that pass the contract's validators, and the cast of
one simulated run (who its entries name, with their ids).

Why a module of its own: the registration simulator, the mailing-list generator and the departments' customer
records must all draw people the same way, so that a department's record of someone matches what a register
office published about them. Nothing here is real personal data: names come from Faker's en_GB word lists,
identifiers are random but well formed; addresses come from ``places``.

Every draw goes through the ``random.Random`` passed in, so a seed fixes the output (for a given Faker version,
whose word lists are used as data only; Faker's own generator is never called).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache
from itertools import accumulate

from faker.providers.person.en_GB import Provider as _FakerPersonEnGb

from producers.simulation.places import Locality, make_address, words
from schemas.identifiers import nhs_check_digit
from schemas.models import Address, EntryReference, Identifiers, MaritalStatus, Person, Sex

__all__ = [
    "Cast",
    "SyntheticPerson",
    "Undo",
    "add_years",
    "clamp",
    "driving_licence_number",
    "make_person",
    "nhs_number",
    "nino",
    "occupation",
    "passport_number",
    "random_family_name",
    "random_given_names",
    "sometimes",
]

_OCCUPATIONS = words(
    "Teacher, Nurse, Software Developer, Accountant, Electrician, Plumber, Carpenter, Retail Assistant, "
    "Shop Manager, Care Worker, Police Officer, Firefighter, Paramedic, Doctor, Pharmacist, Engineer, "
    "Civil Servant, Solicitor, Chef, Hairdresser, Lorry Driver, Bus Driver, Warehouse Operative, "
    "Administrator, Receptionist, Graphic Designer, Marketing Manager, Sales Executive, Student, Mechanic, "
    "Farmer, Gardener, Architect, Dental Nurse, Social Worker, Teaching Assistant, Bank Clerk, "
    "Project Manager, Research Scientist, Musician, Photographer, Estate Agent, Baker, Builder, Cleaner, "
    "Veterinary Nurse, Journalist, Postal Worker, Retired, Unemployed"
)
# NINO prefixes: first letter never D F I Q U V, second never D F I O Q U V; some pairs never issued and some
# (CR, FY, MW, NC, PP, PY, PZ) kept for administrative use, so a realistic generator avoids them all.
_NINO_FIRST = "ABCEGHJKLMNOPRSTWXYZ"
_NINO_SECOND = "ABCEGHJKLMNPRSTWXYZ"
_NINO_EXCLUDED = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ", "CR", "FY", "MW", "NC", "PP", "PY", "PZ"})
_NINO_PREFIXES = tuple(a + b for a in _NINO_FIRST for b in _NINO_SECOND if a + b not in _NINO_EXCLUDED)


@cache
def _names() -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[float, ...]]:
    """Faker's en_GB first names (unweighted) and surnames with their frequency weights."""
    surnames: dict[str, float] = dict(_FakerPersonEnGb.last_names)
    return (
        tuple(_FakerPersonEnGb.first_names_female),
        tuple(_FakerPersonEnGb.first_names_male),
        tuple(surnames),
        tuple(accumulate(surnames.values())),
    )


@dataclass
class SyntheticPerson:
    """The truth about one simulated person; events carry a projection of it (some identifiers left out).

    Mutable because life goes on during a simulation: marriage changes a surname and status, a registered death
    marks the person deceased, and a voided death brings them back.
    """

    person_id: str
    given_names: str
    family_name: str
    date_of_birth: date
    sex: Sex
    address: Address
    nino: str | None = None
    nhs_number: str | None = None
    driving_licence_number: str | None = None
    passport_number: str | None = None
    marital_status: MaritalStatus = MaritalStatus.SINGLE
    occupation: str | None = None
    previous_family_names: list[str] = field(default_factory=list)
    stillborn: bool = False
    date_of_death: date | None = None
    death_entry: EntryReference | None = None
    death_registered: bool = False
    death_voided: bool = False
    widowed_from: MaritalStatus | None = None
    """MARRIED or CIVIL_PARTNER when a registered death of their spouse or civil partner names them as survivor (the
    status before it, and again if that death is voided)."""

    @property
    def is_deceased(self) -> bool:
        """Dead as far as the registrations published so far say (a voided death does not count)."""
        return self.stillborn or (self.death_registered and not self.death_voided)

    @property
    def identifiers(self) -> Identifiers:
        """Every identifier this person holds."""
        return Identifiers(
            nino=self.nino,
            nhs_number=self.nhs_number,
            driving_licence_number=self.driving_licence_number,
            passport_number=self.passport_number,
        )

    def age_on(self, day: date) -> int:
        """Whole years of age on ``day``."""
        born = self.date_of_birth
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))

    def to_person(self, identifiers: Identifiers | None = None, *, with_address: bool = True) -> Person:
        """The person as an entry records them; ``identifiers`` defaults to all of theirs."""
        return Person(
            given_names=self.given_names,
            family_name=self.family_name,
            date_of_birth=self.date_of_birth,
            sex=self.sex,
            identifiers=self.identifiers if identifiers is None else identifiers,
            address=self.address if with_address else None,
        )


def add_years(day: date, years: int) -> date:
    """``day`` moved by whole years; 29 February becomes 28 February in common years."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def random_given_names(rng: random.Random, sex: Sex) -> str:
    """One to three given names, usually two."""
    female, male, _, _ = _names()
    pool = female if sex is Sex.FEMALE else male if sex is Sex.MALE else rng.choice((female, male))
    count = rng.choices((1, 2, 3), weights=(35, 58, 7))[0]
    names: list[str] = []
    while len(names) < count:
        name = rng.choice(pool)
        if name not in names:
            names.append(name)
    return " ".join(names)


def random_family_name(rng: random.Random) -> str:
    """A surname weighted by its frequency in Faker's en_GB list."""
    _, _, surnames, cum_weights = _names()
    return rng.choices(surnames, cum_weights=cum_weights)[0]


def nino(rng: random.Random) -> str:
    """A National Insurance number with an issued-looking prefix, e.g. ``JK123456B``."""
    return f"{rng.choice(_NINO_PREFIXES)}{rng.randrange(1_000_000):06d}{rng.choice('ABCD')}"


def nhs_number(rng: random.Random) -> str:
    """A 10-digit NHS number in an England and Wales range (400-499, 600-708) with its modulus 11 check digit."""
    while True:
        first_three = rng.randrange(400, 500) if rng.random() < 0.5 else rng.randrange(600, 709)
        first_nine = f"{first_three}{rng.randrange(1_000_000):06d}"
        check = nhs_check_digit(first_nine)
        if check is not None:
            return f"{first_nine}{check}"


def driving_licence_number(rng: random.Random, family_name: str, given_names: str, born: date, sex: Sex) -> str:
    """The DVLA driver number: surname (5, padded with 9), decade, month (+50 for women), day, year digit,
    two initials (padded with 9), the usual 9, and two check characters (random here)."""
    letters = re.sub(r"[^A-Z]", "", family_name.upper())
    if letters.startswith("MAC"):
        letters = "MC" + letters[3:]
    surname = (letters[:5]).ljust(5, "9")
    month = born.month + (50 if sex is Sex.FEMALE else 0)
    initials = "".join(name[0] for name in given_names.upper().split()[:2]).ljust(2, "9")
    check = "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(2))
    return f"{surname}{born.year % 100 // 10}{month:02d}{born.day:02d}{born.year % 10}{initials}9{check}"


def passport_number(rng: random.Random) -> str:
    """A 9-digit UK passport number."""
    return f"{rng.randrange(100_000_000, 1_000_000_000)}"


def occupation(rng: random.Random, age: int) -> str:
    """An occupation plausible for ``age``."""
    if age >= 68 and rng.random() < 0.8:
        return "Retired"
    if age < 23 and rng.random() < 0.5:
        return "Student"
    return rng.choice(_OCCUPATIONS[:-2])


def make_person(
    rng: random.Random,
    person_id: str,
    *,
    sex: Sex,
    date_of_birth: date,
    on: date,
    locality: Locality,
    family_name: str | None = None,
    address: Address | None = None,
) -> SyntheticPerson:
    """A person born on ``date_of_birth`` with the identifiers someone of their age on ``on`` usually holds.

    Everyone gets an NHS number; a NINO from 16; a driving licence for about three quarters of adults (fewer of
    the very old); a passport for about three quarters of people.
    """
    given_names = random_given_names(rng, sex)
    surname = family_name or random_family_name(rng)
    age = on.year - date_of_birth.year - ((on.month, on.day) < (date_of_birth.month, date_of_birth.day))
    person = SyntheticPerson(
        person_id=person_id,
        given_names=given_names,
        family_name=surname,
        date_of_birth=date_of_birth,
        sex=sex,
        address=address or make_address(rng, locality),
        nhs_number=nhs_number(rng),
    )
    if age >= 16:
        person.nino = nino(rng)
    licence_share = 0.0 if age < 17 else 0.35 if age >= 85 else 0.6 if age >= 70 else 0.78
    if rng.random() < licence_share:
        person.driving_licence_number = driving_licence_number(rng, surname, given_names, date_of_birth, sex)
    if age >= 1 and rng.random() < 0.75:
        person.passport_number = passport_number(rng)
    return person


Undo = tuple[tuple[SyntheticPerson, str, MaritalStatus], ...]
"""What a void puts back: each person named, with their surname and marital status before the entry."""


def sometimes(value: str | None, share: float, rng: random.Random) -> str | None:
    """``value`` in about ``share`` of entries: informants do not always know every number."""
    return value if value is not None and rng.random() < share else None


def clamp(value: float, low: int, high: int) -> int:
    """``value`` rounded into ``low``..``high`` (ages drawn from a normal distribution stay plausible)."""
    return max(low, min(high, round(value)))


class Cast:
    """Everyone one simulated run names: person ids in order of appearance, and the people when they are kept.

    ``keep_people`` only decides whether people are kept; it never draws, so a population and a plain stream of the
    same seed carry identical events.
    """

    def __init__(self, rng: random.Random, *, keep_people: bool = False) -> None:
        self.rng = rng
        self.people: list[SyntheticPerson] = []
        self._keep_people = keep_people
        self._person_count = 0

    def new_person_id(self) -> str:
        """The next person id (``P00000001``...), in the order people appear in the run."""
        self._person_count += 1
        return f"P{self._person_count:08d}"

    def keep(self, *people: SyntheticPerson | None) -> None:
        """Remember ``people`` (when the run keeps people) as the registrations leave them."""
        if self._keep_people:
            self.people.extend(person for person in people if person is not None)

    def adult(
        self,
        sex: Sex,
        age: int,
        on: date,
        locality: Locality,
        *,
        family_name: str | None = None,
        address: Address | None = None,
    ) -> SyntheticPerson:
        """An adult of ``age`` on ``on``, born on a random day of that year of age."""
        born = add_years(on, -age) - timedelta(days=self.rng.randrange(365))
        return make_person(
            self.rng,
            self.new_person_id(),
            sex=sex,
            date_of_birth=born,
            on=on,
            locality=locality,
            family_name=family_name,
            address=address,
        )
