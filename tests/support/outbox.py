"""Where a test's outbox lives on its store engine."""

from __future__ import annotations

from pathlib import Path

from civreg.settings import Settings


def outbox_target(settings: Settings, tmp_path: Path) -> str:
    """The outbox on ``store_backend``'s engine: its PostgreSQL database, or a SQLite file."""
    if settings.postgres_dsn is not None:
        return settings.postgres_dsn.get_secret_value()
    return str(tmp_path / "registrations.sqlite3")
