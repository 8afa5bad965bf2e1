"""The simulator's output, pinned: the same seed gives byte-for-byte the same events, people and files.

Why: replaying a failing run needs only its seed, and restructuring the simulator (issue 10 item 3 split one class
into calendar, people, error injection and per-register builders) must not move a single draw. Each case hashes
the whole output as JSON; a digest that changes means the stream changed, which is a decision to make on purpose
(then record the new digests here), never a side effect of a refactoring.

The digests depend on Faker's en_GB word lists (pinned in .ci/constraints.txt) and on today's date only through
"never after today", which none of these runs approaches.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict
from datetime import date
from typing import Any

import pytest

from producers.customer_records import REGISTER_DEPARTMENTS, simulate_customer_records, write_customer_records_key
from producers.mailing_list import simulate_mailing_list, write_mailing_list_key
from producers.simulation import (
    SimulatedPopulation,
    SimulationRates,
    event_record,
    simulate_population,
    simulate_registrations,
)
from schemas.models import Event, Register, RegistrationCorrected, RegistrationVoided

# Busy follow-ups: every kind of correction and void, and survivors, show up in a short stream.
BUSY = SimulationRates(correction_share=0.2, void_share=0.08)
# A small country: a few thousand events span more than two years (entry numbers restart twice).
SMALL = SimulationRates(
    births_per_year=2_000,
    deaths_per_year=2_000,
    marriages_per_year=800,
    civil_partnerships_per_year=60,
    correction_share=0.05,
    void_share=0.02,
    correction_delay_office_hours=40.0,
    void_delay_office_hours=80.0,
)


def _digest(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, default=str, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _events_digest(events: list[Event]) -> str:
    return _digest([event_record(event) for event in events])


CASES: dict[str, tuple[dict[str, Any], str]] = {
    "default seed 0, 500 events": (
        {"count": 500, "seed": 0},
        "c217b4446eb44fa659b31435a6f214969c091ca467f182be2370657804ac2028",
    ),
    "seed 42, 3000 events, busy follow-ups": (
        {"count": 3_000, "seed": 42, "rates": BUSY},
        "c5bc6c87425816f35e8d0862b58ca00f1c04565d1f12beb507bbc75cc26f93c4",
    ),
    "seed 3, 12000 events over three years from 2019": (
        {"count": 12_000, "seed": 3, "start": date(2019, 12, 23), "rates": SMALL},
        "0bf699422f63da822a69aa31fe3ebee4af348c92471e4fca11da9af39089731b",
    ),
    "seed 2016, 6000 events across New Year": (
        {"count": 6_000, "seed": 2016, "start": date(2025, 12, 31)},
        "3677b81b8f88ae39c3fdc12073d4d473d95007cc9ec94241411b64648cc5b96b",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_simulated_registrations_are_unchanged(case: str) -> None:
    arguments, expected = CASES[case]
    assert _events_digest(list(simulate_registrations(**arguments))) == expected


def test_the_pinned_cases_cover_every_path() -> None:
    """The digests only guard what the cases exercise: corrections, voids (of deaths too), survivors, years."""
    events = [
        event
        for case in ("seed 42, 3000 events, busy follow-ups", "seed 3, 12000 events over three years from 2019")
        for event in simulate_registrations(**CASES[case][0])
    ]
    assert any(getattr(e, "death", None) and e.death.surviving_partner for e in events)  # type: ignore[attr-defined]
    corrected = {e.entry.register for e in events if isinstance(e, RegistrationCorrected)}
    voided = {e.entry.register for e in events if isinstance(e, RegistrationVoided)}
    assert corrected == voided == set(Register)
    assert {e.kind for e in events if isinstance(e, RegistrationCorrected)} == {"CLERICAL_ERROR", "FACTUAL_ERROR"}
    new_year = CASES["seed 2016, 6000 events across New Year"][0]
    assert {e.entry.year_of_registration for e in simulate_registrations(**new_year)} == {2025, 2026}
    years = CASES["seed 3, 12000 events over three years from 2019"][0]
    assert {e.entry.year_of_registration for e in simulate_registrations(**years)} == {2019, 2020, 2021, 2022}


@pytest.fixture(scope="module")
def population() -> SimulatedPopulation:
    return simulate_population(4_000, seed=8, rates=BUSY)


def test_simulated_population_is_unchanged(population: SimulatedPopulation) -> None:
    assert _events_digest(population.events) == POPULATION_EVENTS
    assert _digest([asdict(person) for person in population.people]) == POPULATION_PEOPLE
    assert len(population.survivors) > 0 and len(population.death_voided) > 0


@pytest.mark.parametrize("department", REGISTER_DEPARTMENTS)
def test_simulated_customer_records_are_unchanged(population: SimulatedPopulation, department: str) -> None:
    records = simulate_customer_records(population, department, seed=1)
    key = io.StringIO()
    write_customer_records_key(records, key)
    assert _digest([[record.row for record in records], key.getvalue()]) == CUSTOMER_RECORDS[department]


def test_simulated_mailing_list_is_unchanged(population: SimulatedPopulation) -> None:
    recipients = simulate_mailing_list(population, 600, seed=2)
    key = io.StringIO()
    write_mailing_list_key(recipients, key)
    assert _digest([[recipient.row() for recipient in recipients], key.getvalue()]) == MAILING_LIST


POPULATION_EVENTS = "be62dcddc234e9ba3d0cb96359abe49c8dc64faeb33d42435db3973ec71e9d10"
POPULATION_PEOPLE = "ae86c97698fde2591f485940f4ebde9e2abd87f733a3163b5156609440098f87"
MAILING_LIST = "9867727221a33c2a7d8d4e656d6e301074f2723f16e1b2f70d7f60cba702daba"
CUSTOMER_RECORDS = {
    "tax": "4222129296271501bcb5af2ba6a50b9afeccb530866921949bd4a49e15e1126f",
    "pensions": "edf551121d7646d05b4c742e3854273ec9ab16beb6eba8d0d7452ad014186b3c",
    "dvla": "5a2f2d25f536d6fbb2b7c11ebdb506864d37e6c61d0a38529328fd022c971f60",
    "electoral": "7c6ff47abfaf0a0f8645650b4e88226ef85a2d6805397ca3104dd724016302cc",
    "passports": "e4124fee9bb941616065f0f91bc02c8275e5e265adbba2eaeb6b1537d75e0720",
}
