"""How a department declares itself: its name, the registers it receives, its tables and its handlers.

A department module reads like a page of business rules::

    suppression = Department("suppression", registers={Register.DEATH}, schema=SCHEMA, records=SuppressionList)

    @suppression.handles(DeathRegistered)
    def stop_letters_to_the_deceased(event: DeathRegistered, records: SuppressionList) -> Result:
        ...

It never sees bytes, offsets or Kafka: the runtime decodes, de-duplicates, opens the transaction and records the
outcome. The declaration is typed: ``Department[SuppressionList]`` takes only handlers of ``(the event type named in
handles(...), SuppressionList)``, so mypy rejects a handler written for another event or another records class.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from consumers.runtime.outcomes import Result
from consumers.runtime.store import Transaction
from schemas.models import EVENT_MODELS, REGISTRATION_EVENTS, Event, RegistrationCorrected, RegistrationVoided
from schemas.topics import Register, dead_letter_topic, registration_topic

__all__ = ["Decliner", "Department", "Handler", "Resolver"]

RecordsT = TypeVar("RecordsT")
EventT = TypeVar("EventT", bound=Event)
Handler = Callable[[Event, RecordsT], Result]
"""A rule as the runtime calls it: any event of the department's topics, and the department's records."""
Resolver = Callable[[Event, str, RecordsT], Result]
"""How a reviewed event is applied: the event, the record a reviewer chose, the department's records."""
Decliner = Callable[[Event, str | None, RecordsT], Result]
"""How a reviewer's "no record matches" is applied: the event, the person's role (or None), the records."""


def _only(event_types: tuple[type[EventT], ...], rule: str, event: Event) -> EventT:
    """``event`` as the type its rule was declared for (the runtime routes by type, so this never fails there)."""
    if not isinstance(event, event_types):
        raise TypeError(
            f"{rule} is declared for {', '.join(t.event_type for t in event_types)}, not {event.event_type}"
        )
    return event


@dataclass
class Department(Generic[RecordsT]):
    """A department: what it receives (registers), where it keeps its records, and what it does with each event."""

    name: str
    registers: frozenset[Register]
    schema: str
    records: Callable[[Transaction], RecordsT]
    legal_gateway: str = ""
    handlers: dict[str, Handler[RecordsT]] = field(default_factory=dict)
    resolvers: dict[str, Resolver[RecordsT]] = field(default_factory=dict)
    decliners: dict[str, Decliner[RecordsT]] = field(default_factory=dict)

    def handles(
        self, *event_types: type[EventT]
    ) -> Callable[[Callable[[EventT, RecordsT], Result]], Callable[[EventT, RecordsT], Result]]:
        """Register the decorated function as this department's handler for ``event_types`` (returned unchanged)."""

        def register(handler: Callable[[EventT, RecordsT], Result]) -> Callable[[EventT, RecordsT], Result]:
            name = getattr(handler, "__qualname__", "a handler")

            def run(event: Event, records: RecordsT) -> Result:
                return handler(_only(event_types, name, event), records)

            for event_type in event_types:
                if event_type.event_type in self.handlers:
                    raise ValueError(f"{self.name} already handles {event_type.event_type}")
                self.handlers[event_type.event_type] = run
            return handler

        return register

    def resolves(
        self, *event_types: type[EventT]
    ) -> Callable[[Callable[[EventT, str, RecordsT], Result]], Callable[[EventT, str, RecordsT], Result]]:
        """Register how a person's review decision is applied: the event, applied to the record they chose."""

        def register(
            resolver: Callable[[EventT, str, RecordsT], Result],
        ) -> Callable[[EventT, str, RecordsT], Result]:
            name = getattr(resolver, "__qualname__", "a resolver")

            def run(event: Event, record_id: str, records: RecordsT) -> Result:
                return resolver(_only(event_types, name, event), record_id, records)

            for event_type in event_types:
                self.resolvers[event_type.event_type] = run
            return resolver

        return register

    def declines(
        self, *event_types: type[EventT]
    ) -> Callable[[Callable[[EventT, str | None, RecordsT], Result]], Callable[[EventT, str | None, RecordsT], Result]]:
        """Register how a reviewer's "no record matches" is applied when the entry names several people.

        The decliner receives the person's role in the entry (None when the reviewer named none) and answers
        needs_review while another person in the entry still waits, so the item stays open for them.
        """

        def register(
            decliner: Callable[[EventT, str | None, RecordsT], Result],
        ) -> Callable[[EventT, str | None, RecordsT], Result]:
            name = getattr(decliner, "__qualname__", "a decliner")

            def run(event: Event, party: str | None, records: RecordsT) -> Result:
                return decliner(_only(event_types, name, event), party, records)

            for event_type in event_types:
                self.decliners[event_type.event_type] = run
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
        types = {REGISTRATION_EVENTS[register].event_type for register in self.registers}
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
        """The registration topics this department subscribes to."""
        return sorted(registration_topic(register, prefix) for register in self.registers)

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
