"""Deterministic synthetic registrations for demos, tests and back-fill rehearsals, and the people they name.

Why: departments must be exercised with realistic traffic (the mix, the delays, corrections and voids, awkward
identifiers) long before any real register office connects, and the same seed must give the same stream so a
failing run can be replayed (``tests/unit/test_simulation_digest.py`` pins it). Volumes follow England and Wales.

One module per fact:

- ``calendar``: open days and office hours, registration lags, "never after today" (``SimulationReachesToday``);
- ``rates``: annual volumes per register, follow-up shares and delays (``SimulationRates``);
- ``places`` and ``people``: districts, addresses, names and identifiers; the cast of a run;
- ``entries``: entry numbers per register, sub-district and year, and each seed's register number;
- ``births``, ``deaths`` (with the surviving partner), ``partnerships`` (marriage and civil partnership): what an
  entry of each register records;
- ``corrections``: the clerical errors an entry is first registered with; ``follow_ups``: corrections and voids
  in time order, and what a void puts back;
- ``stream``: the driver (``simulate_registrations``, ``simulate_population``) and the JSONL and publishing helpers.
"""

from producers.simulation.calendar import DEFAULT_START, SimulationReachesToday
from producers.simulation.entries import register_number_of
from producers.simulation.rates import DEFAULT_RATES, SimulationRates
from producers.simulation.stream import (
    EventSink,
    RegistrationSimulator,
    SimulatedPopulation,
    event_from_record,
    event_record,
    publish_events,
    simulate_population,
    simulate_registrations,
    write_jsonl,
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
