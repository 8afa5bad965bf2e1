"""A real single-node Apache Kafka broker (KRaft, broker+controller) run locally from Maven Central jars.

Why not Docker or the release tarball: machines here reach Maven Central only, so the broker's jars are
resolved by ``mvn`` from ``deploy/kafka/pom.xml`` into ``settings.cache_dir`` (or taken from
``settings.kafka_home/libs``). Why a class built from ``Settings``: the CLI (``civreg dev up``) and pytest
fixtures (free ports, a temporary home) drive the same code, so nothing here assumes the default ports or the
current directory.

The design is lock-free: the pid file is the only state, and a stale one (process gone, or the pid reused by
something that is not our broker) is detected and removed.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from civreg.kafka_config import admin_config
from civreg.settings import Settings

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
KAFKA_DIR = Path(__file__).resolve().parent / "kafka"
POM_PATH = KAFKA_DIR / "pom.xml"
LOG4J_CONFIG = KAFKA_DIR / "log4j2.properties"
_COMPLETE_MARKER = ".civreg-complete"
_MAIN_CLASS = "kafka.Kafka"
_JAR_VERSION = re.compile(r"^kafka_2\.13-(\d[\w.\-]*?)\.jar$")


class LocalKafkaError(RuntimeError):
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


def quiet_admin_config(settings: Settings, errors: list[str]) -> dict[str, Any]:
    """Admin config whose connection errors land in ``errors`` instead of librdkafka's stderr noise.

    Used while polling a broker that is still starting, and by one-shot admin commands whose failure is
    reported as one line.
    """

    def on_error(err: Any) -> None:
        errors.append(error_text(err))

    config = admin_config(settings)
    config.update({"log_level": 0, "error_cb": on_error, "reconnect.backoff.max.ms": 500})
    return config


def error_text(err: Any) -> str:
    """The readable part of a librdkafka error (``Connect to ipv4#127.0.0.1:1 failed: Connection refused``)."""
    if isinstance(err, KafkaException) and err.args:
        err = err.args[0]
    text = err.str() if isinstance(err, KafkaError) else str(err)
    return str(text)


def _new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes in URL-safe base64 without padding, like ``random-uuid``."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not text.startswith("-"):  # Kafka avoids these too: they read as options on a command line
            return text


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


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
        self._proc: subprocess.Popen[bytes] | None = None

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
        return (self.libs_dir / _COMPLETE_MARKER).is_file()

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
        shutil.rmtree(staging, ignore_errors=True)
        command = self.maven_command(mvn, staging)
        log.info("fetching Kafka %s jars with Maven", self.settings.kafka_version)
        started = time.monotonic()
        try:
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                tail = _tail((result.stdout + result.stderr).splitlines(), 15)
                raise LocalKafkaError(f"Maven could not fetch Kafka {self.settings.kafka_version} jars:\n{tail}")
            (staging / _COMPLETE_MARKER).write_text(f"{self.settings.kafka_version}\n", encoding="utf-8")
            if not self.jars_present():  # else another process finished first: keep its copy
                shutil.rmtree(self.libs_dir, ignore_errors=True)  # an incomplete copy from an older run
                with contextlib.suppress(OSError):
                    staging.rename(self.libs_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            shutil.rmtree(staging.with_name(staging.name + ".build"), ignore_errors=True)
        if not self.jars_present():
            raise LocalKafkaError(f"Kafka jars did not appear in {self.libs_dir} after running Maven")
        log.info("Kafka jars ready in %.1fs", time.monotonic() - started)
        return self.libs_dir

    def maven_command(self, mvn: str = "mvn", output_dir: Path | None = None) -> list[str]:
        """The ``mvn`` invocation that copies the broker's jars into ``output_dir`` (default ``libs_dir``)."""
        target = output_dir if output_dir is not None else self.libs_dir
        return [
            mvn,
            "-B",
            "-q",
            "-Dstyle.color=never",
            "-f",
            str(POM_PATH),
            f"-Dmaven.repo.local={self.settings.cache_dir.resolve() / 'm2'}",
            f"-Dkafka.version={self.settings.kafka_version}",
            f"-Dkafka.libs.dir={target}",
            f"-Dkafka.build.dir={target.with_name(target.name + '.build')}",
            "dependency:copy-dependencies",
        ]

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
            "# Written by deploy/local_kafka.py on every start; edits are overwritten.",
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
            "",
        ]
        return "\n".join(lines)

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
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=self.base_dir)
        if result.returncode != 0:
            tail = _tail((result.stdout + result.stderr).splitlines(), 15)
            raise LocalKafkaError(f"formatting the Kafka log dir {self.data_dir} failed:\n{tail}")

    def start(self, timeout: float = 60.0) -> KafkaStatus:
        """Start the broker and wait until its admin API answers; a no-op when it already runs."""
        current = self.status()
        if current.running:
            return current
        for port in (self.settings.local_port, self.settings.local_controller_port):
            if _port_in_use(port):
                raise LocalKafkaError(
                    f"port {port} on 127.0.0.1 is already in use by another program; "
                    "set CIVREG_LOCAL_PORT / CIVREG_LOCAL_CONTROLLER_PORT to free ports"
                )
        self.ensure_jars()
        java = self.java_executable()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.server_properties(), encoding="utf-8")
        self._format_storage(java)

        command = [*self._java_base(java, ["-Xmx512m", "-Xms256m"]), _MAIN_CLASS, str(self.config_path)]
        started = time.monotonic()
        with self.log_path.open("ab") as log_file:
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=self.base_dir,
                start_new_session=True,  # survives the CLI and Ctrl-C in its terminal
            )
        self._proc = proc
        self.pid_path.write_text(f"{proc.pid}\n", encoding="utf-8")
        log.info("local Kafka starting, pid %d", proc.pid)

        errors: list[str] = []
        admin = AdminClient(self._local_admin_config(errors))
        deadline = started + timeout
        while True:
            if proc.poll() is not None:
                self._forget_pid()
                raise LocalKafkaError(
                    f"Kafka exited with code {proc.returncode} while starting; end of {self.log_path}:\n"
                    f"{self.log_tail()}"
                )
            try:
                admin.list_topics(timeout=1.0)
                break
            except Exception:  # KafkaException: not answering yet
                if time.monotonic() > deadline:
                    self.stop()
                    raise LocalKafkaError(
                        f"Kafka did not answer on {self.bootstrap} within {timeout:.0f}s; end of "
                        f"{self.log_path}:\n{self.log_tail()}"
                    ) from None
                time.sleep(0.2)
        log.info("local Kafka ready on %s in %.1fs", self.bootstrap, time.monotonic() - started)
        return self.status()

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM for a clean shutdown, SIGKILL after ``timeout``; True if a broker was running."""
        pid = self._running_pid()
        if pid is None:
            self._forget_pid()
            return False
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            self._forget_pid()
            return False
        if not self._wait_gone(pid, timeout):
            log.warning("local Kafka pid %d ignored SIGTERM for %.0fs; killing it", pid, timeout)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            self._wait_gone(pid, 10.0)
        self._forget_pid()
        return True

    def status(self) -> KafkaStatus:
        """Whether our broker process runs (not whether it is ready: see ``probe_cluster``)."""
        pid = self._running_pid()
        if pid is None and self.pid_path.exists():
            self._forget_pid()  # stale: the process is gone or the pid now belongs to something else
        return KafkaStatus(
            running=pid is not None,
            pid=pid,
            bootstrap=self.bootstrap,
            version=self.version,
            data_dir=self.data_dir,
        )

    def log_tail(self, lines: int = 20) -> str:
        """The end of the broker log, quoted in errors so a failed start explains itself."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "(no broker log)"
        return _tail(text.splitlines(), lines)

    # ---- internals --------------------------------------------------------------------------------------

    def _local_admin_config(self, errors: list[str]) -> dict[str, Any]:
        """Admin config for this local PLAINTEXT broker, whatever cluster or credentials the settings name."""

        def on_error(err: Any) -> None:
            errors.append(error_text(err))

        return {
            "bootstrap.servers": self.bootstrap,
            "client.id": f"{self.settings.client_id}-local-kafka",
            "log_level": 0,
            "error_cb": on_error,
            "reconnect.backoff.max.ms": 500,
        }

    def _read_pid(self) -> int | None:
        try:
            return int(self.pid_path.read_text(encoding="utf-8").strip())
        except (FileNotFoundError, ValueError):
            return None

    def _running_pid(self) -> int | None:
        """Our broker's pid: the pid file's if that process is alive and ours, else a search of /proc.

        The search finds a broker whose pid file was lost (deleted by hand, a crashed CLI), so ``stop`` leaves
        no orphan JVM and ``start`` does not try to run a second broker on the same data dir.
        """
        pid = self._read_pid()
        if pid is not None and self._is_our_broker(pid):
            return pid
        found = self._find_broker()
        if found is not None:
            self.pid_path.write_text(f"{found}\n", encoding="utf-8")
        return found

    def _is_our_broker(self, pid: int) -> bool:
        if self._proc is not None and self._proc.pid == pid and self._proc.poll() is not None:
            return False  # our own child, already exited (reaped here so it leaves no zombie)
        if not _pid_alive(pid):
            return False
        cmdline = _cmdline(pid)
        if cmdline is None:
            return True  # no /proc: trust the pid file
        return _MAIN_CLASS in cmdline and str(self.config_path) in cmdline  # else: pid reused by another program

    def _find_broker(self) -> int | None:
        proc = Path("/proc")
        if not proc.is_dir():
            return None
        for entry in proc.iterdir():
            if entry.name.isdigit() and self._is_our_broker(int(entry.name)):
                return int(entry.name)
        return None

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        if self._proc is not None and self._proc.pid == pid:
            try:
                self._proc.wait(timeout=timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        while time.monotonic() < deadline:
            if not _pid_alive(pid):
                return True
            time.sleep(0.1)
        return not _pid_alive(pid)

    def _forget_pid(self) -> None:
        self.pid_path.unlink(missing_ok=True)
        if self._proc is not None and self._proc.poll() is not None:
            self._proc = None


def _pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie (a zombie has exited; only its parent has not reaped it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if sys.platform.startswith("linux"):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            return False
        state = stat.rsplit(")", 1)[-1].split()[:1]
        return state != ["Z"]
    return True


def _cmdline(pid: int) -> str | None:
    """The command line of ``pid`` where /proc exists (Linux); None elsewhere, meaning 'cannot tell'."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.replace(b"\0", b" ").decode("utf-8", errors="replace")


def _tail(lines: Sequence[str], count: int) -> str:
    picked = [line for line in lines if line.strip()][-count:]
    return "\n".join(picked) if picked else "(empty)"
