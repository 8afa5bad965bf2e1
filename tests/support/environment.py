"""Where the repository is, and how a test hands its settings to a ``civreg`` subprocess.

Plain helpers for test modules and conftest alike (conftest holds fixtures only); a free port for a server the
test starts comes from ``deploy.local.jvm.free_port``.
"""

from __future__ import annotations

import os
from pathlib import Path

from civreg.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DATA_DIR = REPO / "tests" / "data"
"""Sample event files the tests read (``deaths.csv``, ``deaths.jsonl``)."""


def settings_env(settings: Settings) -> dict[str, str]:
    """Environment variables that make a subprocess ``civreg`` use ``settings``."""
    env = dict(os.environ)
    env.update(
        {
            "CIVREG_HOME": str(settings.home),
            "CIVREG_LOCAL_PORT": str(settings.local_port),
            "CIVREG_TOPIC_PREFIX": settings.topic_prefix,
            "CIVREG_DATABASE_DIR": str(settings.database_dir),
            "CIVREG_SESSION_TIMEOUT_MS": str(settings.session_timeout_ms),
        }
    )
    if settings.bootstrap_servers:
        env["CIVREG_BOOTSTRAP_SERVERS"] = settings.bootstrap_servers
    env.pop("CIVREG_POSTGRES_DSN", None)
    env.pop("CIVREG_REGISTRY_URL", None)
    if settings.registry_url is not None:
        env["CIVREG_REGISTRY_URL"] = settings.registry_url
    if settings.postgres_dsn is not None:
        env["CIVREG_POSTGRES_DSN"] = settings.postgres_dsn.get_secret_value()
    return env
