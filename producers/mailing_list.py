"""Synthetic mailing lists drawn from a simulated population, with an answer key.

Why: the suppression service must be shown to hold back letters to people whose death was registered, and, just
as important, to keep sending to people whose death registration was voided and to living namesakes of the dead.
A list drawn from the same ``SimulatedPopulation`` as the published registrations makes that checkable: the key
says, per recipient, what the registrations say about them.

Rows look like a department's export: some carry a NINO and/or NHS number, others only name, date of birth and
address; a few are untidy (lower-case postcode without its space, a NINO written in pairs, a surname in capitals).
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass, replace
from datetime import date, timedelta
from enum import StrEnum
from typing import TextIO

from producers.simulation import SimulatedPopulation
from producers.simulation.people import SyntheticPerson, add_years, make_person
from producers.simulation.places import choose_district
from schemas.models import Sex

__all__ = [
    "MAILING_LIST_COLUMNS",
    "MAILING_LIST_KEY_COLUMNS",
    "RecipientStatus",
    "SimulatedRecipient",
    "simulate_mailing_list",
    "write_mailing_list",
    "write_mailing_list_key",
]

MAILING_LIST_COLUMNS = (
    "recipient_id",
    "given_names",
    "family_name",
    "date_of_birth",
    "postcode",
    "address_line_1",
    "address_line_2",
    "town",
    "nino",
    "nhs_number",
)
MAILING_LIST_KEY_COLUMNS = ("recipient_id", "status", "person_id")


class RecipientStatus(StrEnum):
    """What the published registrations say about a recipient (the answer key, never in the mailing file)."""

    LIVING = "LIVING"
    DECEASED = "DECEASED"
    DEATH_VOIDED = "DEATH_VOIDED"
    """A death was registered and later voided: the person is alive and must not be suppressed."""
    NAMESAKE = "NAMESAKE"
    """Alive, with the same names as a deceased person but another date of birth: must not be suppressed."""


@dataclass(frozen=True)
class SimulatedRecipient:
    """One mailing-list row plus its truth (``status``, ``person_id``), which the CSV leaves out."""

    recipient_id: str
    given_names: str
    family_name: str
    date_of_birth: str
    postcode: str
    address_line_1: str
    address_line_2: str
    town: str
    nino: str
    nhs_number: str
    status: RecipientStatus
    person_id: str

    def row(self) -> dict[str, str]:
        """The CSV row (``MAILING_LIST_COLUMNS``); absent values are empty strings."""
        return {column: getattr(self, column) for column in MAILING_LIST_COLUMNS}


def _untidy(recipient: SimulatedRecipient, rng: random.Random) -> SimulatedRecipient:
    """The same recipient as a careless export would write them; matching must see through it."""
    slip = rng.randrange(3)
    if slip == 0:
        return replace(recipient, postcode=recipient.postcode.replace(" ", "").lower())
    if slip == 1 and recipient.nino:
        nino = recipient.nino
        return replace(recipient, nino=f"{nino[:2]} {nino[2:4]} {nino[4:6]} {nino[6:8]} {nino[8]}")
    return replace(recipient, family_name=recipient.family_name.upper())


def _recipient(
    person: SyntheticPerson, status: RecipientStatus, rng: random.Random, identifier_share: float
) -> SimulatedRecipient:
    """A row for ``person``: both identifiers, one of them, or none (name, date of birth and address only)."""
    roll = rng.random() / identifier_share if identifier_share > 0 else 1.0
    nino = person.nino if roll < 0.8 else None
    nhs = person.nhs_number if roll < 0.5 or 0.8 <= roll < 1.0 else None
    lines = person.address.lines
    return SimulatedRecipient(
        recipient_id="",
        given_names=person.given_names,
        family_name=person.family_name,
        date_of_birth=person.date_of_birth.isoformat(),
        postcode=person.address.postcode,
        address_line_1=lines[0],
        address_line_2=", ".join(lines[1:]),
        town=person.address.town,
        nino=nino or "",
        nhs_number=nhs or "",
        status=status,
        person_id=person.person_id,
    )


def _background_adult(rng: random.Random, person_id: str, on: date) -> SyntheticPerson:
    """An adult who appears in no registration (most of any mailing list)."""
    age = min(100, 18 + int(rng.expovariate(1 / 30)))
    sex = Sex.FEMALE if rng.random() < 0.51 else Sex.MALE
    born = add_years(on, -age) - timedelta(days=rng.randrange(365))
    _, locality = choose_district(rng)
    return make_person(rng, person_id, sex=sex, date_of_birth=born, on=on, locality=locality)


def _namesake(rng: random.Random, person_id: str, of: SyntheticPerson, on: date) -> SyntheticPerson:
    """A living person with the same names as ``of`` but another date of birth and address."""
    born = add_years(of.date_of_birth, rng.choice((-3, -2, -1, 1, 2, 3))) + timedelta(days=rng.randrange(-40, 40))
    born = min(born, add_years(on, -18))
    if born == of.date_of_birth:
        born -= timedelta(days=400)
    _, locality = choose_district(rng)
    person = make_person(
        rng, person_id, sex=of.sex, date_of_birth=born, on=on, locality=locality, family_name=of.family_name
    )
    person.given_names = of.given_names
    return person


def simulate_mailing_list(
    population: SimulatedPopulation,
    size: int,
    seed: int = 0,
    *,
    deceased_share: float = 0.1,
    voided_share: float = 0.01,
    namesake_share: float = 0.01,
    identifier_share: float = 0.6,
    untidy_share: float = 0.05,
) -> list[SimulatedRecipient]:
    """``size`` recipients in random order: registered deaths, voided deaths, namesakes and living people.

    Shares are of ``size`` and capped by what the population holds; voided deaths are all included up to
    ``max(3, voided_share * size)`` because there are few of them and they are the case that must not go wrong.
    Living recipients come from the population's adults first, then from people who appear in no registration.
    """
    rng = random.Random(f"mailing-list/{population.seed}/{seed}")
    on = population.start
    chosen: list[SyntheticPerson] = []
    statuses: list[RecipientStatus] = []

    def take(people: list[SyntheticPerson], count: int, status: RecipientStatus) -> list[SyntheticPerson]:
        picked = rng.sample(people, min(len(people), count, size - len(chosen)))
        chosen.extend(picked)
        statuses.extend([status] * len(picked))
        return picked

    voided = take(
        population.adults(population.death_voided), max(3, round(size * voided_share)), RecipientStatus.DEATH_VOIDED
    )
    dead = take(population.adults(population.deceased), round(size * deceased_share), RecipientStatus.DECEASED)
    namesakes = [
        _namesake(rng, f"N{index:08d}", person, on)
        for index, person in enumerate(dead[: min(len(dead), round(size * namesake_share))], start=1)
    ]
    take(namesakes, len(namesakes), RecipientStatus.NAMESAKE)
    taken = {person.person_id for person in (*voided, *dead)}
    living = [person for person in population.adults(population.living) if person.person_id not in taken]
    take(living, (size - len(chosen)) // 2, RecipientStatus.LIVING)
    background = [_background_adult(rng, f"B{index:08d}", on) for index in range(1, size - len(chosen) + 1)]
    take(background, len(background), RecipientStatus.LIVING)

    recipients = [
        _recipient(person, status, rng, identifier_share) for person, status in zip(chosen, statuses, strict=True)
    ]
    rng.shuffle(recipients)
    tidy_or_not = [_untidy(row, rng) if rng.random() < untidy_share else row for row in recipients]
    return [replace(row, recipient_id=f"R{index:07d}") for index, row in enumerate(tidy_or_not, start=1)]


def write_mailing_list(recipients: list[SimulatedRecipient], out: TextIO) -> int:
    """Write the mailing-list CSV (``MAILING_LIST_COLUMNS``, no answer key); returns the number of rows."""
    writer = csv.DictWriter(out, fieldnames=MAILING_LIST_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(recipient.row() for recipient in recipients)
    return len(recipients)


def write_mailing_list_key(recipients: list[SimulatedRecipient], out: TextIO) -> int:
    """Write the answer key CSV: recipient_id, status, person_id; returns the number of rows."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(MAILING_LIST_KEY_COLUMNS)
    writer.writerows((r.recipient_id, r.status.value, r.person_id) for r in recipients)
    return len(recipients)
