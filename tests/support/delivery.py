"""Deliver events to a department as the runtime's dispatch does, without Kafka (for pure rule tests).

The same steps as ``DepartmentConsumer._apply_batch`` for one event: the data-sharing agreement withholds or
minimises it, the rule runs in a savepoint, a needs-review result is queued with the (minimised) event, and the
outcome is recorded, so ``consumers.runtime.review_queue.resolve_review`` works on what it left. The Kafka tests run the
real consumer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from consumers.kit.customer_records import load_customer_records
from consumers.runtime import Department, Result, Store
from consumers.runtime.agreements import agreement_for
from schemas.models import Event

__all__ = ["deliver", "load_rows"]


def deliver(store: Store, department: Department[Any], event: Event) -> Result | None:
    """The department's result for ``event``, or None when its agreement withholds it."""
    agreement = agreement_for(department.name)
    if agreement.withheld_because(event) is not None:
        return None
    event = agreement.minimise(event)
    with store.transaction() as tx:
        with tx.savepoint():
            result = department.apply(event, tx)
        if result.outcome.value == "needs_review":
            tx.enqueue_review(
                event_id=str(event.event_id),
                event_type=event.event_type,
                entry_key=event.entry.key,
                note=result.note,
                candidates=result.candidates,
                event_json=event.model_dump_json(),
            )
        tx.record_outcome(
            event_id=str(event.event_id),
            event_type=event.event_type,
            entry_key=event.entry.key,
            version=event.version,
            outcome=result.outcome.value,
            note=result.note,
            topic="test",
            partition=0,
            offset=0,
        )
    return result


def load_rows(store: Store, department: Department[Any], rows: Sequence[Mapping[str, str]]) -> None:
    """Load register rows into the department's store."""
    load_customer_records(store, department, rows)
