"""How a department declares itself: its name, the registers it receives, its tables and its handlers.

A department module reads like a page of business rules::

    suppression = Department("suppression", registers={Register.DEATH}, schema=SCHEMA, records=SuppressionList)

    @suppression.handles(DeathRegistered)
    def stop_letters_to_the_deceased(event: DeathRegistered, records: SuppressionList) -> Result:
        ...

It never sees bytes, offsets or Kafka: the runtime decodes, de-duplicates, opens the transaction and records the
outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from consumers.runtime.outcomes import Result
from consumers.runtime.store import Transaction
from schemas.models import EVENT_MODELS, Event, RegistrationCorrected, RegistrationVoided
from schemas.topics import Register, dead_letter_topic, department_topic

__all__ = ["Department", "Handler"]

RecordsT = TypeVar("RecordsT")
EventT = TypeVar("EventT", bound=Event)
Handler = Callable[[Any, Any], Result]
Resolver = Callable[[Any, str, Any], Result]
Decliner = Callable[[Any, str | None, Any], Result]

# Which event types travel on a register's topic: its own registration, and corrections and voids of its entries.
_REGISTRATION_TYPE: dict[Register, str] = {
    Register.BIRTH: "BirthRegistered",
    Register.DEATH: "DeathRegistered",
    Register.MARRIAGE: "MarriageRegistered",
    Register.CIVIL_PARTNERSHIP: "CivilPartnershipRegistered",
}


@dataclass
class Department(Generic[RecordsT]):
    """A department: what it receives (registers), where it keeps its records, and what it does with each event."""

    name: str
    registers: frozenset[Register]
    schema: str
    records: Callable[[Transaction], RecordsT]
    legal_gateway: str = ""
    handlers: dict[str, Handler] = field(default_factory=dict)
    resolvers: dict[str, Resolver] = field(default_factory=dict)
    decliners: dict[str, Decliner] = field(default_factory=dict)

    def handles(self, *event_types: type[EventT]) -> Callable[[Callable[[EventT, RecordsT], Result]], Any]:
        """Register the decorated function as this department's handler for ``event_types``."""

        def register(handler: Callable[[EventT, RecordsT], Result]) -> Callable[[EventT, RecordsT], Result]:
            for event_type in event_types:
                if event_type.event_type in self.handlers:
                    raise ValueError(f"{self.name} already handles {event_type.event_type}")
                self.handlers[event_type.event_type] = handler
            return handler

        return register

    def resolves(self, *event_types: type[EventT]) -> Callable[[Callable[[EventT, str, RecordsT], Result]], Any]:
        """Register how a person's review decision is applied: the event, applied to the record they chose."""

        def register(
            resolver: Callable[[EventT, str, RecordsT], Result],
        ) -> Callable[[EventT, str, RecordsT], Result]:
            for event_type in event_types:
                self.resolvers[event_type.event_type] = resolver
            return resolver

        return register

    def declines(self, *event_types: type[EventT]) -> Callable[[Callable[[EventT, str | None, RecordsT], Result]], Any]:
        """Register how a reviewer's "no record matches" is applied when the entry names several people.

        The decliner receives the person's role in the entry (None when the reviewer named none) and answers
        needs_review while another person in the entry still waits, so the item stays open for them.
        """

        def register(
            decliner: Callable[[EventT, str | None, RecordsT], Result],
        ) -> Callable[[EventT, str | None, RecordsT], Result]:
            for event_type in event_types:
                self.decliners[event_type.event_type] = decliner
            return decliner

        return register

    def decline(self, event: Event, party: str | None, transaction: Transaction) -> Result:
        """Apply a reviewer's "no record matches" (about ``party``, the person's role, when the entry names several)."""
        decliner = self.decliners.get(event.event_type)
        if decliner is not None:
            return decliner(event, party, self.records(transaction))
        if party is not None:
            raise ValueError(f"department {self.name!r} does not decide {event.event_type} reviews person by person")
        return Result.no_matching_record("reviewer: no record matches")

    def resolve(self, event: Event, record_id: str, transaction: Transaction) -> Result:
        """Apply ``event`` to the record a reviewer chose."""
        resolver = self.resolvers.get(event.event_type)
        if resolver is None:
            raise ValueError(f"department {self.name!r} cannot apply a reviewed {event.event_type} to a record")
        return resolver(event, record_id, self.records(transaction))

    @property
    def event_types(self) -> frozenset[str]:
        """Every event type that arrives on this department's topics."""
        types = {_REGISTRATION_TYPE[register] for register in self.registers}
        types |= {RegistrationCorrected.event_type, RegistrationVoided.event_type}
        return frozenset(types)

    def check_complete(self) -> None:
        """Refuse to start a department that would receive an event type it has no rule for."""
        missing = sorted(self.event_types - self.handlers.keys())
        if missing:
            raise ValueError(f"department {self.name!r} has no handler for {', '.join(missing)}")
        unknown = sorted(self.handlers.keys() - EVENT_MODELS.keys())
        if unknown:
            raise ValueError(f"department {self.name!r} handles unknown event types {', '.join(unknown)}")

    def topics(self, prefix: str) -> list[str]:
        """The one topic this department reads: its own, written by the router (``civreg route``) with only what
        its agreement allows."""
        return [department_topic(self.name, prefix)]

    def dead_letter_topic(self, prefix: str) -> str:
        """Where this department's unreadable or unappliable messages go."""
        return dead_letter_topic(self.name, prefix)

    def group_id(self, prefix: str) -> str:
        """Consumer group id: one per department, so each department reads every event once."""
        return f"{prefix}.department.{self.name}"

    def apply(self, event: Event, transaction: Transaction) -> Result:
        """Run this department's rule for ``event`` inside ``transaction``."""
        return self.handlers[event.event_type](event, self.records(transaction))

    @classmethod
    def declare(
        cls,
        name: str,
        *,
        registers: Iterable[Register],
        schema: str,
        records: Callable[[Transaction], RecordsT],
        legal_gateway: str = "",
    ) -> Department[RecordsT]:
        """Declare a department (the constructor, with registers as any iterable)."""
        return cls(name, frozenset(registers), schema, records, legal_gateway)
