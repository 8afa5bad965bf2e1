"""Deterministic synthetic registrations and the people they name (see ``stream``)."""

from producers.simulation.stream import *  # noqa: F403
from producers.simulation.stream import __all__ as __all__
