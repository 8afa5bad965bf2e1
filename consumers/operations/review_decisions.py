"""The review desk: what ``civreg review`` does, over the needs-review queue (``consumers.runtime.review_queue``).

A reviewer's decision is committed with a fresh owed acknowledgement, then published at once so ``civreg trace``
shows the new outcome; if Kafka cannot take it now, the department's consumer publishes it after its next batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from civreg.errors import CivregError
from civreg.logs import get_logger
from civreg.settings import Settings
from consumers.departments import department_named
from consumers.operations.acknowledgements import AcknowledgementPublisher
from consumers.operations.running import open_store
from consumers.runtime import Department, Result, Store, TransientError
from consumers.runtime.review_queue import ReviewItem, open_reviews, resolve_review

__all__ = ["NoDepartmentStore", "Resolution", "list_reviews", "resolve"]

log = get_logger(__name__)


class NoDepartmentStore(CivregError, LookupError):
    """The department has no database here yet (its consumer has never run with these settings)."""


@dataclass(frozen=True)
class Resolution:
    """A reviewer's decision as applied, and whether its acknowledgement is already on the topic."""

    result: Result
    acknowledged: bool


def _open(settings: Settings, department: Department[Any]) -> Store:
    if settings.postgres_dsn is None and not settings.department_database(department.name).exists():
        raise NoDepartmentStore(
            f"department {department.name!r} has no database at {settings.department_database(department.name)}; "
            f"run 'civreg consume --department {department.name}' first"
        )
    return open_store(settings, department)


def list_reviews(settings: Settings, department: str, *, include_resolved: bool = False) -> list[ReviewItem]:
    """The department's queued events, oldest first."""
    store = _open(settings, department_named(department))
    try:
        return open_reviews(store, include_resolved=include_resolved)
    finally:
        store.close()


def resolve(
    settings: Settings,
    department: str,
    event_id: str,
    record_id: str | None,
    resolved_by: str,
    *,
    party: str | None = None,
) -> Resolution:
    """Apply the decision (``record_id``, or None for no matching record, about ``party`` when the entry names
    several people) and publish its acknowledgement."""
    declared = department_named(department)
    store = _open(settings, declared)
    try:
        retrying = Retrying(  # a consumer's batch may conflict with the decision on PostgreSQL: decide again
            retry=retry_if_exception_type(TransientError),
            wait=wait_exponential_jitter(multiplier=0.2, max=2),
            stop=stop_after_attempt(5),
            reraise=True,
        )
        result = retrying(resolve_review, store, declared, event_id, record_id, resolved_by, party=party)
        log.info("review-resolved", department=declared.name, event_id=event_id, outcome=result.outcome.value)
        publisher = AcknowledgementPublisher(settings, declared.name, store, flush_timeout=10.0)
        try:
            acknowledged = publisher.publish_owed(event_id) > 0
        except Exception as exc:  # the owed row stays; the department's consumer sends it
            log.warning("acknowledgement-deferred", department=declared.name, error_class=type(exc).__name__)
            acknowledged = False
        finally:
            publisher.close()
        return Resolution(result, acknowledged)
    finally:
        store.close()
