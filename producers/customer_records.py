"""Simulated department registers: each department's own customers, drawn from the simulated population.

Why: a department's reactions, its matching and its letters can only be shown to be right against records that
are consistent with the registrations: the taxpayer whose death is published must be in HMRC's register under the
name, date of birth, address and NINO the registrations know, as they stood before the events (a surname changed
by a marriage in the stream is the old one here). And the awkward cases must be there too, as in any real
register, each with its answer in the key (never in the register file):

- ``CUSTOMER``: a person named in the registrations, as they are;
- ``UNKNOWN_TO_REGISTRATIONS``: a customer who appears in no registration (most of any register), including living
  namesakes of the dead (same names, another date of birth and address: their letters must still go);
- ``DUPLICATE``: a second record of the same person with the same details (and identifier): ambiguous;
- ``MOVED``: the person at an address they have left: name and date of birth match, the postcode does not
  (partial, when the event does not carry the department's identifier);
- ``MISSPELT``: the surname typed wrongly: date of birth and postcode match, the name does not (partial likewise).
  Near-duplicates in HMRC's and DWP's registers have no NINO (never given); a department's own number (driver,
  passport) is always on its record.

A near-duplicate never combines two of these slips: a record no rule could connect to its person would defeat any
department, so the simulator leaves that to real life. Coverage follows what each department holds: taxpayers
(anyone with a NINO), State Pension (66 and over), driving licences, electors (18 and over, no identifiers),
passports. Everything is drawn from one ``random.Random`` per department and seed, so the same population and seed
give the same register.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from enum import StrEnum
from typing import TextIO

from producers.simulation import SimulatedPopulation
from producers.simulation.people import SyntheticPerson, add_years, make_person
from producers.simulation.places import choose_district, make_address
from schemas.departments import REGISTER_DEPARTMENTS, record_columns
from schemas.models import MaritalStatus, Sex

__all__ = [
    "REGISTER_DEPARTMENTS",
    "REGISTER_KEY_COLUMNS",
    "RecordKind",
    "SimulatedRecord",
    "record_columns",
    "simulate_customer_records",
    "write_customer_records",
    "write_customer_records_key",
]

REGISTER_KEY_COLUMNS = ("record_id", "kind", "person_id")
_ID_PREFIX = {"tax": "TX", "pensions": "PN", "dvla": "DR", "electoral": "EL", "passports": "PP"}
_PENSION_AGE = 66


class RecordKind(StrEnum):
    """What a simulated record is, in truth (the answer key)."""

    CUSTOMER = "CUSTOMER"
    UNKNOWN_TO_REGISTRATIONS = "UNKNOWN_TO_REGISTRATIONS"
    DUPLICATE = "DUPLICATE"
    MOVED = "MOVED"
    MISSPELT = "MISSPELT"


@dataclass(frozen=True)
class SimulatedRecord:
    """One register row plus its truth (``kind``, ``person_id``), which the register file leaves out."""

    row: dict[str, str]
    kind: RecordKind
    person_id: str


# Who each department knows --------------------------------------------------------------------------------------


def _holds(department: str, person: SyntheticPerson, on: date) -> bool:
    if person.stillborn:
        return False
    age = person.age_on(on)
    if department == "tax":
        return person.nino is not None
    if department == "pensions":
        return person.nino is not None and age >= _PENSION_AGE
    if department == "dvla":
        return person.driving_licence_number is not None
    if department == "electoral":
        return age >= 18
    return person.passport_number is not None


_COVERAGE = {"tax": 0.92, "pensions": 0.96, "dvla": 0.97, "electoral": 0.86, "passports": 0.97}
"""Share of eligible people the department actually holds (the rest are unknown to it: no matching record)."""


def _as_at_start(person: SyntheticPerson) -> SyntheticPerson:
    """The person as a register extract taken before the events knows them: surname and status before marriage,
    and a survivor still married to (or the civil partner of) the person whose death the events register."""
    family_name = person.previous_family_names[0] if person.previous_family_names else person.family_name
    partnered = person.marital_status in {MaritalStatus.MARRIED, MaritalStatus.CIVIL_PARTNER}
    status = MaritalStatus.SINGLE if partnered and person.date_of_death is None else person.marital_status
    if person.widowed_from is not None:
        status = person.widowed_from
    return replace(person, family_name=family_name, marital_status=status, previous_family_names=[])


# Rows -----------------------------------------------------------------------------------------------------------


def _person_row(person: SyntheticPerson) -> dict[str, str]:
    lines = person.address.lines
    return {
        "record_id": "",
        "given_names": person.given_names,
        "family_name": person.family_name,
        "date_of_birth": person.date_of_birth.isoformat(),
        "address_line_1": lines[0],
        "address_line_2": ", ".join(lines[1:]),
        "town": person.address.town,
        "postcode": person.address.postcode,
    }


def _day_in_year(rng: random.Random, start: date) -> str:
    return (start + timedelta(days=rng.randrange(365))).isoformat()


def _registration_mark(rng: random.Random) -> str:
    letters = "ABCDEFGHJKLMNOPRSTUVWXYZ"
    age_identifier = rng.choice(("15", "65", "16", "66", "17", "67", "18", "68", "19", "69", "20", "70", "21", "71"))
    return f"{rng.choice(letters)}{rng.choice(letters)}{age_identifier}{''.join(rng.choices(letters, k=3))}"


def _specific(department: str, person: SyntheticPerson, rng: random.Random, start: date) -> dict[str, str]:
    """The department's own columns for ``person``: what it pays or issues, and when it next writes."""
    age = person.age_on(start)
    if department == "tax":
        in_self_assessment = rng.random() < (0.12 if age >= 70 else 0.22)
        return {
            "nino": person.nino or "",
            "marital_status": person.marital_status.value,
            "self_assessment": "yes" if in_self_assessment else "no",
            "next_reminder_on": _day_in_year(rng, start) if in_self_assessment else "",
        }
    if department == "pensions":
        every = rng.choices((28, 7, 14), weights=(90, 6, 4))[0]
        return {
            "nino": person.nino or "",
            "marital_status": person.marital_status.value,
            "weekly_amount_pence": str(rng.choice((16_950, 22_120)) + rng.randrange(0, 4_000, 5)),
            "paid_every_days": str(every),
            "payment_anchor_on": (start - timedelta(days=rng.randrange(every))).isoformat(),
            "paid_in": "advance" if rng.random() < 0.12 else "arrears",
            "next_statement_on": _day_in_year(rng, start),
        }
    if department == "dvla":
        years = 3 if age >= 70 else 10
        vehicles = rng.choices((0, 1, 2), weights=(35, 52, 13))[0]
        return {
            "driving_licence_number": person.driving_licence_number or "",
            "licence_valid_to": (start + timedelta(days=rng.randrange(1, 365 * years))).isoformat(),
            "vehicles": ";".join(f"{_registration_mark(rng)}:{_day_in_year(rng, start)}" for _ in range(vehicles)),
        }
    if department == "electoral":
        return {"poll_card_on": _day_in_year(rng, start)}
    return {
        "passport_number": person.passport_number or "",
        "expires_on": (start + timedelta(days=rng.randrange(1, 3650))).isoformat(),
    }


_SHARED_IDENTIFIER = {"tax": "nino", "pensions": "nino"}
"""A NINO is missing from some records (it was never given); a department's own number never is."""


def _misspelt(name: str, rng: random.Random) -> str:
    """The surname with two neighbouring letters swapped (or one doubled when that changes nothing)."""
    letters = list(name)
    for _ in range(10):
        i = rng.randrange(max(1, len(letters) - 1))
        if i + 1 < len(letters) and letters[i] != letters[i + 1] and letters[i].isalpha() and letters[i + 1].isalpha():
            letters[i], letters[i + 1] = letters[i + 1], letters[i]
            return "".join(letters)
    return name + name[-1]


def _moved(row: dict[str, str], rng: random.Random) -> dict[str, str]:
    """The same person at an address they have left (another district, so another postcode)."""
    while True:
        _, locality = choose_district(rng)
        old = make_address(rng, locality)
        if old.postcode != row["postcode"]:
            lines = old.lines
            return row | {
                "address_line_1": lines[0],
                "address_line_2": ", ".join(lines[1:]),
                "town": old.town,
                "postcode": old.postcode,
            }


def _background_person(rng: random.Random, person_id: str, on: date, department: str) -> SyntheticPerson:
    """A customer who appears in no registration, of an age the department would hold."""
    low = _PENSION_AGE if department == "pensions" else 18
    age = min(100, low + int(rng.expovariate(1 / (10 if department == "pensions" else 25))))
    sex = Sex.FEMALE if rng.random() < 0.51 else Sex.MALE
    _, locality = choose_district(rng)
    born = add_years(on, -age) - timedelta(days=rng.randrange(365))
    person = make_person(rng, person_id, sex=sex, date_of_birth=born, on=on, locality=locality)
    return person


def _namesake(rng: random.Random, person_id: str, of: SyntheticPerson, on: date, department: str) -> SyntheticPerson:
    """A living customer with the same names as ``of`` but another date of birth and address."""
    person = _background_person(rng, person_id, on, department)
    person.given_names, person.family_name, person.sex = of.given_names, of.family_name, of.sex
    if person.date_of_birth == of.date_of_birth:
        person.date_of_birth -= timedelta(days=400)
    return person


def simulate_customer_records(
    population: SimulatedPopulation,
    department: str,
    seed: int = 0,
    *,
    unknown_share: float = 0.3,
    namesake_share: float = 0.01,
    duplicate_share: float = 0.005,
    moved_share: float = 0.01,
    misspelt_share: float = 0.01,
) -> list[SimulatedRecord]:
    """``department``'s register for the people of ``population``, in record-id order, with its answer key.

    Shares are of the people the department holds; ``unknown_share`` adds that many customers who appear in no
    registration (namesakes of the dead among them).
    """
    columns = record_columns(department)
    rng = random.Random(f"register/{department}/{population.seed}/{seed}")
    start = population.start
    identifier = _SHARED_IDENTIFIER.get(department)
    eligible = [person for person in population.people if _holds(department, person, start)]
    # Survivors named by deaths draw from their own stream, so adding them left every other record as it was.
    survivor_rng = random.Random(f"register/{department}/{population.seed}/{seed}/survivors")
    held = [_as_at_start(p) for p in eligible if p.widowed_from is None and rng.random() < _COVERAGE[department]]
    survivors = [
        _as_at_start(p)
        for p in eligible
        if p.widowed_from is not None and survivor_rng.random() < _COVERAGE[department]
    ]

    def records_of(person: SyntheticPerson, rng: random.Random) -> list[SimulatedRecord]:
        row = _person_row(person) | _specific(department, person, rng, start)
        roll = rng.random()
        if roll < duplicate_share:
            return [
                SimulatedRecord(row, RecordKind.CUSTOMER, person.person_id),
                SimulatedRecord(dict(row), RecordKind.DUPLICATE, person.person_id),
            ]
        without_identifier = {identifier: ""} if identifier else {}
        if roll < duplicate_share + moved_share:
            return [SimulatedRecord(_moved(row, rng) | without_identifier, RecordKind.MOVED, person.person_id)]
        if roll < duplicate_share + moved_share + misspelt_share:
            misspelt = row | {"family_name": _misspelt(row["family_name"], rng)} | without_identifier
            return [SimulatedRecord(misspelt, RecordKind.MISSPELT, person.person_id)]
        return [SimulatedRecord(row, RecordKind.CUSTOMER, person.person_id)]

    records: list[SimulatedRecord] = []
    for person in held:
        records.extend(records_of(person, rng))
    for person in survivors:
        records.extend(records_of(person, survivor_rng))

    dead = [person for person in held if person.date_of_death is not None]
    unknown_count = round(len(held) * unknown_share)
    namesakes = round(len(held) * namesake_share)
    for index in range(1, unknown_count + 1):
        person_id = f"{_ID_PREFIX[department]}B{index:07d}"
        if index <= namesakes and dead:
            person = _namesake(rng, person_id, rng.choice(dead), start, department)
        else:
            person = _background_person(rng, person_id, start, department)
        if not _holds(department, person, start):
            continue
        row = _person_row(person) | _specific(department, person, rng, start)
        records.append(SimulatedRecord(row, RecordKind.UNKNOWN_TO_REGISTRATIONS, person.person_id))

    rng.shuffle(records)
    numbered = []
    for number, record in enumerate(records, start=1):
        row = {column: record.row.get(column, "") for column in columns}
        row["record_id"] = f"{_ID_PREFIX[department]}{number:07d}"
        numbered.append(replace(record, row=row))
    return numbered


def write_customer_records(records: Sequence[SimulatedRecord], department: str, out: TextIO) -> int:
    """Write the register CSV (no answer key); returns the number of rows."""
    writer = csv.DictWriter(out, fieldnames=record_columns(department), lineterminator="\n")
    writer.writeheader()
    writer.writerows(record.row for record in records)
    return len(records)


def write_customer_records_key(records: Sequence[SimulatedRecord], out: TextIO) -> int:
    """Write the answer key CSV: record_id, kind, person_id; returns the number of rows."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REGISTER_KEY_COLUMNS)
    writer.writerows((record.row["record_id"], record.kind.value, record.person_id) for record in records)
    return len(records)
