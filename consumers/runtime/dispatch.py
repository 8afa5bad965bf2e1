"""One decoded event through a department, inside the batch's transaction: the runtime's apply path, without Kafka.

The steps, in order, and why:

1. the data-sharing agreement withholds the event or minimises it (the department sees only what it may hold);
2. an event id that already has an outcome is a **duplicate** (a redelivery): nothing is applied;
3. an event claiming an entry version another event already holds is compared by content
   (``content_digest``: the event as the department received it, without ``event_id`` and ``recorded_at``):
   the same content is a **duplicate** too (a register office re-sent it under a new id: nothing is applied, and
   it is recorded with the first event's outcome and the note "same content as event <id>"); other content is a
   **conflict**, dead-lettered with reason ``conflicting-entry-version``, never skipped and never applied by
   guess (two different facts cannot both be version N of one entry);
4. otherwise the department's rule runs in a savepoint: a ``PermanentError`` (or a bug) undoes only this event and
   dead-letters it, a ``TransientError`` rolls the whole batch back for a retry. The runtime may ask for no
   savepoint (``isolated=False``: most batches have no failing event, and a savepoint costs round trips); then
   a failing rule raises ``EventFailed`` instead, and the runtime rolls the batch back and runs it again with
   savepoints, so the outcome is the same as if every event had had one;
5. a needs-review result is queued with the event; the outcome is recorded with the content digest.

``DepartmentConsumer`` runs this for each message of a batch (and writes the dead letters); tests drive departments
through it directly.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from typing import Any

import orjson

from consumers.runtime.agreements import Agreement
from consumers.runtime.department import Department
from consumers.runtime.errors import PermanentError, TransientError
from consumers.runtime.outcomes import Outcome, Result
from consumers.runtime.store import Transaction
from schemas.models import Event

__all__ = [
    "CONFLICTING_ENTRY_VERSION",
    "ConflictingEntryVersion",
    "Dispatched",
    "EventFailed",
    "content_digest",
    "dispatch",
]

CONFLICTING_ENTRY_VERSION = "conflicting-entry-version"


class ConflictingEntryVersion(PermanentError):
    """Another event with other content already holds this entry version: a person must say which is right."""

    reason = CONFLICTING_ENTRY_VERSION


def content_digest(event: Event) -> str:
    """SHA-256 of the event's content as the department received it, without ``event_id`` and ``recorded_at``.

    Fields left at their defaults do not count, so a compatible schema change that adds an optional field does not
    turn a re-sent event into a conflict. The digest is of minimised data only and names nobody.
    """
    content = event.model_dump(mode="json", exclude={"event_id", "recorded_at"}, exclude_defaults=True)
    return hashlib.sha256(canonical_json({"event_type": event.event_type, **content})).hexdigest()


_PRINTABLE_ASCII = re.compile(rb"[ -~]*")


def canonical_json(value: dict[str, Any]) -> bytes:
    """``json.dumps(value, sort_keys=True, separators=(",", ":"))`` encoded, byte for byte: stored digests depend on it.

    orjson writes the same bytes whenever the result is printable ASCII without a ``\\u`` escape (the standard
    library escapes every other character as ``\\uXXXX``, orjson writes it as UTF-8), in half the time; anything
    else (a Welsh place name, say) is written by the standard library, as before. Event content holds text,
    whole numbers, booleans and nulls only (no model has a float, whose two spellings differ);
    ``tests/unit/test_canonical_json.py`` checks the bytes are equal.
    """
    try:
        fast: bytes | None = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits, a key that is not text: the standard library's
        fast = None
    if fast is not None and _PRINTABLE_ASCII.fullmatch(fast) and b"\\u" not in fast:
        return fast
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


class EventFailed(Exception):
    """A rule failed for one event run without a savepoint: the batch must be run again with savepoints."""


@dataclass(frozen=True)
class Dispatched:
    """What the runtime did with one event (no personal data)."""

    event: Event
    """The event as the department received it (minimised by its agreement)."""
    result: Result | None = None
    """The recorded outcome; None when nothing was recorded (withheld, or the same event id again)."""
    withheld: str | None = None
    """Why the agreement kept the event from the department."""
    duplicate_of: str | None = None
    """The event id whose outcome already stands for this one (its own id on a redelivery, with no result)."""
    error: Exception | None = None
    """Why it was dead-lettered (the runtime writes the dead letter from it)."""
    handler_seconds: float = 0.0

    @property
    def reason(self) -> str:
        """The dead-letter reason code ("" unless dead-lettered)."""
        if self.error is None:
            return ""
        return self.error.reason if isinstance(self.error, PermanentError) else "handler-crashed"


def dispatch(
    department: Department[Any],
    agreement: Agreement,
    transaction: Transaction,
    event: Event,
    *,
    topic: str,
    partition: int,
    offset: int,
    isolated: bool = True,
) -> Dispatched:
    """Withhold, de-duplicate, check the entry version, apply and record one event (see the module docstring)."""
    withheld = agreement.withheld_because(event)
    if withheld is not None:
        return Dispatched(event, withheld=withheld)
    event = agreement.minimise(event)
    event_id = str(event.event_id)
    # Applied once: a redelivered event is skipped, except one that was dead-lettered (a re-drive).
    if transaction.outcome_of(event_id) not in (None, Outcome.DEAD_LETTERED.value):
        return Dispatched(event, duplicate_of=event_id)
    digest = content_digest(event)
    error: Exception | None = None
    handler_seconds = 0.0
    holders = transaction.version_holders(event.entry.key, event.version, other_than=event_id)

    def record(result: Result) -> None:
        """The event's one outcome row, with its entry, version and content digest."""
        transaction.record_outcome(
            event_id=event_id,
            event_type=event.event_type,
            entry_key=event.entry.key,
            version=event.version,
            outcome=result.outcome.value,
            note=result.note,
            topic=topic,
            partition=partition,
            offset=offset,
            content_digest=digest,
        )

    if any(held == digest for _, held in holders):
        # Re-sent under a new id: nothing is applied again, but this id gets its own outcome (the first one's),
        # so trace and the acknowledgement answer it too.
        first = next(held_by for held_by, held in holders if held == digest)
        held_outcome = Outcome(transaction.outcome_of(first) or Outcome.APPLIED.value)
        result = Result(held_outcome, f"same content as event {first}")
        record(result)
        return Dispatched(event, result, duplicate_of=first)
    if holders:
        held_by = holders[0][0]
        error = ConflictingEntryVersion(
            f"version {event.version} of this entry was already applied from event {held_by} with other content"
        )
        result = Result(Outcome.DEAD_LETTERED, f"{CONFLICTING_ENTRY_VERSION}: {error}")
    else:
        started = time.perf_counter()
        try:
            if isolated:
                with transaction.savepoint():
                    result = department.apply(event, transaction)
            else:
                result = department.apply(event, transaction)
        except TransientError:
            raise
        except Exception as exc:  # PermanentError, or a bug in a rule: never stop the department
            if not isolated:
                raise EventFailed(type(exc).__name__) from exc
            error = exc
            result = Result(Outcome.DEAD_LETTERED, exc.reason if isinstance(exc, PermanentError) else "handler-crashed")
        handler_seconds = time.perf_counter() - started
    if result.outcome is Outcome.NEEDS_REVIEW:
        transaction.enqueue_review(
            event_id=event_id,
            event_type=event.event_type,
            entry_key=event.entry.key,
            note=result.note,
            candidates=result.candidates,
            event_json=event.model_dump_json(),
        )
    record(result)
    return Dispatched(event, result, error=error, handler_seconds=handler_seconds)
