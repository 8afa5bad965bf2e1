"""The registration simulator and the mailing-list generator: deterministic, realistic, and always valid.

Pure unit tests (no broker). One 20,000-event population is built once per module and shared: that is about five
office days of England and Wales, long enough for the mix, the stillbirths, corrections and voids to show.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import statistics
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, time, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from civreg.commands.simulate import simulate_app
from producers.mailing_list import (
    MAILING_LIST_COLUMNS,
    RecipientStatus,
    simulate_mailing_list,
    write_mailing_list,
    write_mailing_list_key,
)
from producers.simulation import (
    SimulatedPopulation,
    event_from_record,
    event_record,
    publish_events,
    register_number_of,
    simulate_population,
    simulate_registrations,
    write_jsonl,
)
from schemas.codec import Codec
from schemas.identifiers import (
    normalise_driving_licence_number,
    normalise_nhs_number,
    normalise_nino,
    normalise_passport_number,
    normalise_postcode,
)
from schemas.models import (
    BirthRegistered,
    CivilPartnershipRegistered,
    DeathRegistered,
    EntryReference,
    Event,
    MarriageRegistered,
    Person,
    Register,
    RegistrationCorrected,
    RegistrationEvent,
    RegistrationVoided,
    Sex,
)

COUNT = 20_000
SEED = 11
ANNUAL = {
    "BirthRegistered": 590_000,
    "DeathRegistered": 580_000,
    "MarriageRegistered": 250_000,
    "CivilPartnershipRegistered": 8_000,
}


@pytest.fixture(scope="module")
def population() -> SimulatedPopulation:
    return simulate_population(COUNT, seed=SEED)


@pytest.fixture(scope="module")
def events(population: SimulatedPopulation) -> list[Event]:
    return population.events


def details_of(event: Event) -> BaseModel | None:
    """The entry details an event carries (None for a void)."""
    if isinstance(event, BirthRegistered):
        return event.birth
    if isinstance(event, DeathRegistered):
        return event.death
    if isinstance(event, MarriageRegistered):
        return event.marriage
    if isinstance(event, CivilPartnershipRegistered):
        return event.civil_partnership
    if isinstance(event, RegistrationCorrected):
        return event.corrected
    return None


def persons_in(model: BaseModel | None) -> Iterator[Person]:
    """Every Person nested anywhere in ``model``."""
    if model is None:
        return
    if isinstance(model, Person):
        yield model
        return
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            yield from persons_in(value)


@dataclass
class EntryHistory:
    events: list[tuple[int, Event]] = field(default_factory=list)


def histories(events: list[Event]) -> dict[str, EntryHistory]:
    by_key: dict[str, EntryHistory] = {}
    for index, event in enumerate(events):
        by_key.setdefault(event.entry.key, EntryHistory()).events.append((index, event))
    return by_key


# ---- determinism ---------------------------------------------------------------------------------------------


def test_same_seed_gives_identical_stream() -> None:
    first = [event_record(event) for event in simulate_registrations(1_500, seed=3)]
    second = [event_record(event) for event in simulate_registrations(1_500, seed=3)]
    assert first == second


def test_different_seed_gives_different_stream() -> None:
    first = list(simulate_registrations(300, seed=3))
    other = list(simulate_registrations(300, seed=4))
    assert {event.event_id for event in first}.isdisjoint(event.event_id for event in other)
    assert [event_record(e) for e in first] != [event_record(e) for e in other]


def test_population_carries_the_same_events_as_the_stream() -> None:
    streamed = [event_record(event) for event in simulate_registrations(2_000, seed=5)]
    kept = [event_record(event) for event in simulate_population(2_000, seed=5).events]
    assert streamed == kept


def test_a_longer_stream_starts_with_the_shorter_one() -> None:
    short = [event_record(event) for event in simulate_registrations(500, seed=8)]
    long = [event_record(event) for event in simulate_registrations(800, seed=8)]
    assert long[:500] == short


# ---- proportions ---------------------------------------------------------------------------------------------


def test_count_is_exact_and_ids_unique(events: list[Event]) -> None:
    assert len(events) == COUNT
    ids = [event.event_id for event in events]
    assert len(set(ids)) == COUNT
    assert all(isinstance(event_id, UUID) and event_id.version == 4 for event_id in ids)


def test_register_mix_follows_england_and_wales(events: list[Event]) -> None:
    registrations = [event for event in events if isinstance(event, RegistrationEvent)]
    counts = Counter(event.event_type for event in registrations)
    total = sum(ANNUAL.values())
    for event_type, annual in ANNUAL.items():
        expected = annual / total
        observed = counts[event_type] / len(registrations)
        assert abs(observed - expected) < max(0.015, expected * 0.4), (event_type, observed, expected)
    assert counts["CivilPartnershipRegistered"] > 0


def test_corrections_and_voids_are_rare(events: list[Event]) -> None:
    counts = Counter(event.event_type for event in events)
    entries = sum(counts[event_type] for event_type in ANNUAL)
    assert 0.006 <= counts["RegistrationCorrected"] / entries <= 0.014
    assert 0.0003 <= counts["RegistrationVoided"] / entries <= 0.004


def test_stillbirths_are_present_at_a_low_rate(events: list[Event]) -> None:
    births = [event.birth for event in events if isinstance(event, BirthRegistered)]
    stillbirths = sum(birth.stillbirth for birth in births)
    assert 0.0015 <= stillbirths / len(births) <= 0.008


def test_about_four_thousand_events_a_day(events: list[Event]) -> None:
    days = (events[-1].recorded_at - events[0].recorded_at).total_seconds() / 86_400
    assert 3_000 <= COUNT / days <= 6_000


def test_the_deceased_are_mostly_elderly(events: list[Event]) -> None:
    ages = [
        (event.death.date_of_death - event.death.deceased.date_of_birth).days / 365.25
        for event in events
        if isinstance(event, DeathRegistered) and event.death.deceased.date_of_birth is not None
    ]
    assert 75 <= statistics.median(ages) <= 88
    assert min(ages) < 1  # infant deaths exist
    assert max(ages) < 106


# ---- validity --------------------------------------------------------------------------------------------------


def test_every_event_validates_and_survives_json_and_avro(events: list[Event]) -> None:
    codec = Codec()
    for index, event in enumerate(events):
        record = json.loads(json.dumps(event_record(event)))
        assert event_from_record(record) == event
        if index % 10 == 0 or not isinstance(event, RegistrationEvent):
            assert codec.decode(codec.encode(event)) == event


def test_every_identifier_passes_its_validator(events: list[Event]) -> None:
    seen: Counter[str] = Counter()
    for event in events:
        for person in persons_in(details_of(event)):
            ids = person.identifiers
            for name, check, value in (
                ("nino", normalise_nino, ids.nino),
                ("nhs", normalise_nhs_number, ids.nhs_number),
                ("licence", normalise_driving_licence_number, ids.driving_licence_number),
                ("passport", normalise_passport_number, ids.passport_number),
            ):
                if value is not None:
                    assert check(value) == value
                    seen[name] += 1
            if person.address is not None:
                assert normalise_postcode(person.address.postcode) == person.address.postcode
                seen["postcode"] += 1
            if ids.nino is not None:
                assert ids.nino[:2] not in {"CR", "FY", "MW", "NC", "PP", "PY", "PZ"}
    assert min(seen.values()) > 1_000, seen


def test_driving_licence_numbers_follow_the_dvla_layout(events: list[Event]) -> None:
    """Checked on entries as they finally stand (originals of corrected entries may carry the error)."""
    corrected = {event.entry.key for event in events if isinstance(event, RegistrationCorrected)}
    checked = 0
    for event in events:
        if isinstance(event, RegistrationEvent) and event.entry.key in corrected:
            continue
        for person in persons_in(details_of(event)):
            number = person.identifiers.driving_licence_number
            if number is None or person.date_of_birth is None:
                continue
            letters = "".join(c for c in person.family_name.upper() if c.isalpha())
            letters = "MC" + letters[3:] if letters.startswith("MAC") else letters
            born = person.date_of_birth
            month = born.month + (50 if person.sex is Sex.FEMALE else 0)
            initials = "".join(name[0] for name in person.given_names.upper().split()[:2]).ljust(2, "9")
            assert number[:5] == letters[:5].ljust(5, "9")
            assert number[5:11] == f"{born.year % 100 // 10}{month:02d}{born.day:02d}{born.year % 10}"
            assert number[11:13] == initials
            checked += 1
    assert checked > 1_000


def test_children_have_no_nino_and_adults_in_deaths_mostly_do(events: list[Event]) -> None:
    births = [event.birth for event in events if isinstance(event, BirthRegistered)]
    assert all(birth.child.identifiers.nino is None and birth.child.identifiers.nhs_number for birth in births)
    adults = [
        event.death.deceased
        for event in events
        if isinstance(event, DeathRegistered)
        and event.death.deceased.date_of_birth is not None
        and (event.death.date_of_death - event.death.deceased.date_of_birth).days > 20 * 366
    ]
    with_nino = sum(person.identifiers.nino is not None for person in adults)
    assert 0.8 <= with_nino / len(adults) <= 0.95


# ---- time and order ------------------------------------------------------------------------------------------


def test_stream_is_in_time_order_during_office_hours(events: list[Event]) -> None:
    for earlier, later in itertools.pairwise(events):
        assert earlier.recorded_at <= later.recorded_at
    for event in events:
        moment = event.recorded_at
        assert moment.tzinfo is not None and moment.utcoffset() == timedelta(0)
        assert moment.astimezone(UTC).weekday() != 6
        assert time(9) <= moment.time() < time(17)


def test_registration_delays(events: list[Event]) -> None:
    for event in events:
        if isinstance(event, BirthRegistered):
            birth = event.birth
            assert birth.child.date_of_birth is not None
            assert 0 <= (birth.date_of_registration - birth.child.date_of_birth).days <= 42
        elif isinstance(event, DeathRegistered):
            assert 0 <= (event.death.date_of_registration - event.death.date_of_death).days <= 5
        elif isinstance(event, MarriageRegistered):
            assert 0 <= (event.marriage.date_of_registration - event.marriage.date_of_marriage).days <= 21
        if isinstance(event, RegistrationEvent):
            details = details_of(event)
            assert getattr(details, "date_of_registration") == event.recorded_at.date()  # noqa: B009


def _numbering(entry: EntryReference) -> tuple[str, str, Register, int, int]:
    """One register of one sub-district in one year: the unit entry numbers run in."""
    return (
        entry.registration_district,
        entry.sub_district,
        entry.register,
        entry.register_number,
        entry.year_of_registration,
    )


def test_entry_numbers_increase_per_register_of_each_sub_district(events: list[Event]) -> None:
    last: dict[tuple[str, str, Register, int, int], int] = {}
    for event in events:
        if isinstance(event, RegistrationEvent):
            key = _numbering(event.entry)
            assert event.entry.entry_number == last.get(key, 0) + 1
            last[key] = event.entry.entry_number
            assert event.entry.year_of_registration == event.recorded_at.year
    assert len({district for district, *_ in last}) > 30
    assert len({(district, sub_district) for district, sub_district, *_ in last}) > len({d for d, *_ in last})


def test_entry_numbers_restart_every_year_so_only_the_year_tells_entries_apart() -> None:
    """Across New Year, numbering starts again at 1 in every register: (district, register, entry number) repeats
    with another year, and the entry key still names one entry only."""
    registrations = [
        event
        for event in simulate_registrations(12_000, seed=11, start=date(2025, 12, 30))
        if isinstance(event, RegistrationEvent)
    ]
    last: dict[tuple[str, str, Register, int, int], int] = {}
    for event in registrations:
        key = _numbering(event.entry)
        assert event.entry.entry_number == last.get(key, 0) + 1
        last[key] = event.entry.entry_number
    years = {event.entry.year_of_registration for event in registrations}
    assert years == {2025, 2026}
    by_old_identity: dict[tuple[str, Register, int], set[int]] = {}
    for event in registrations:
        entry = event.entry
        by_old_identity.setdefault((entry.registration_district, entry.register, entry.entry_number), set()).add(
            entry.year_of_registration
        )
    assert sum(len(found) == 2 for found in by_old_identity.values()) > 100
    assert len({event.entry.key for event in registrations}) == len(registrations)


def test_streams_of_different_seeds_never_share_an_entry() -> None:
    """The issue's reproduction: seeds 9 and 2016 repeat (district, register, entry number) but not entries."""
    first = [e.entry for e in simulate_registrations(200, seed=9) if isinstance(e, RegistrationEvent)]
    second = [e.entry for e in simulate_registrations(3_000, seed=2016) if isinstance(e, RegistrationEvent)]
    assert {register_number_of(9)} == {e.register_number for e in first} != {e.register_number for e in second}
    old = {(e.registration_district, e.register, e.entry_number) for e in first}
    assert any((e.registration_district, e.register, e.entry_number) in old for e in second)
    assert {e.key for e in first}.isdisjoint(e.key for e in second)


def test_corrections_and_voids_follow_an_existing_entry_with_increasing_versions(events: list[Event]) -> None:
    follow_ups = 0
    for history in histories(events).values():
        (_, first), *rest = history.events
        assert isinstance(first, RegistrationEvent) and first.version == 1
        previous: Event = first
        for _, event in rest:
            follow_ups += 1
            assert isinstance(event, RegistrationCorrected | RegistrationVoided)
            assert event.version == previous.version + 1
            assert event.recorded_at > previous.recorded_at
            assert event.register_office == first.register_office
            assert not isinstance(previous, RegistrationVoided), "nothing follows a void"
            previous = event
    assert follow_ups > 100


def test_a_correction_fixes_one_small_error(events: list[Event]) -> None:
    originals = {event.entry.key: event for event in events if isinstance(event, RegistrationEvent)}
    kinds: Counter[str] = Counter()
    for event in events:
        if not isinstance(event, RegistrationCorrected):
            continue
        original = details_of(originals[event.entry.key])
        assert original is not None and type(original) is type(event.corrected)
        assert getattr(original, "date_of_registration") == event.corrected.date_of_registration  # noqa: B009
        before = list(persons_in(original))
        after = list(persons_in(event.corrected))
        changed = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
        assert len(changed) in (1, 2)  # 2: a child and mother sharing the mistyped address
        b, a = changed[0]
        if b.given_names != a.given_names:
            kinds["given_names"] += 1
        elif b.family_name != a.family_name:
            kinds["family_name"] += 1
        elif b.date_of_birth != a.date_of_birth:
            kinds["date_of_birth"] += 1
        else:
            assert b.address is not None and a.address is not None
            assert b.address.postcode != a.address.postcode
            kinds["postcode"] += 1
    assert set(kinds) == {"given_names", "family_name", "date_of_birth", "postcode"}, kinds


# ---- population and mailing list -------------------------------------------------------------------------------


def test_population_statuses_follow_the_events(population: SimulatedPopulation) -> None:
    voided_keys = {event.entry.key for event in population.events if isinstance(event, RegistrationVoided)}
    death_keys = {event.entry.key for event in population.events if isinstance(event, DeathRegistered)}
    for person in population.deceased:
        assert person.death_entry is not None and person.death_entry.key in death_keys - voided_keys
    assert population.death_voided
    for person in population.death_voided:
        assert person.death_entry is not None and person.death_entry.key in voided_keys
        assert person in population.living
    assert not {p.person_id for p in population.deceased} & {p.person_id for p in population.living}


def test_mailing_list_mixes_living_deceased_and_voided(population: SimulatedPopulation) -> None:
    recipients = simulate_mailing_list(population, 2_000, seed=1)
    assert len(recipients) == 2_000
    assert len({r.recipient_id for r in recipients}) == 2_000
    statuses = Counter(r.status for r in recipients)
    assert statuses[RecipientStatus.DECEASED] == 200
    assert statuses[RecipientStatus.DEATH_VOIDED] >= 3
    assert statuses[RecipientStatus.NAMESAKE] > 0
    assert statuses[RecipientStatus.LIVING] > 1_500
    people = {person.person_id: person for person in population.people}
    dead = [r for r in recipients if r.status is RecipientStatus.DECEASED]
    assert all(people[r.person_id].is_deceased for r in dead)
    assert all(people[r.person_id].death_voided for r in recipients if r.status is RecipientStatus.DEATH_VOIDED)
    assert any(r.nino for r in dead)
    assert any(not r.nino and not r.nhs_number for r in dead)
    for row in recipients:
        assert normalise_postcode(row.postcode)
        if row.nino:
            normalise_nino(row.nino)
        if row.nhs_number:
            normalise_nhs_number(row.nhs_number)


def test_namesakes_share_names_not_dates_of_birth(population: SimulatedPopulation) -> None:
    recipients = simulate_mailing_list(population, 1_000, seed=2)
    dead = {(r.given_names, r.family_name.upper()): r.date_of_birth for r in recipients if r.status == "DECEASED"}
    namesakes = [r for r in recipients if r.status is RecipientStatus.NAMESAKE]
    assert namesakes
    for row in namesakes:
        assert dead[(row.given_names, row.family_name.upper())] != row.date_of_birth


def test_mailing_list_is_deterministic_and_writes_csv(population: SimulatedPopulation) -> None:
    first = simulate_mailing_list(population, 300, seed=4)
    assert first == simulate_mailing_list(population, 300, seed=4)
    assert first != simulate_mailing_list(population, 300, seed=5)
    out, key = io.StringIO(), io.StringIO()
    assert write_mailing_list(first, out) == 300
    write_mailing_list_key(first, key)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert tuple(rows[0]) == MAILING_LIST_COLUMNS
    assert [row["recipient_id"] for row in rows] == [r.recipient_id for r in first]
    answers = list(csv.DictReader(io.StringIO(key.getvalue())))
    assert {row["status"] for row in answers} <= {status.value for status in RecipientStatus}
    assert "status" not in rows[0] and "person_id" not in rows[0]


# ---- output and publishing -------------------------------------------------------------------------------------


def test_jsonl_round_trip() -> None:
    events = list(simulate_registrations(200, seed=9))
    buffer = io.StringIO()
    assert write_jsonl(events, buffer) == 200
    lines = buffer.getvalue().splitlines()
    assert all(json.loads(line)["event_type"] == event.event_type for line, event in zip(lines, events, strict=True))
    assert [event_from_record(json.loads(line)) for line in lines] == events


class FakeSink:
    def __init__(self) -> None:
        self.published: list[Event] = []
        self.flushes = 0

    def publish(self, event: Event) -> None:
        self.published.append(event)

    def flush(self) -> None:
        self.flushes += 1


def test_publish_events_sends_everything_then_flushes_once() -> None:
    sink = FakeSink()
    assert publish_events(simulate_registrations(50, seed=1), sink) == 50
    assert len(sink.published) == 50 and sink.flushes == 1


def test_cli_writes_registrations_and_a_consistent_mailing_list(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "events.jsonl"
    result = runner.invoke(simulate_app, ["registrations", "--count", "300", "--seed", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    expected = [event_record(event) for event in simulate_registrations(300, seed=2)]
    assert [json.loads(line) for line in out.read_text().splitlines()] == json.loads(json.dumps(expected))

    recipients, key = tmp_path / "recipients.csv", tmp_path / "key.csv"
    args = ["mailing-list", "--count", "3000", "--seed", "2", "--size", "100", "--out", str(recipients)]
    result = runner.invoke(simulate_app, [*args, "--key", str(key)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(recipients.open()))
    expected_rows = [r.row() for r in simulate_mailing_list(simulate_population(3_000, seed=2), 100, seed=2)]
    assert rows == expected_rows
    assert len(key.read_text().splitlines()) == 101


def test_cli_needs_exactly_one_destination(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(simulate_app, ["registrations", "--count", "5"]).exit_code == 2
    both = ["registrations", "--count", "5", "--out", str(tmp_path / "x.jsonl"), "--publish"]
    assert runner.invoke(simulate_app, both).exit_code == 2
    assert runner.invoke(simulate_app, ["registrations", "--start", "2025-02-30", "--out", "-"]).exit_code == 2
