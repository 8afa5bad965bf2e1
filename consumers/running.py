"""Start a department consumer from settings: the one place that wires store, codec and runtime together."""

from __future__ import annotations

from pathlib import Path

from civreg.settings import Settings
from consumers.departments import department_named
from consumers.runtime import BatchReport, DepartmentConsumer, SqliteStore

__all__ = ["open_store", "run_department"]


def open_store(settings: Settings, department: str, database: Path | None = None) -> SqliteStore:
    """The department's SQLite store (created with its tables if new)."""
    return SqliteStore(database or settings.department_database(department), department_named(department).schema)


def run_department(
    settings: Settings,
    department: str,
    *,
    database: Path | None = None,
    until_caught_up: bool = False,
    batch_size: int = 500,
    handle_signals: bool = True,
) -> BatchReport:
    """Consume for ``department`` until stopped (SIGTERM/SIGINT) or, with ``until_caught_up``, until at the end."""
    store = open_store(settings, department, database)
    try:
        consumer = DepartmentConsumer(department_named(department), settings, store, batch_size=batch_size)
        if handle_signals:
            consumer.install_signal_handlers()
        return consumer.run(until_caught_up=until_caught_up)
    finally:
        store.close()
