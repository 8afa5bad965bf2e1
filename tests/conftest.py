"""Shared fixtures: ONE real Kafka broker per test session, unique topics per test.

The broker is the project's own local runner (``deploy.local_kafka``) on free ports in a temporary directory, so a
developer's ``civreg dev up`` broker is never touched. Set ``CIVREG_TEST_BOOTSTRAP_SERVERS`` to run the
integration tests against a broker you already have instead.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from civreg.kafka_config import admin_config
from civreg.settings import Settings
from deploy.local_kafka import LocalKafka
from deploy.topics import apply_topics

REPO = Path(__file__).resolve().parent.parent
TEST_DEPARTMENTS = ("suppression",)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def kafka_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings pointing at the session's real broker (started here, stopped at the end)."""
    external = os.environ.get("CIVREG_TEST_BOOTSTRAP_SERVERS")
    if external:
        yield Settings(bootstrap_servers=external, home=tmp_path_factory.mktemp("civreg-home"))
        return
    settings = Settings(
        home=tmp_path_factory.mktemp("civreg-kafka"),
        cache_dir=REPO / ".cache",
        local_port=_free_port(),
        local_controller_port=_free_port(),
        session_timeout_ms=6_000,  # a SIGKILLed consumer's partitions move on quickly
    )
    broker = LocalKafka(settings)
    broker.ensure_jars()
    broker.start(timeout=120)
    try:
        yield settings
    finally:
        broker.stop()


@pytest.fixture
def bus_settings(kafka_settings: Settings, tmp_path: Path) -> Settings:
    """Settings with a unique topic prefix (its topics created) and a private database directory."""
    settings = kafka_settings.model_copy(
        update={"topic_prefix": f"t{uuid.uuid4().hex[:12]}", "database_dir": tmp_path / "departments"}
    )
    apply_topics(settings, TEST_DEPARTMENTS, replication_factor=1, profile="local")
    _wait_for_leaders(settings)
    return settings


def _wait_for_leaders(settings: Settings, timeout: float = 30.0) -> None:
    """Block until every topic under the test's prefix is in metadata with a leader on each partition."""
    admin = AdminClient(admin_config(settings))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        topics = admin.list_topics(timeout=5).topics
        mine = {name: meta for name, meta in topics.items() if name.startswith(f"{settings.topic_prefix}.")}
        if mine and all(p.leader >= 0 for meta in mine.values() for p in meta.partitions.values()):
            return
        time.sleep(0.1)
    raise TimeoutError(f"topics under {settings.topic_prefix} have no leaders after {timeout} s")


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
    return env
