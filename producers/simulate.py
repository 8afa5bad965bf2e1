"""Deterministic synthetic registrations for demos, tests and back-fill rehearsals.

Why: departments must be exercised with realistic traffic (the mix, the delays, corrections and voids, awkward
identifiers) long before any real register office connects, and the same seed must give the same stream so a
failing run can be replayed. Volumes follow England and Wales: about 590k births (0.4% stillbirths), 580k deaths,
250k marriages and 8k civil partnerships a year, so about 4k events a day.

The stream is in time order: register offices open Monday to Saturday, 09:00-17:00 UTC (closed on 1 January and
25-26 December). About 1% of entries are later corrected (the original carried a small error: a misspelt name, a
wrong date of birth or postcode; the correction carries the whole entry as it should be) and about 0.15% voided,
always after the entry (hours to a few days of office time later) and with the entry's version going up by one
each time. Follow-ups that would fall after the last requested event are never emitted, so a stream of a day or
two has noticeably fewer of them.

Registrations are never dated after today (the contract refuses them): a run whose clock would pass today stops
with ``SimulationReachesToday``, so a long back-fill needs an early enough ``start``.

A death of a married person or civil partner usually names the surviving spouse or civil partner (as the entry and
Tell Us Once do): someone at the same address, kept in the population (so department registers hold them, married,
and the events leave them widowed). Survivors come from their own random stream, so adding them changed no other
draw of a seed.

Entries are numbered as the General Register Office numbers them: from 1 in each register of each sub-district,
restarting every 1 January, so a stream longer than a year repeats (district, register, entry number) with another
year of registration. Each seed writes in its own register number (``register_number_of``), so streams of
different seeds can share one bus without two people sharing an entry.

``simulate_registrations`` streams events in constant memory (a ten-year back-fill is 15 million events);
``simulate_population`` also keeps the people, so mailing lists and department registers can be drawn from the same
people the registrations talk about.
"""

from __future__ import annotations

import heapq
import json
import random
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import accumulate
from typing import Any, Protocol, TextIO, TypeVar

from pydantic import BaseModel

from producers.synthetic_people import (
    District,
    Locality,
    SyntheticPerson,
    add_years,
    choose_district,
    make_person,
    occupation,
    words,
)
from schemas.models import (
    EVENT_MODELS,
    Address,
    BirthDetails,
    BirthRegistered,
    CivilPartnershipDetails,
    CivilPartnershipRegistered,
    CorrectionKind,
    DeathDetails,
    DeathRegistered,
    EntryReference,
    Event,
    Identifiers,
    MaritalStatus,
    MarriageDetails,
    MarriageRegistered,
    Partner,
    Person,
    Register,
    RegistrationCorrected,
    RegistrationVoided,
    Sex,
    SurvivingPartner,
    SurvivorRelationship,
    VoidReason,
)

__all__ = [
    "DEFAULT_RATES",
    "DEFAULT_START",
    "EventSink",
    "RegistrationSimulator",
    "SimulatedPopulation",
    "SimulationRates",
    "SimulationReachesToday",
    "event_from_record",
    "event_record",
    "publish_events",
    "register_number_of",
    "simulate_population",
    "simulate_registrations",
    "write_jsonl",
]

DEFAULT_START = date(2025, 1, 6)
"""A fixed Monday, so a seed alone decides the stream (never today's date)."""

Details = BirthDetails | DeathDetails | MarriageDetails | CivilPartnershipDetails
_M = TypeVar("_M", bound=BaseModel)
_Undo = tuple[tuple[SyntheticPerson, str, MaritalStatus], ...]
"""What a void puts back: each person named, with their surname and marital status before the entry."""

_OPENING = time(9)
_MAX_INT = 2_147_483_647  # Avro int
_OFFICE_SECONDS = 8 * 3600
_OFFICE_DAYS_PER_YEAR = 365 - 52 - 3
_CLOSED_DAYS = frozenset({(1, 1), (12, 25), (12, 26)})
_REGISTERS = (Register.BIRTH, Register.DEATH, Register.MARRIAGE, Register.CIVIL_PARTNERSHIP)
_HOSPITALS = ("General Hospital", "Royal Infirmary", "University Hospital", "District General Hospital")
_VENUES = words(
    "The Grange Hotel, Oakwood Hall, The Old Barn, The Assembly Rooms, Town Hall, Riverside House, "
    "The Manor House, Castle Hotel, The Orangery, Abbey Gardens"
)
_CHURCHES = words(
    "St Mary's Church, St Peter's Church, All Saints Church, Holy Trinity Church, St Michael's Church, "
    "Central Methodist Church, St Joseph's Catholic Church, Baptist Chapel, Central Mosque"
)
_CARE_HOMES = ("Beech", "Rose", "Meadow", "Oak", "Ashlea", "Willow")
_HOSPICES = ("St Luke's Hospice", "St Catherine's Hospice", "St Christopher's Hospice", "Marie Curie Hospice")
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


@dataclass(frozen=True)
class SimulationRates:
    """Annual volumes and follow-up shares (the defaults are England and Wales) and follow-up delays.

    The delays are mean office hours after the entry (exponential, capped at 20 and 40 office days). Real
    corrections can take weeks; short means let a stream of a few days carry its share of corrections and voids.
    """

    births_per_year: int = 590_000
    deaths_per_year: int = 580_000
    marriages_per_year: int = 250_000
    civil_partnerships_per_year: int = 8_000
    stillbirth_share: float = 0.004
    correction_share: float = 0.01
    void_share: float = 0.0015
    correction_delay_office_hours: float = 4.0
    void_delay_office_hours: float = 8.0

    @property
    def registrations_per_year(self) -> int:
        """All four registers together."""
        return self.births_per_year + self.deaths_per_year + self.marriages_per_year + self.civil_partnerships_per_year

    @property
    def mean_gap_seconds(self) -> float:
        """Mean office-time gap between two registrations anywhere in England and Wales."""
        return _OFFICE_DAYS_PER_YEAR * _OFFICE_SECONDS / self.registrations_per_year

    @property
    def register_cum_weights(self) -> tuple[int, ...]:
        """Cumulative weights of the four registers, in ``_REGISTERS`` order."""
        return tuple(
            accumulate(
                (self.births_per_year, self.deaths_per_year, self.marriages_per_year, self.civil_partnerships_per_year)
            )
        )


DEFAULT_RATES = SimulationRates()


class SimulationReachesToday(ValueError):
    """The simulated clock would pass today: the contract refuses registrations dated in the future."""

    def __init__(self, today: date) -> None:
        super().__init__(
            f"the simulated registrations would be dated after today ({today.isoformat()}): "
            "give an earlier start (--start) or fewer events (--count)"
        )


class EventSink(Protocol):
    """Anything events can be published to (``producers.publisher.Publisher`` is one)."""

    def publish(self, event: Event) -> object:
        """Send one event."""
        ...

    def flush(self) -> object:
        """Wait until everything sent is acknowledged."""
        ...


@dataclass
class SimulatedPopulation:
    """The events of a simulation and every person they mention, as the registrations leave them.

    Kept so later tools (mailing lists, department registers) can be consistent with the events: each person holds
    every identifier they really have (an event may carry only some), their current surname and status, and whether
    a death was registered and voided. Department registers should be drawn from ``people`` the same way.
    """

    seed: int
    start: date
    events: list[Event]
    people: list[SyntheticPerson]

    @property
    def living(self) -> list[SyntheticPerson]:
        """People alive as far as the events say (including those whose death was voided)."""
        return [person for person in self.people if not person.is_deceased]

    @property
    def deceased(self) -> list[SyntheticPerson]:
        """People whose death was registered and not voided (stillborn children excluded)."""
        return [person for person in self.people if person.death_registered and not person.death_voided]

    @property
    def death_voided(self) -> list[SyntheticPerson]:
        """People whose death registration was voided: they are alive and must not be treated as dead."""
        return [person for person in self.people if person.death_voided]

    @property
    def survivors(self) -> list[SyntheticPerson]:
        """People a registered (and not voided) death left widowed or a surviving civil partner: the answer key of
        the survivor rules (a department holding them should now record that status)."""
        bereaved = {MaritalStatus.WIDOWED, MaritalStatus.SURVIVING_CIVIL_PARTNER}
        return [person for person in self.people if person.widowed_from and person.marital_status in bereaved]

    def adults(self, people: Iterable[SyntheticPerson], min_age: int = 18) -> list[SyntheticPerson]:
        """``people`` at least ``min_age`` on the simulation's start date."""
        return [person for person in people if person.age_on(self.start) >= min_age]


@dataclass(order=True)
class _FollowUp:
    """A correction or void waiting for its time."""

    at: datetime
    sequence: int
    entry: EntryReference = field(compare=False)
    register_office: str = field(compare=False)
    version: int = field(compare=False)
    corrected: Details | None = field(compare=False, default=None)
    correction_kind: CorrectionKind | None = field(compare=False, default=None)
    void_reason: VoidReason | None = field(compare=False, default=None)
    void_subjects: _Undo = field(compare=False, default=())


def register_number_of(seed: int) -> int:
    """The register number a simulated run writes its entries in, in every sub-district and year.

    Why from the seed: streams of different seeds are different people in the same districts and days; were they
    in the same registers, publishing two seeds to one bus would give two people one entry. One register per run
    (real sub-districts may fill several a year) keeps numbering simple: 1, 2, 3... per register and year.
    """
    return 1 + seed % (_MAX_INT - 1)


def _is_open(day: date) -> bool:
    return day.weekday() != 6 and (day.month, day.day) not in _CLOSED_DAYS


def _next_open_day(day: date) -> date:
    while not _is_open(day):
        day += timedelta(days=1)
    return day


def _opening(day: date) -> datetime:
    return datetime.combine(day, _OPENING, tzinfo=UTC)


def _after_office_time(moment: datetime, seconds: float) -> datetime:
    """``moment`` (in office hours) plus ``seconds`` of office time: nights, Sundays and holidays do not count."""
    day = moment.date()
    offset = (moment - _opening(day)).total_seconds() + seconds
    while offset >= _OFFICE_SECONDS:
        offset -= _OFFICE_SECONDS
        day = _next_open_day(day + timedelta(days=1))
    return _opening(day) + timedelta(seconds=offset)


def _replace(model: _M, **changes: Any) -> _M:
    """A validated copy of a frozen model with some fields changed (``model_copy`` would skip validation)."""
    return type(model).model_validate({**dict(model), **changes})


def _clamp(value: float, low: int, high: int) -> int:
    return max(low, min(high, round(value)))


def _misspell(name: str, rng: random.Random) -> str:
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


def _wrong_date_of_birth(born: date, latest: date, rng: random.Random) -> date:
    """A plausible wrong date: day and month transposed, a year out, or a day out; never after ``latest``."""
    candidates: list[date] = []
    if born.day <= 12 and born.day != born.month:
        candidates.append(born.replace(month=born.day, day=born.month))
    candidates += [add_years(born, -1), add_years(born, 1), born - timedelta(days=1), born + timedelta(days=1)]
    fitting = [day for day in candidates if day != born and day <= latest]
    return rng.choice(fitting) if fitting else born - timedelta(days=1)


def _wrong_postcode(address: Address, rng: random.Random) -> Address:
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
            return _replace(address, postcode=f"{outward} {wrong}")


def _with_person_error(
    person: Person, latest: date, rng: random.Random, *, allow_dob: bool = True
) -> tuple[Person, CorrectionKind]:
    """``person`` with one small error; the kind says whether the registrar or the informant got it wrong."""
    kinds = ["given", "family", "postcode"] + (["dob"] if allow_dob and person.date_of_birth else [])
    if person.address is None:
        kinds.remove("postcode")
    kind = rng.choice(kinds)
    if kind == "given":
        return _replace(person, given_names=_misspell(person.given_names, rng)), CorrectionKind.CLERICAL_ERROR
    if kind == "family":
        return _replace(person, family_name=_misspell(person.family_name, rng)), CorrectionKind.CLERICAL_ERROR
    if kind == "postcode" and person.address is not None:
        return _replace(person, address=_wrong_postcode(person.address, rng)), CorrectionKind.CLERICAL_ERROR
    assert person.date_of_birth is not None
    wrong = _wrong_date_of_birth(person.date_of_birth, latest, rng)
    return _replace(person, date_of_birth=wrong), CorrectionKind.FACTUAL_ERROR


def _with_error(details: Details, rng: random.Random) -> tuple[Details, CorrectionKind]:
    """The entry as first (wrongly) registered; the correction will carry ``details`` as they should be."""
    if isinstance(details, BirthDetails):
        if rng.random() < 0.7 or details.mother is None:
            child, kind = _with_person_error(details.child, details.date_of_registration, rng, allow_dob=False)
            mother = details.mother
            if mother is not None and mother.address == details.child.address and child.address != mother.address:
                mother = _replace(mother, address=child.address)
            return _replace(details, child=child, mother=mother), kind
        mother, kind = _with_person_error(details.mother, details.date_of_registration, rng)
        return _replace(details, mother=mother), kind
    if isinstance(details, DeathDetails):
        deceased, kind = _with_person_error(details.deceased, details.date_of_death, rng)
        return _replace(details, deceased=deceased), kind
    if isinstance(details, MarriageDetails):
        name = rng.choice(("party_1", "party_2"))
        partner: Partner = getattr(details, name)
        person, kind = _with_person_error(partner.person, details.date_of_marriage, rng)
        return _replace(details, **{name: _replace(partner, person=person)}), kind
    name = rng.choice(("partner_1", "partner_2"))
    partner = getattr(details, name)
    person, kind = _with_person_error(partner.person, details.date_of_formation, rng)
    return _replace(details, **{name: _replace(partner, person=person)}), kind


def _some(value: str | None, share: float, rng: random.Random) -> str | None:
    """``value`` in about ``share`` of entries: informants do not always know every number."""
    return value if value is not None and rng.random() < share else None


class RegistrationSimulator:
    """One simulated run: a clock, entry-number counters, pending follow-ups and (optionally) the people.

    ``keep_people`` only decides whether people are kept; it never changes the random draws, so a population and a
    plain stream of the same seed carry identical events.
    """

    def __init__(
        self,
        seed: int = 0,
        start: date = DEFAULT_START,
        rates: SimulationRates = DEFAULT_RATES,
        *,
        keep_people: bool = False,
    ) -> None:
        self.rng = random.Random(seed)
        self._survivor_rng = random.Random(f"survivors/{seed}")  # its own stream: see the module docstring
        self.rates = rates
        self.people: list[SyntheticPerson] = []
        self._keep_people = keep_people
        self._day = _next_open_day(start)
        self._last_day = datetime.now(UTC).date()
        if self._day > self._last_day:
            raise SimulationReachesToday(self._last_day)
        self._offset = 0.0
        self._register_cum_weights = rates.register_cum_weights
        self._register_number = register_number_of(seed)
        self._entry_numbers: dict[tuple[str, str, Register, int], int] = {}
        self._pending: list[_FollowUp] = []
        self._sequence = 0
        self._person_count = 0

    def events(self, count: int) -> Iterator[Event]:
        """The next ``count`` events in time order."""
        emitted = 0
        while emitted < count:
            moment = self._tick()
            while self._pending and self._pending[0].at <= moment and emitted < count:
                yield self._follow_up_event(heapq.heappop(self._pending))
                emitted += 1
            if emitted < count:
                yield self._register(moment)
                emitted += 1

    def _tick(self) -> datetime:
        """Advance the clock by one registration gap, counting only office hours of open days."""
        self._offset += self.rng.expovariate(1 / self.rates.mean_gap_seconds)
        while self._offset >= _OFFICE_SECONDS:
            self._offset -= _OFFICE_SECONDS
            self._day = _next_open_day(self._day + timedelta(days=1))
            if self._day > self._last_day:
                raise SimulationReachesToday(self._last_day)
        return _opening(self._day) + timedelta(seconds=self._offset)

    def _event_id(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def _new_person_id(self) -> str:
        self._person_count += 1
        return f"P{self._person_count:08d}"

    def _keep(self, *people: SyntheticPerson | None) -> None:
        if self._keep_people:
            self.people.extend(person for person in people if person is not None)

    def _entry(self, district: District, locality: Locality, register: Register, day: date) -> EntryReference:
        """The next entry number in the sub-district's ``register`` this year: numbering restarts every year."""
        sub_district = district.sub_district(locality)
        key = (district.name, sub_district, register, day.year)
        number = self._entry_numbers.get(key, 0) + 1
        self._entry_numbers[key] = number
        return EntryReference(
            registration_district=district.name,
            sub_district=sub_district,
            register=register,
            register_number=self._register_number,
            entry_number=number,
            year_of_registration=day.year,
        )

    def _register(self, moment: datetime) -> Event:
        """A new entry, with its correction and void scheduled when it draws them."""
        rng = self.rng
        register = rng.choices(_REGISTERS, cum_weights=self._register_cum_weights)[0]
        district, locality = choose_district(rng)
        office = district.register_office(locality)
        day = moment.date()
        entry = self._entry(district, locality, register, day)
        void_subjects: _Undo = ()
        truth: Details
        if register is Register.BIRTH:
            truth = self._birth(day, locality)
        elif register is Register.DEATH:
            truth, deceased, survivor = self._death(day, locality)
            deceased.death_entry = entry
            deceased.death_registered = True
            void_subjects = ((deceased, deceased.family_name, deceased.marital_status),)
            if survivor is not None and survivor.widowed_from is not None:
                void_subjects += ((survivor, survivor.family_name, survivor.widowed_from),)
        elif register is Register.MARRIAGE:
            truth, couple = self._marriage(day, locality, office)
            void_subjects = couple
        else:
            truth, couple = self._civil_partnership(day, locality, office)
            void_subjects = couple
        original = self._schedule_follow_ups(moment, entry, office, truth, void_subjects)
        common: dict[str, Any] = {
            "event_id": self._event_id(),
            "entry": entry,
            "version": 1,
            "recorded_at": moment,
            "register_office": office,
        }
        if isinstance(original, BirthDetails):
            return BirthRegistered(**common, birth=original)
        if isinstance(original, DeathDetails):
            return DeathRegistered(**common, death=original)
        if isinstance(original, MarriageDetails):
            return MarriageRegistered(**common, marriage=original)
        return CivilPartnershipRegistered(**common, civil_partnership=original)

    def _schedule_follow_ups(
        self,
        moment: datetime,
        entry: EntryReference,
        office: str,
        truth: Details,
        void_subjects: _Undo,
    ) -> Details:
        """Decide whether this entry is later corrected and/or voided; return the details as first registered."""
        rng = self.rng
        corrected_at = voided_at = None
        rates = self.rates
        if rng.random() < rates.correction_share:
            hours = min(rng.expovariate(1 / rates.correction_delay_office_hours), 20 * 8) + 0.25
            corrected_at = _after_office_time(moment, hours * 3600)
        if rng.random() < rates.void_share:
            hours = min(rng.expovariate(1 / rates.void_delay_office_hours), 40 * 8) + 0.5
            voided_at = _after_office_time(moment, hours * 3600)
        if corrected_at is not None and voided_at is not None and voided_at <= corrected_at:
            corrected_at = None  # a voided entry is never corrected afterwards
        original = truth
        version = 1
        if corrected_at is not None:
            original, kind = _with_error(truth, rng)
            version += 1
            self._push(_FollowUp(corrected_at, 0, entry, office, version, corrected=truth, correction_kind=kind))
        if voided_at is not None:
            version += 1
            if entry.register is Register.DEATH:
                reason = VoidReason.ENTERED_IN_ERROR if rng.random() < 0.95 else VoidReason.COURT_ORDER
            else:
                reason = rng.choices(tuple(VoidReason), weights=(50, 40, 10))[0]
            self._push(_FollowUp(voided_at, 0, entry, office, version, void_reason=reason, void_subjects=void_subjects))
        return original

    def _push(self, follow_up: _FollowUp) -> None:
        self._sequence += 1
        follow_up.sequence = self._sequence
        heapq.heappush(self._pending, follow_up)

    def _follow_up_event(self, follow_up: _FollowUp) -> Event:
        """Build a due correction or void, and apply a void's effect on the people it named."""
        common: dict[str, Any] = {
            "event_id": self._event_id(),
            "entry": follow_up.entry,
            "version": follow_up.version,
            "recorded_at": follow_up.at,
            "register_office": follow_up.register_office,
        }
        if follow_up.corrected is not None and follow_up.correction_kind is not None:
            return RegistrationCorrected(**common, kind=follow_up.correction_kind, corrected=follow_up.corrected)
        assert follow_up.void_reason is not None
        for person, family_name_before, status_before in follow_up.void_subjects:
            if follow_up.entry.register is Register.DEATH and person.death_entry == follow_up.entry:
                person.death_voided = True
            elif follow_up.entry.register is Register.DEATH:  # the survivor: married again, as before the death
                person.marital_status = status_before
            else:  # the marriage or partnership never happened: undo the change of name and status
                if person.family_name != family_name_before:
                    person.previous_family_names.append(person.family_name)
                person.family_name = family_name_before
                person.marital_status = status_before
        return RegistrationVoided(**common, reason=follow_up.void_reason)

    def _adult(
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
            self._new_person_id(),
            sex=sex,
            date_of_birth=born,
            on=on,
            locality=locality,
            family_name=family_name,
            address=address,
        )

    def _birth(self, day: date, locality: Locality) -> BirthDetails:
        """A birth (registered within 42 days), the mother and usually a second parent at the same address."""
        rng = self.rng
        born = day - timedelta(days=min(42, int(rng.triangular(0, 43, 9))))
        mother_age = _clamp(rng.gauss(31, 5.5), 16, 48)
        second: SyntheticPerson | None = None
        mother_family_name: str | None = None
        address: Address | None = None
        if rng.random() < 0.94:
            second_sex = Sex.MALE if rng.random() < 0.98 else Sex.FEMALE
            second = self._adult(second_sex, _clamp(mother_age + rng.gauss(2.5, 4), 16, 75), born, locality)
            if rng.random() < 0.55:  # married, or sharing a surname
                mother_family_name = second.family_name
            if rng.random() < 0.9:
                address = second.address
        mother = self._adult(Sex.FEMALE, mother_age, born, locality, family_name=mother_family_name, address=address)
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
            self._new_person_id(),
            sex=sex,
            date_of_birth=born,
            on=day,
            locality=locality,
            family_name=child_family_name,
            address=mother.address,
        )
        child.stillborn = rng.random() < self.rates.stillbirth_share
        if rng.random() < 0.023:
            place = f"{mother.address.lines[-1]}, {locality.town}"
        else:
            place = f"{locality.town} {_HOSPITALS[len(locality.town) % len(_HOSPITALS)]}"
        mother_ids = Identifiers(nino=_some(mother.nino, 0.75, rng), nhs_number=_some(mother.nhs_number, 0.75, rng))
        second_person = None
        if second is not None:
            second_person = second.to_person(Identifiers(nino=_some(second.nino, 0.5, rng)))
        details = BirthDetails(
            date_of_registration=day,
            child=child.to_person(Identifiers(nhs_number=child.nhs_number)),
            place_of_birth=place,
            stillbirth=child.stillborn,
            mother=mother.to_person(mother_ids),
            second_parent=second_person,
        )
        self._keep(child, mother, second)
        return details

    def _death(self, day: date, locality: Locality) -> tuple[DeathDetails, SyntheticPerson, SyntheticPerson | None]:
        """A death registered within 5 days, mostly of an elderly person, and the survivor it names (if any)."""
        rng = self.rng
        died = day - timedelta(days=rng.choices(range(6), weights=(6, 26, 24, 20, 14, 10))[0])
        low, high, _ = _DEATH_AGE_BANDS[rng.choices(range(len(_DEATH_AGE_BANDS)), cum_weights=_DEATH_AGE_CUM)[0]]
        age = rng.randint(low, high)
        sex = Sex.MALE if rng.random() < 0.5 else Sex.FEMALE
        deceased = self._adult(sex, age, died, locality)
        deceased.marital_status = self._status_at_death(age, sex)
        deceased.date_of_death = died
        place = self._place_of_death(deceased, locality)
        identifiers = Identifiers(
            nino=_some(deceased.nino, 0.88, rng),
            nhs_number=_some(deceased.nhs_number, 0.92, rng),
            driving_licence_number=_some(deceased.driving_licence_number, 0.85, rng),
            passport_number=_some(deceased.passport_number, 0.7, rng),
        )
        details = DeathDetails(
            date_of_registration=day,
            deceased=deceased.to_person(identifiers),
            date_of_death=died,
            place_of_death=place,
            marital_status=deceased.marital_status,
        )
        survivor = self._survivor(deceased, died, locality)
        if survivor is not None:
            details = _replace(details, surviving_partner=survivor[1])
        self._keep(deceased)
        return details, deceased, None if survivor is None else survivor[0]

    def _survivor(
        self, deceased: SyntheticPerson, died: date, locality: Locality
    ) -> tuple[SyntheticPerson, SurvivingPartner] | None:
        """The spouse or civil partner who survives a married or partnered person, when the informant names them.

        Drawn from ``_survivor_rng`` only. The survivor lives at the deceased's address, usually shares the
        surname, is of a similar age, and is kept in the population widowed (or surviving civil partner).
        """
        rng = self._survivor_rng
        civil = deceased.marital_status is MaritalStatus.CIVIL_PARTNER
        if not (civil or deceased.marital_status is MaritalStatus.MARRIED) or rng.random() >= 0.9:
            return None
        same_sex = rng.random() < (0.4 if civil else 0.03)
        other = Sex.MALE if deceased.sex is Sex.FEMALE else Sex.FEMALE
        sex = deceased.sex if same_sex else other
        age = _clamp(deceased.age_on(died) + rng.gauss(2 if sex is Sex.FEMALE else -2, 4), 18, 104)
        survivor = make_person(
            rng,
            self._new_person_id(),
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
                    nino=_some(survivor.nino, 0.7, rng),
                    nhs_number=_some(survivor.nhs_number, 0.3, rng),
                    driving_licence_number=_some(survivor.driving_licence_number, 0.3, rng),
                    passport_number=_some(survivor.passport_number, 0.2, rng),
                )
            ),
            relationship=relationship,
        )
        survivor.marital_status = partner.status
        self._keep(survivor)
        return survivor, partner

    def _status_at_death(self, age: int, sex: Sex) -> MaritalStatus:
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
        return self.rng.choices(statuses, weights=weights)[0]

    def _place_of_death(self, deceased: SyntheticPerson, locality: Locality) -> str:
        rng = self.rng
        where = rng.choices(("hospital", "home", "care home", "hospice", "elsewhere"), weights=(44, 28, 20, 6, 2))[0]
        if where == "hospital":
            return f"{locality.town} {_HOSPITALS[len(locality.town) % len(_HOSPITALS)]}"
        if where == "home":
            return f"{', '.join(deceased.address.lines)}, {locality.town}"
        if where == "care home":
            return f"{rng.choice(_CARE_HOMES)} House Care Home, {locality.town}"
        if where == "hospice":
            return f"{rng.choice(_HOSPICES)}, {locality.town}"
        return f"Public place, {locality.town}"

    def _couple(
        self, on: date, locality: Locality, same_sex_shares: tuple[float, float]
    ) -> tuple[SyntheticPerson, SyntheticPerson]:
        """Two adults marrying or forming a partnership; ``same_sex_shares`` are (male-male, female-female)."""
        rng = self.rng
        roll = rng.random()
        if roll < same_sex_shares[0]:
            sexes = (Sex.MALE, Sex.MALE)
        elif roll < same_sex_shares[0] + same_sex_shares[1]:
            sexes = (Sex.FEMALE, Sex.FEMALE)
        else:
            sexes = (Sex.MALE, Sex.FEMALE) if rng.random() < 0.5 else (Sex.FEMALE, Sex.MALE)
        first_age = _clamp(rng.gauss(35, 9), 18, 90)
        first = self._adult(sexes[0], first_age, on, locality)
        shared = first.address if rng.random() < 0.55 else None
        second = self._adult(sexes[1], _clamp(first_age + rng.gauss(0, 4), 18, 95), on, locality, address=shared)
        return first, second

    def _condition(self, age: int, partnership: bool) -> MaritalStatus:
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
        return self.rng.choices(statuses, weights=weights)[0]

    def _partners(
        self, first: SyntheticPerson, second: SyntheticPerson, on: date, partnership: bool
    ) -> tuple[Partner, Partner, _Undo]:
        """Both parties as the entry records them; then the people take their new status and surname."""
        rng = self.rng
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
                nino=_some(person.nino, 0.6, rng),
                nhs_number=_some(person.nhs_number, 0.3, rng),
                driving_licence_number=_some(person.driving_licence_number, 0.5, rng),
                passport_number=_some(person.passport_number, 0.3, rng),
            )
            partners.append(
                Partner(
                    person=person.to_person(identifiers),
                    condition=self._condition(age, partnership),
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
        self._keep(first, second)
        return partners[0], partners[1], before

    def _marriage(self, day: date, locality: Locality, office: str) -> tuple[MarriageDetails, _Undo]:
        """A marriage, entered in the register up to 21 days after the ceremony (the marriage schedule)."""
        rng = self.rng
        married = day - timedelta(days=rng.choices(range(22), weights=(10,) + (8,) * 7 + (2,) * 14)[0])
        first, second = self._couple(married, locality, (0.015, 0.02))
        party_1, party_2, before = self._partners(first, second, married, partnership=False)
        where = rng.choices(("office", "venue", "church"), weights=(22, 58, 20))[0]
        place = (
            office
            if where == "office"
            else (f"{rng.choice(_VENUES if where == 'venue' else _CHURCHES)}, {locality.town}")
        )
        details = MarriageDetails(
            date_of_registration=day,
            date_of_marriage=married,
            place_of_marriage=place,
            party_1=party_1,
            party_2=party_2,
        )
        return details, before

    def _civil_partnership(self, day: date, locality: Locality, office: str) -> tuple[CivilPartnershipDetails, _Undo]:
        """A civil partnership, registered when the partners sign (mostly opposite-sex since 2019)."""
        rng = self.rng
        first, second = self._couple(day, locality, (0.1, 0.1))
        partner_1, partner_2, before = self._partners(first, second, day, partnership=True)
        place = office if rng.random() < 0.5 else f"{rng.choice(_VENUES)}, {locality.town}"
        details = CivilPartnershipDetails(
            date_of_registration=day,
            date_of_formation=day,
            place_of_formation=place,
            partner_1=partner_1,
            partner_2=partner_2,
        )
        return details, before


def simulate_registrations(
    count: int, seed: int = 0, start: date = DEFAULT_START, *, rates: SimulationRates = DEFAULT_RATES
) -> Iterator[Event]:
    """``count`` synthetic events in time order, the same for the same arguments; constant memory."""
    return RegistrationSimulator(seed, start, rates).events(count)


def simulate_population(
    count: int, seed: int = 0, start: date = DEFAULT_START, *, rates: SimulationRates = DEFAULT_RATES
) -> SimulatedPopulation:
    """The events ``simulate_registrations`` yields for these arguments, plus every person they mention."""
    simulator = RegistrationSimulator(seed, start, rates, keep_people=True)
    events = list(simulator.events(count))
    return SimulatedPopulation(seed=seed, start=start, events=events, people=simulator.people)


def event_record(event: Event) -> dict[str, Any]:
    """One JSONL record: ``event_type`` first, then the fields as JSON (``model_dump(mode="json")``)."""
    return {"event_type": event.event_type, **event.model_dump(mode="json")}


def event_from_record(record: Mapping[str, Any]) -> Event:
    """The event a record describes, validated; raises KeyError for an unknown type, ValidationError for bad data."""
    model = EVENT_MODELS[record["event_type"]]
    return model.model_validate({key: value for key, value in record.items() if key != "event_type"})


def write_jsonl(events: Iterable[Event], out: TextIO) -> int:
    """Write one JSON object per line (the layout ``producers.event_files`` reads); returns how many."""
    written = 0
    for event in events:
        out.write(json.dumps(event_record(event), ensure_ascii=False, separators=(",", ":")))
        out.write("\n")
        written += 1
    return written


def publish_events(events: Iterable[Event], sink: EventSink) -> int:
    """Publish every event then flush, so the count returned has been acknowledged."""
    published = 0
    for event in events:
        sink.publish(event)
        published += 1
    sink.flush()
    return published
