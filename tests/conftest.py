"""Shared fixtures: ONE real Kafka broker per test session, unique topics per test.

The broker is the project's own local runner (``deploy.local.kafka``) on free ports in a temporary directory, so a
developer's ``civreg dev up`` broker is never touched. Set ``CIVREG_TEST_BOOTSTRAP_SERVERS`` to run the
integration tests against a broker you already have instead.

Department stores on both engines (SQLite and a real PostgreSQL), for department and runtime tests:

- ``store_backend``: parametrised ``[sqlite]`` / ``[postgres]``; a ``Settings`` (no Kafka needed) whose
  ``consumers.operations.running.open_store(store_backend, "tax")`` opens a private SQLite file, or the department's
  schema in a fresh PostgreSQL database of its own. Use it instead of building a ``SqliteStore`` by hand.
- ``bus_store_settings``: ``bus_settings`` (real broker, unique topics) with ``store_backend``'s store, for Kafka
  tests on both engines (``run_department(bus_store_settings, ...)``).
- ``postgres_dsn`` (session): superuser DSN of the session's PostgreSQL server (``initdb`` + ``pg_ctl`` on a free
  port in a temporary directory, as the ``postgres`` user when run as root; stopped at the end), started only if a
  test needs it. ``postgres_database``: a fresh database on it per test. Set ``CIVREG_TEST_POSTGRES_DSN`` to use a
  server you already have. Tests on PostgreSQL carry the ``postgres`` marker and live in ``tests/integration``
  (``make unit`` runs none).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from psycopg import sql
from psycopg.conninfo import make_conninfo
from pydantic import SecretStr

from civreg.kafka_config import admin_config
from civreg.settings import Settings
from deploy.local.jvm import free_port
from deploy.local.kafka import LocalKafka
from deploy.local.registry import LocalRegistry
from deploy.topics import apply_topics
from schemas.departments import DEPARTMENT_NAMES
from tests.support.environment import REPO
from tests.support.local_postgres import LocalPostgres


@pytest.fixture(scope="session")
def kafka_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings pointing at the session's real broker (started here, stopped at the end)."""
    external = os.environ.get("CIVREG_TEST_BOOTSTRAP_SERVERS")
    if external:
        yield Settings(bootstrap_servers=external, home=tmp_path_factory.mktemp("civreg-home"), postgres_dsn=None)
        return
    settings = Settings(
        home=tmp_path_factory.mktemp("civreg-kafka"),
        cache_dir=REPO / ".cache",
        local_port=free_port(),
        local_controller_port=free_port(),
        session_timeout_ms=6_000,  # a SIGKILLed consumer's partitions move on quickly
        postgres_dsn=None,  # SQLite unless a test asks for store_backend / bus_store_settings
        local_secure=bool(os.environ.get("CIVREG_TEST_SECURE")),  # TLS + SASL + ACLs; tests then run as admin
    )
    broker = LocalKafka(settings)
    broker.ensure_jars()
    broker.start(timeout=120)
    try:
        yield broker.client_settings()
    finally:
        broker.stop()


@pytest.fixture
def bus_settings(kafka_settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    """Settings with a unique topic prefix (its topics created) and a private database directory.

    The test's topics are deleted afterwards: a session creates thousands of partitions otherwise, and a small-heap
    broker (or one shared by several sessions) runs out of memory holding them.
    """
    settings = kafka_settings.model_copy(
        update={"topic_prefix": f"t{uuid.uuid4().hex[:12]}", "database_dir": tmp_path / "departments"}
    )
    apply_topics(settings, DEPARTMENT_NAMES, replication_factor=1, profile="local")
    _wait_for_leaders(settings)
    yield settings
    _delete_topics_under(settings)


def _delete_topics_under(settings: Settings) -> None:
    """Delete every topic under the test's prefix (best effort: a broker a test stopped is not an error here)."""
    admin = AdminClient(admin_config(settings))
    try:
        names = [name for name in admin.list_topics(timeout=10).topics if name.startswith(f"{settings.topic_prefix}.")]
        if names:
            for future in admin.delete_topics(names, operation_timeout=30).values():
                future.result()
    except KafkaException:
        pass


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


@pytest.fixture(scope="session")
def local_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry | None]:
    """The session's real schema registry: Apicurio via ``deploy.local.registry`` on free ports in a temporary
    directory (fetched with Maven on first use, started once, stopped at the end). None when
    ``CIVREG_TEST_REGISTRY_URL`` names a registry you already have."""
    if os.environ.get("CIVREG_TEST_REGISTRY_URL"):
        yield None
        return
    settings = Settings(
        home=tmp_path_factory.mktemp("civreg-registry"),
        cache_dir=REPO / ".cache",
        local_registry_port=free_port(),
        local_registry_health_port=free_port(),
        postgres_dsn=None,
    )
    registry = LocalRegistry(settings)
    registry.ensure_installed()
    registry.start(timeout=180)
    try:
        yield registry
    finally:
        registry.stop()


@pytest.fixture(scope="session")
def registry_url(local_registry: LocalRegistry | None) -> str:
    """URL (Confluent-compatible API) of the session's schema registry."""
    return os.environ.get("CIVREG_TEST_REGISTRY_URL") or (local_registry.url if local_registry else "")


@pytest.fixture
def registry_settings(bus_settings: Settings, registry_url: str) -> Settings:
    """``bus_settings`` whose publishers and consumers use the session's registry; subjects are under the test's
    unique topic prefix, so tests never share a subject."""
    return bus_settings.model_copy(update={"registry_url": registry_url})


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """Superuser DSN of the session's real PostgreSQL server (started on first use, stopped at the end)."""
    external = os.environ.get("CIVREG_TEST_POSTGRES_DSN")
    if external:
        yield external
        return
    server = LocalPostgres.create()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def postgres_database(postgres_dsn: str) -> Iterator[str]:
    """DSN of a fresh, empty database for one test (dropped afterwards, whoever is still connected)."""
    name = f"t{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(postgres_dsn, dbname=name)
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


STORE_BACKENDS = ("sqlite", pytest.param("postgres", marks=pytest.mark.postgres))


@pytest.fixture(params=STORE_BACKENDS)
def store_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for department stores on SQLite (private files) or PostgreSQL (a fresh database); see the docstring."""
    settings = Settings(home=tmp_path / "civreg-home", database_dir=tmp_path / "departments", postgres_dsn=None)
    if request.param == "postgres":
        dsn = request.getfixturevalue("postgres_database")
        settings = settings.model_copy(update={"postgres_dsn": SecretStr(dsn)})
    return settings


@pytest.fixture
def bus_store_settings(bus_settings: Settings, store_backend: Settings) -> Settings:
    """``bus_settings`` with ``store_backend``'s department store: Kafka tests on both engines."""
    return bus_settings.model_copy(update={"postgres_dsn": store_backend.postgres_dsn})
