"""Start a department consumer from settings: the one place that wires store, codec and runtime together."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from civreg.cluster import require_topics
from civreg.settings import Settings
from civreg.stopping import install_stop_handlers, raise_if_stopping
from consumers.departments import department_named
from consumers.operations.acknowledgements import AcknowledgementPublisher
from consumers.runtime import BatchReport, Department, DepartmentConsumer, SqliteStore, Store
from consumers.runtime.metrics import operators_view
from consumers.runtime.postgres_store import PostgresStore, schema_for
from schemas.topics import acknowledgement_topic

__all__ = ["ProgressCallback", "open_store", "run_department"]

ProgressCallback = Callable[[int, int], None]
"""Called after each batch with (messages processed so far, messages still behind): back-fill progress."""


def _department(department: str | Department[Any]) -> Department[Any]:
    return department_named(department) if isinstance(department, str) else department


def open_store(settings: Settings, department: str | Department[Any], database: Path | None = None) -> Store:
    """The department's store, created with its tables if new.

    PostgreSQL (schema ``civreg_<department>``) when ``CIVREG_POSTGRES_DSN`` is set and no SQLite file is named;
    otherwise the SQLite file ``database`` (default: ``$CIVREG_DATABASE_DIR/<department>.sqlite3``).
    """
    declared = _department(department)
    if database is None and settings.postgres_dsn is not None:
        return PostgresStore(settings.postgres_dsn.get_secret_value(), schema_for(declared.name), declared.schema)
    return SqliteStore(database or settings.department_database(declared.name), declared.schema)


def run_department(
    settings: Settings,
    department: str | Department[Any],
    *,
    database: Path | None = None,
    until_caught_up: bool = False,
    batch_size: int = 500,
    handle_signals: bool = True,
    metrics_port: int | None = None,
    on_progress: ProgressCallback | None = None,
) -> BatchReport:
    """Consume for ``department`` until stopped (SIGTERM/SIGINT) or, with ``until_caught_up``, until at the end.

    Metrics are always recorded; ``metrics_port`` (default ``settings.metrics_port``, 0 = none) also serves
    /metrics, /healthz and /readyz. Scrapes read through a second store connection, never the consumer's.
    Every outcome is acknowledged on the acknowledgement topic after its commit
    (``consumers.operations.acknowledgements``); ``on_progress`` follows a back-fill.

    A stop requested while starting (SIGTERM while waiting for the registry, say) raises ``StopRequested``
    after releasing what was opened: nothing was read, the caller exits cleanly.
    """
    if handle_signals:
        install_stop_handlers()  # first: a SIGTERM during any start-up wait below is a clean stop
    raise_if_stopping()
    declared = _department(department)
    prefix = settings.topic_prefix
    require_topics(settings, [*declared.topics(prefix), acknowledgement_topic(prefix)])  # before a client dies on it
    raise_if_stopping()
    store = open_store(settings, department, database)
    probe: Store | None = None
    consumer: DepartmentConsumer | None = None
    acknowledgements: AcknowledgementPublisher | None = None
    try:
        raise_if_stopping()
        probe = open_store(settings, department, database)
        acknowledgements = AcknowledgementPublisher(settings, declared.name, store)
        consumer = DepartmentConsumer(declared, settings, store, batch_size=batch_size)
        raise_if_stopping()
        acknowledgements.publish_owed_or_defer()  # anything a crash left unsent
        acknowledgements.attach(consumer)
        if on_progress is not None:
            _follow_progress(consumer, on_progress)
        raise_if_stopping()
        port = settings.metrics_port if metrics_port is None else metrics_port
        with operators_view(consumer, probe, port=port, host=settings.metrics_host):
            return consumer.run(until_caught_up=until_caught_up)
    finally:
        if consumer is not None:
            consumer.close()  # idempotent; needed when the endpoint could not start and run() never did
        if acknowledgements is not None:
            acknowledgements.close()
        if probe is not None:
            probe.close()
        store.close()


def _follow_progress(consumer: DepartmentConsumer, on_progress: ProgressCallback) -> None:
    """Report (processed, behind) after each batch; ``lag`` reads the fetcher's cached high watermarks."""
    processed = 0

    def report(batch: BatchReport) -> None:
        nonlocal processed
        processed += batch.messages
        on_progress(processed, sum(consumer.lag().values()))

    consumer.on_batch_committed(report)
