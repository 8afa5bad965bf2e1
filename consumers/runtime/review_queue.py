"""The needs-review queue: events a department could not match safely wait here for a person.

Nothing is applied by guess and nothing is dropped: the reviewer either names the department's record the event
is about (the department's resolver applies it) or says no record matches. Either way the event's recorded outcome
is updated in the same transaction. An entry naming two people (a marriage) may need a decision for each: when a
decision (a record, or "no record matches" for one party) leaves another person still needing review, the item stays
open with their candidates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from consumers.runtime.department import Department
from consumers.runtime.outcomes import Outcome, Result
from consumers.runtime.store import Store, now_iso
from schemas.models import EVENT_MODELS

__all__ = ["ReviewItem", "open_reviews", "resolve_review"]


@dataclass(frozen=True)
class ReviewItem:
    """One queued event (no personal data: the event itself stays in the database)."""

    event_id: str
    event_type: str
    entry_key: str
    note: str
    candidates: tuple[str, ...]
    status: str
    queued_at: str
    resolution: str | None


def _item(row: Any) -> ReviewItem:
    return ReviewItem(
        event_id=str(row[0]),
        event_type=str(row[1]),
        entry_key=str(row[2]),
        note=str(row[3]),
        candidates=tuple(json.loads(row[4])),
        status=str(row[5]),
        queued_at=str(row[6]),
        resolution=None if row[7] is None else str(row[7]),
    )


_COLUMNS = "event_id, event_type, entry_key, note, candidates, status, queued_at, resolution"


def open_reviews(store: Store, *, include_resolved: bool = False) -> list[ReviewItem]:
    """Queued events, oldest first."""
    where = "" if include_resolved else "WHERE status = 'open'"
    rows = store.read().execute(f"SELECT {_COLUMNS} FROM civreg_review_queue {where} ORDER BY queued_at, event_id")  # noqa: S608
    return [_item(row) for row in rows]


def resolve_review(
    store: Store,
    department: Department[Any],
    event_id: str,
    record_id: str | None,
    resolved_by: str,
    *,
    party: str | None = None,
) -> Result:
    """Apply a reviewer's decision: the event applies to ``record_id``, or (None) matches no record.

    ``party`` names the person a "no record matches" is about (``party_2``) when the entry names several.
    """
    with store.transaction() as tx:
        row = tx.one("SELECT event_type, event_json, status FROM civreg_review_queue WHERE event_id = ?", (event_id,))
        if row is None:
            raise LookupError(f"no review item for event {event_id}")
        if row[2] != "open":
            raise ValueError(f"review item for event {event_id} is already resolved")
        event = EVENT_MODELS[str(row[0])].model_validate_json(str(row[1]))
        if record_id is not None and party is not None:
            raise ValueError("a party is named only with 'no record matches'; a chosen record says whose it is")
        with tx.savepoint():
            if record_id is None:
                result = department.decline(event, party, tx)
            else:
                result = department.resolve(event, record_id, tx)
        if result.outcome is Outcome.NEEDS_REVIEW:
            if not result.candidates:
                raise ValueError("a resolver must decide; it returned needs_review again")
            # This person is decided; another person in the entry still waits for a reviewer.
            tx.execute(
                "UPDATE civreg_review_queue SET note = ?, candidates = ? WHERE event_id = ?",
                (result.note, json.dumps(list(result.candidates)), event_id),
            )
            tx.execute(
                "UPDATE civreg_event_outcomes SET note = ? WHERE event_id = ?",
                (f"reviewed in part: {result.note}", event_id),
            )
            return result
        tx.execute(
            "UPDATE civreg_review_queue SET status = 'resolved', resolution = ?, resolved_record = ?, "
            "resolved_by = ?, resolved_at = ? WHERE event_id = ?",
            (result.outcome.value, record_id, resolved_by, now_iso(), event_id),
        )
        tx.execute(
            "UPDATE civreg_event_outcomes SET outcome = ?, note = ? WHERE event_id = ?",
            (result.outcome.value, f"reviewed: {result.note}", event_id),
        )
        tx.queue_acknowledgement(event_id)
    return result
