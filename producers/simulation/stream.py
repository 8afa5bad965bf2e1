"""The stream and population driver: one simulated run of registrations, in time order, in constant memory.

Each tick draws the office-time gap to the next registration, emits the corrections and voids now due
(``follow_ups``), then a new entry: a register weighted by its annual volume, a district weighted by population,
the next entry number (``entries``) and the entry itself (``births``, ``deaths``, ``partnerships``), first
registered with an error when a correction is drawn (``corrections``).

``simulate_registrations`` streams events in constant memory (a ten-year back-fill is 15 million events);
``simulate_population`` also keeps the people, so mailing lists and department registers can be drawn from the same
people the registrations talk about.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol, TextIO

from producers.event_files import event_record, write_json_lines
from producers.simulation.births import birth
from producers.simulation.calendar import DEFAULT_START, OfficeClock
from producers.simulation.corrections import Details
from producers.simulation.deaths import death, record_death
from producers.simulation.entries import EntryNumbers
from producers.simulation.follow_ups import FollowUps
from producers.simulation.partnerships import civil_partnership, marriage
from producers.simulation.people import Cast, SyntheticPerson, Undo
from producers.simulation.places import choose_district
from producers.simulation.rates import DEFAULT_RATES, REGISTERS, SimulationRates
from schemas.models import (
    EVENT_MODELS,
    BirthDetails,
    BirthRegistered,
    CivilPartnershipRegistered,
    DeathDetails,
    DeathRegistered,
    Event,
    MaritalStatus,
    MarriageDetails,
    MarriageRegistered,
    Register,
)

__all__ = [
    "EventSink",
    "RegistrationSimulator",
    "SimulatedPopulation",
    "event_from_record",
    "event_record",
    "publish_events",
    "simulate_population",
    "simulate_registrations",
    "write_jsonl",
]


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
        self._survivor_rng = random.Random(f"survivors/{seed}")  # its own stream: see ``deaths``
        self.rates = rates
        self._cast = Cast(self.rng, keep_people=keep_people)
        self._clock = OfficeClock(start)
        self._register_cum_weights = rates.register_cum_weights
        self._entries = EntryNumbers(seed)
        self._follow_ups = FollowUps(self.rng, rates)

    @property
    def people(self) -> list[SyntheticPerson]:
        """Everyone the events so far name, as they leave them (empty unless ``keep_people``)."""
        return self._cast.people

    def events(self, count: int) -> Iterator[Event]:
        """The next ``count`` events in time order."""
        emitted = 0
        while emitted < count:
            moment = self._clock.advance(self.rng.expovariate(1 / self.rates.mean_gap_seconds))
            while emitted < count and (due := self._follow_ups.pop_due(moment)) is not None:
                yield due.event(self._event_id())
                emitted += 1
            if emitted < count:
                yield self._register(moment)
                emitted += 1

    def _event_id(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def _register(self, moment: datetime) -> Event:
        """A new entry, with its correction and void scheduled when it draws them."""
        rng = self.rng
        register = rng.choices(REGISTERS, cum_weights=self._register_cum_weights)[0]
        district, locality = choose_district(rng)
        office = district.register_office(locality)
        day = moment.date()
        entry = self._entries.next(district, locality, register, day)
        void_subjects: Undo = ()
        truth: Details
        if register is Register.BIRTH:
            truth = birth(self._cast, day, locality, self.rates.stillbirth_share)
        elif register is Register.DEATH:
            truth, deceased, survivor = death(self._cast, self._survivor_rng, day, locality)
            void_subjects = record_death(entry, deceased, survivor)
        elif register is Register.MARRIAGE:
            truth, void_subjects = marriage(self._cast, day, locality, office)
        else:
            truth, void_subjects = civil_partnership(self._cast, day, locality, office)
        original = self._follow_ups.schedule(moment, entry, office, truth, void_subjects)
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


def event_from_record(record: Mapping[str, Any]) -> Event:
    """The event a record describes, validated; raises KeyError for an unknown type, ValidationError for bad data."""
    model = EVENT_MODELS[record["event_type"]]
    return model.model_validate({key: value for key, value in record.items() if key != "event_type"})


def write_jsonl(events: Iterable[Event], out: TextIO) -> int:
    """Write one JSON object per line (the layout ``producers.event_files`` reads); returns how many."""
    return write_json_lines(events, out)


def publish_events(events: Iterable[Event], sink: EventSink) -> int:
    """Publish every event then flush, so the count returned has been acknowledged."""
    published = 0
    for event in events:
        sink.publish(event)
        published += 1
    sink.flush()
    return published
