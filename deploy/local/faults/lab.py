"""The suite's own real processes: brokers, a three-node cluster, PostgreSQL and a registry, started on first use."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from pydantic import SecretStr
from rich.console import Console

from civreg.settings import Settings, load_settings
from consumers.suppression import department as suppression
from deploy.local.cluster import LocalKafkaCluster, NodePorts
from deploy.local.faults.results import FaultOptions
from deploy.local.jvm import free_port
from deploy.local.kafka import LocalKafka
from deploy.topics import DEFAULT_DEPARTMENTS, apply_topics

DEPARTMENT = suppression.name
CLEAN = f"{DEPARTMENT}-clean"
"""The clean pass's department name (its own consumer group and topics)."""


class Lab:
    """Brokers, a cluster, PostgreSQL and a registry, each started on first use and stopped by ``close``."""

    def __init__(self, options: FaultOptions, console: Console) -> None:
        self.options = options
        self.console = console
        self.workdir = Path(tempfile.mkdtemp(prefix="civreg-faults-"))
        self.base = load_settings().model_copy(
            update={
                "home": self.workdir / "home",
                "cache_dir": load_settings().cache_dir.resolve(),
                "postgres_dsn": None,
                "registry_url": None,
                "session_timeout_ms": 6_000,  # a killed consumer's partitions move on quickly
            }
        )
        self._broker: LocalKafka | None = None
        self._cluster: LocalKafkaCluster | None = None
        self._postgres: Any = None
        self._registry: Any = None

    def _own(self, home: str, *port_settings: str) -> Settings:
        """Settings for one of the suite's own servers: its home under the work directory, each port a free one."""
        return self.base.model_copy(
            update={"home": self.workdir / home, **{name: free_port() for name in port_settings}}
        )

    def broker(self) -> Settings:
        """Settings for a single-node broker of the suite's own."""
        if self._broker is None:
            broker = LocalKafka(self._own("broker", "local_port", "local_controller_port"))
            with self.console.status("starting the suite's Kafka broker"):
                broker.ensure_jars()
                broker.start(timeout=120)
            self._broker = broker
        return self.base.model_copy(update={"bootstrap_servers": self._broker.bootstrap})

    def cluster(self) -> tuple[LocalKafkaCluster, Settings]:
        """A three-node KRaft cluster of the suite's own, and settings naming every node."""
        if self._cluster is None:
            ports = [NodePorts(i, free_port(), free_port()) for i in (1, 2, 3)]
            cluster = LocalKafkaCluster(self.base.model_copy(update={"home": self.workdir / "cluster"}), ports=ports)
            with self.console.status("starting the suite's three-node Kafka cluster"):
                cluster.start(timeout=180)
            self._cluster = cluster
        return self._cluster, self.base.model_copy(update={"bootstrap_servers": self._cluster.bootstrap})

    def release_cluster(self) -> None:
        """Stop the cluster (three JVMs) once its scenarios are done: the machine is small."""
        if self._cluster is not None:
            self._cluster.stop()
            self._cluster = None

    def postgres(self) -> Any:
        """The suite's own PostgreSQL server (a ``LocalPostgres``): it is stopped and started by a scenario."""
        if self._postgres is None:
            from tests.support.local_postgres import LocalPostgres  # a checkout's test support, like the suite

            server = LocalPostgres.create()
            with self.console.status("starting the suite's PostgreSQL server"):
                server.start()
            self._postgres = server
        return self._postgres

    def database(self) -> str:
        """A fresh database on the suite's PostgreSQL server."""
        server = self.postgres()
        name = f"f{uuid.uuid4().hex[:12]}"
        with psycopg.connect(server.dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return str(server.dsn.rsplit("/", 1)[0] + f"/{name}")

    def broker_with_database(self) -> Settings:
        """The single-node broker's settings with department stores in a fresh database on the suite's PostgreSQL."""
        return self.broker().model_copy(update={"postgres_dsn": SecretStr(self.database())})

    def registry_url(self) -> str:
        """A registry to put a proxy in front of: ``--registry-url``, ``CIVREG_REGISTRY_URL``, or one started here."""
        url = self.options.registry_url or os.environ.get("CIVREG_REGISTRY_URL")
        if url:
            return url
        if self._registry is None:
            from deploy.local.registry import LocalRegistry

            registry = LocalRegistry(self._own("registry", "local_registry_port", "local_registry_health_port"))
            with self.console.status("starting a schema registry for the suite"):
                registry.ensure_installed()
                registry.start(timeout=240)
            self._registry = registry
        return str(self._registry.url)

    def scenario(
        self, settings: Settings, name: str, *, profile: str = "local", every_department: bool = False
    ) -> Settings:
        """Settings for one scenario: unique topics (created), its own database directory, home and config.

        The scenario's router routes what its config's agreements name: only the department under test (a copy of
        the deployment config with that one agreement), or, with ``every_department``, every agreement.
        """
        scenario = settings.model_copy(
            update={
                "topic_prefix": f"f{uuid.uuid4().hex[:10]}",
                "database_dir": self.workdir / name / "departments",
                "home": self.workdir / name / "home",
                "config_dir": settings.config_dir if every_department else self._one_department_config(settings, name),
            }
        )
        rf = None if profile == "production" else 1
        departments = (*DEFAULT_DEPARTMENTS, CLEAN) if every_department else (DEPARTMENT, CLEAN)
        apply_topics(scenario, departments, rf, profile=profile)
        return scenario

    def _one_department_config(self, settings: Settings, name: str) -> Path:
        """A copy of the deployment config whose only agreement is the department under test's."""
        files = settings.config_files
        target = self.workdir / name / "config"
        (target / "agreements").mkdir(parents=True, exist_ok=True)
        for path in (files.topics, files.compatibility_policy, files.agreements_dir / f"{DEPARTMENT}.yaml"):
            shutil.copy2(path, target / path.relative_to(files.root))
        return target

    def close(self) -> None:
        """Stop everything the suite started and remove its directory."""
        for stop in (
            self.release_cluster,
            lambda: self._broker.stop() if self._broker else None,
            lambda: self._postgres.stop() if self._postgres else None,
            lambda: self._registry.stop() if self._registry else None,
        ):
            with contextlib.suppress(Exception):
                stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
