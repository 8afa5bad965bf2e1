"""A real single-node Apache Kafka broker (KRaft, broker+controller) run locally from Maven Central jars.

Why not Docker or the release tarball: machines here reach Maven Central only, so the broker's jars are
resolved by ``mvn`` from ``deploy/local/java/kafka/pom.xml`` into ``settings.cache_dir`` (or taken from
``settings.kafka_home/libs``). Why a class built from ``Settings``: the CLI (``civreg dev up``) and pytest
fixtures (free ports, a temporary home) drive the same code, so nothing here assumes the default ports or the
current directory.

The design is lock-free: the pid file is the only state, and a stale one (process gone, or the pid reused by
something that is not our broker) is detected and removed.
"""

from __future__ import annotations

import base64
import logging
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient

from civreg.errors import CivregError
from civreg.kafka_config import error_text, quiet_admin_config
from civreg.settings import Settings
from deploy.local.jvm import COMPLETE_MARKER, JvmProcess, fetch_with_maven, maven_command, port_in_use, tail
from deploy.local.security import ADMIN, SecurityConfig, secure_dir

__all__ = [
    "MIN_JAVA_VERSION",
    "ClusterProbe",
    "KafkaStatus",
    "LocalKafka",
    "LocalKafkaError",
    "error_text",
    "probe_cluster",
    "quiet_admin_config",
]

log = logging.getLogger(__name__)

MIN_JAVA_VERSION = 17
KAFKA_DIR = Path(__file__).resolve().parent / "java" / "kafka"
POM_PATH = KAFKA_DIR / "pom.xml"
LOG4J_CONFIG = KAFKA_DIR / "log4j2.properties"
_MAIN_CLASS = "kafka.Kafka"
_JAR_VERSION = re.compile(r"^kafka_2\.13-(\d[\w.\-]*?)\.jar$")


class LocalKafkaError(CivregError, RuntimeError):
    """An expected failure (missing tool, port taken, broker died) whose message is enough for the user."""


@dataclass(frozen=True)
class KafkaStatus:
    """What ``civreg dev status`` shows about the local broker."""

    running: bool
    pid: int | None
    bootstrap: str
    version: str
    data_dir: Path


@dataclass(frozen=True)
class ClusterProbe:
    """Whether a cluster answered the admin API, for both the local broker and a user's own cluster."""

    reachable: bool
    bootstrap: str
    cluster_id: str | None = None
    broker_count: int = 0
    error: str | None = None


def probe_cluster(settings: Settings, timeout: float = 5.0) -> ClusterProbe:
    """Ask the cluster in ``settings`` for its metadata; never raises for an unreachable cluster."""
    bootstrap = settings.effective_bootstrap_servers
    errors: list[str] = []
    config = quiet_admin_config(settings, errors)
    try:
        metadata = AdminClient(config).list_topics(timeout=timeout)
    except Exception as exc:  # KafkaException, but also config errors: report them, don't crash the CLI
        detail = errors[0] if errors else error_text(exc)
        return ClusterProbe(reachable=False, bootstrap=bootstrap, error=detail)
    return ClusterProbe(
        reachable=True,
        bootstrap=bootstrap,
        cluster_id=metadata.cluster_id,
        broker_count=len(metadata.brokers),
    )


def _new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes in URL-safe base64 without padding, like ``random-uuid``."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not text.startswith("-"):  # Kafka avoids these too: they read as options on a command line
            return text


class LocalKafka:
    """One local broker whose state lives under ``settings.home / "kafka"``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.base_dir = settings.home.resolve() / "kafka"
        self.data_dir = self.base_dir / "data"
        self.config_path = self.base_dir / "server.properties"
        self.log_path = self.base_dir / "broker.log"
        self.pid_path = self.base_dir / "kafka.pid"
        self.bootstrap = f"127.0.0.1:{settings.local_port}"
        self._jvm = JvmProcess(
            name="local Kafka",
            pid_path=self.pid_path,
            log_path=self.log_path,
            markers=(_MAIN_CLASS, str(self.config_path)),
            logger=log,
        )
        # TLS + SASL/SCRAM + ACLs when asked (CIVREG_LOCAL_SECURE, 'dev up --secure'), or once set up that way.
        security = SecurityConfig(secure_dir(self.base_dir))
        self.security: SecurityConfig | None = security if settings.local_secure or security.exists() else None

    # ---- jars -------------------------------------------------------------------------------------------

    @property
    def libs_dir(self) -> Path:
        """Where the broker's jars are: an existing installation's ``libs/`` or the Maven-filled cache."""
        if self.settings.kafka_home is not None:
            return self.settings.kafka_home.resolve() / "libs"
        return self.settings.cache_dir.resolve() / f"kafka-{self.settings.kafka_version}" / "libs"

    @property
    def version(self) -> str:
        """The Kafka version that runs: read from the jar name of an installation, else the pinned one."""
        if self.settings.kafka_home is not None and self.libs_dir.is_dir():
            for jar in sorted(self.libs_dir.glob("kafka_2.13-*.jar")):
                match = _JAR_VERSION.match(jar.name)
                if match and not match.group(1).endswith(("-test", "-sources", "-javadoc")):
                    return match.group(1)
        return self.settings.kafka_version

    def jars_present(self) -> bool:
        """True when the broker can start without running Maven (the CLI shows a spinner otherwise)."""
        if self.settings.kafka_home is not None:
            return any(self.libs_dir.glob("kafka_2.13-*.jar"))
        return (self.libs_dir / COMPLETE_MARKER).is_file()

    def ensure_jars(self) -> Path:
        """Make the broker's jars available, running Maven once; returns the libs directory."""
        self.java_executable()  # fail early and clearly: the broker needs Java anyway
        if self.settings.kafka_home is not None:
            if not self.jars_present():
                raise LocalKafkaError(
                    f"CIVREG_KAFKA_HOME={self.settings.kafka_home} has no libs/kafka_2.13-*.jar; "
                    "point it at an unpacked Apache Kafka release or unset it to fetch jars with Maven"
                )
            return self.libs_dir
        if self.jars_present():
            return self.libs_dir
        mvn = shutil.which("mvn")
        if mvn is None:
            raise LocalKafkaError(
                "Maven (mvn) is not installed; install it (Debian: apt-get install maven) "
                "or set CIVREG_KAFKA_HOME to an Apache Kafka installation"
            )
        # Maven fills a private staging dir that is renamed into place when complete: a run that is killed
        # half-way, or two test sessions fetching at once, never leave a libs/ that looks complete but is not.
        staging = self.libs_dir.with_name(f"libs.partial-{os.getpid()}")
        version = self.settings.kafka_version
        log.info("fetching Kafka %s jars with Maven", version)
        started = time.monotonic()
        fetch_with_maven(
            self.maven_command(mvn, staging),
            staging=staging,
            target=self.libs_dir,
            version=version,
            is_complete=self.jars_present,
            failure=lambda output: LocalKafkaError(f"Maven could not fetch Kafka {version} jars:\n{output}"),
        )
        if not self.jars_present():
            raise LocalKafkaError(f"Kafka jars did not appear in {self.libs_dir} after running Maven")
        log.info("Kafka jars ready in %.1fs", time.monotonic() - started)
        return self.libs_dir

    def maven_command(self, mvn: str = "mvn", output_dir: Path | None = None) -> list[str]:
        """The ``mvn`` invocation that copies the broker's jars into ``output_dir`` (default ``libs_dir``)."""
        target = output_dir if output_dir is not None else self.libs_dir
        properties = {
            "kafka.version": self.settings.kafka_version,
            "kafka.libs.dir": str(target),
            "kafka.build.dir": str(target.with_name(target.name + ".build")),
        }
        repo_local = self.settings.cache_dir.resolve() / "m2"
        return maven_command(mvn, POM_PATH, repo_local, properties, "dependency:copy-dependencies")

    def java_executable(self) -> str:
        """``$JAVA_HOME/bin/java`` or ``java`` on PATH, checked to be Java 17 or newer."""
        java_home = os.environ.get("JAVA_HOME")
        candidate = Path(java_home) / "bin" / "java" if java_home else None
        java = str(candidate) if candidate is not None and candidate.is_file() else shutil.which("java")
        if java is None:
            raise LocalKafkaError(
                f"Java {MIN_JAVA_VERSION}+ is not installed; install it "
                "(Debian: apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
            )
        result = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
        match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
        if match is None:
            raise LocalKafkaError(f"could not tell the version of {java}: {result.stderr.strip()[:200]}")
        major = int(match.group(1))
        if major == 1 and match.group(2):  # "1.8.0_392" style
            major = int(match.group(2))
        if major < MIN_JAVA_VERSION:
            raise LocalKafkaError(
                f"Kafka 4 needs Java {MIN_JAVA_VERSION}+, but {java} is Java {major}; "
                "install openjdk-17-jre-headless or set JAVA_HOME"
            )
        return java

    # ---- lifecycle --------------------------------------------------------------------------------------

    def server_properties(self) -> str:
        """The broker's config: one node that is both broker and controller, on 127.0.0.1 only."""
        port = self.settings.local_port
        cport = self.settings.local_controller_port
        lines = [
            "# Written by deploy/local/kafka.py on every start; edits are overwritten.",
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{cport}",
            f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            f"log.dirs={self.data_dir}",
            # Topics are declared in deploy/topics.yaml; a typo in a topic name must fail, not create a topic.
            "auto.create.topics.enable=false",
            "num.partitions=1",
            "default.replication.factor=1",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=10",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=10",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
        ]
        if self.security is not None:
            lines = _secured(lines, self.security.server_properties(port, cport))
        return "\n".join([*lines, ""])

    def _java_base(self, java: str, heap: Sequence[str]) -> list[str]:
        return [
            java,
            *heap,
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            "-cp",
            str(self.libs_dir / "*"),  # java expands the wildcard itself; no shell involved
        ]

    def _format_storage(self, java: str) -> None:
        """Format the KRaft log dir once; a second format would refuse (or wipe the cluster id)."""
        if (self.data_dir / "meta.properties").is_file():
            return
        command = [
            *self._java_base(java, ["-Xmx256m"]),
            "kafka.tools.StorageTool",
            "format",
            "-t",
            _new_cluster_id(),
            "-c",
            str(self.config_path),
            *(self.security.format_arguments() if self.security is not None else []),
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=self.base_dir)
        if result.returncode != 0:
            output = tail((result.stdout + result.stderr).splitlines(), 15)
            raise LocalKafkaError(f"formatting the Kafka log dir {self.data_dir} failed:\n{output}")

    def start(self, timeout: float = 60.0) -> KafkaStatus:
        """Start the broker and wait until its admin API answers; a no-op when it already runs."""
        current = self.status()
        if current.running:
            return current
        for port in (self.settings.local_port, self.settings.local_controller_port):
            if port_in_use(port):
                raise LocalKafkaError(
                    f"port {port} on 127.0.0.1 is already in use by another program; "
                    "set CIVREG_LOCAL_PORT / CIVREG_LOCAL_CONTROLLER_PORT to free ports"
                )
        self.ensure_jars()
        java = self.java_executable()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if self.security is not None:
            self._prepare_security()
        self.config_path.write_text(self.server_properties(), encoding="utf-8")
        if self.security is not None:
            self.config_path.chmod(0o600)  # holds the broker's own SCRAM login
        self._format_storage(java)

        command = [*self._java_base(java, ["-Xmx512m", "-Xms256m"]), _MAIN_CLASS, str(self.config_path)]
        started = time.monotonic()
        proc = self._jvm.launch(command, cwd=self.base_dir)
        errors: list[str] = []
        admin = AdminClient(self._local_admin_config(errors))

        def answering() -> bool:
            try:
                admin.list_topics(timeout=1.0)
            except Exception:  # KafkaException: not answering yet
                return False
            return True

        self._jvm.wait_ready(
            proc,
            answering,
            deadline=started + timeout,
            exited=lambda code: LocalKafkaError(
                f"Kafka exited with code {code} while starting; end of {self.log_path}:\n{self.log_tail()}"
            ),
            timed_out=lambda: LocalKafkaError(
                f"Kafka did not answer on {self.bootstrap} within {timeout:.0f}s; end of "
                f"{self.log_path}:\n{self.log_tail()}"
            ),
        )
        log.info("local Kafka ready on %s in %.1fs", self.bootstrap, time.monotonic() - started)
        return self.status()

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM for a clean shutdown, SIGKILL after ``timeout``; True if a broker was running."""
        return self._jvm.stop(timeout)

    def status(self) -> KafkaStatus:
        """Whether our broker process runs (not whether it is ready: see ``probe_cluster``)."""
        pid = self._jvm.running_pid(search=True)
        if pid is None and self.pid_path.exists():
            self._jvm.forget_pid()  # stale: the process is gone or the pid now belongs to something else
        return KafkaStatus(
            running=pid is not None,
            pid=pid,
            bootstrap=self.bootstrap,
            version=self.version,
            data_dir=self.data_dir,
        )

    def log_tail(self, lines: int = 20) -> str:
        """The end of the broker log, quoted in errors so a failed start explains itself."""
        return self._jvm.log_tail(lines, missing="(no broker log)")

    def _prepare_security(self) -> None:
        """Create the CA, certificate and admin login; refuse a data dir formatted without them."""
        assert self.security is not None
        if (self.data_dir / "meta.properties").is_file() and not self.security.exists():
            raise LocalKafkaError(
                f"the broker data in {self.data_dir} was created without security; a secure broker needs a fresh "
                "one: use another CIVREG_HOME, or 'civreg dev down' and delete that directory"
            )
        self.security.ensure_material()

    # ---- internals --------------------------------------------------------------------------------------

    def _local_admin_config(self, errors: list[str]) -> dict[str, Any]:
        """Admin config for this local PLAINTEXT broker, whatever cluster or credentials the settings name."""

        def on_error(err: Any) -> None:
            errors.append(error_text(err))

        config: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap,
            "client.id": f"{self.settings.client_id}-local-kafka",
            "log_level": 0,
            "error_cb": on_error,
            "reconnect.backoff.max.ms": 500,
        }
        if self.security is not None:
            config.update(self.security.client_config())
        return config

    def client_settings(self, username: str | None = None) -> Settings:
        """``settings`` as a client of this broker: as ``username`` (default the super user) when it is secure."""
        if self.security is None:
            return self.settings
        env = self.security.client_env(username or ADMIN)
        return self.settings.model_copy(
            update={
                "local_secure": True,
                "security_protocol": env["CIVREG_SECURITY_PROTOCOL"],
                "sasl_mechanism": env["CIVREG_SASL_MECHANISM"],
                "ssl_ca_location": Path(env["CIVREG_SSL_CA_LOCATION"]),
                "sasl_username": env["CIVREG_SASL_USERNAME"],
                "sasl_password": None,
                "sasl_password_file": Path(env["CIVREG_SASL_PASSWORD_FILE"]),
            }
        )

    def admin_client_config(self) -> dict[str, Any]:
        """Config of a super-user admin client of this broker (creates SCRAM users and ACLs when secure)."""
        return self._local_admin_config([])


_REPLACED_BY_SECURITY = ("listeners=", "advertised.listeners=", "inter.broker.listener.name=", "listener.security.")


def _secured(lines: list[str], security: list[str]) -> list[str]:
    """``lines`` with the PLAINTEXT listener settings swapped for the secure ones."""
    kept = [line for line in lines if not line.startswith(_REPLACED_BY_SECURITY)]
    return [*kept, "# TLS, SASL/SCRAM and ACLs (deploy/local_security.py):", *security]
