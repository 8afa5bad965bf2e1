"""A real Apicurio Registry (Confluent-compatible API at ``/apis/ccompat/v7``) run locally from Maven Central.

Same pattern as ``deploy.local.kafka``: Maven unpacks ``io.apicurio:apicurio-registry-app`` into
``settings.cache_dir`` once (``deploy/local/java/registry/pom.xml``), ``java -jar quarkus-run.jar`` runs detached
with a pid file under ``settings.home / "registry"``, and ``start`` polls the health endpoint until the registry is
ready.
Why these choices:

- Apicurio 3 is built for Java 21, while the broker runs on the machine's Java 17: the registry finds its own
  Java 21+ (``CIVREG_REGISTRY_JAVA_HOME``, ``JAVA_HOME``, ``java`` on PATH, then ``/usr/lib/jvm``).
- Storage is an H2 file under the state directory, not Apicurio's in-memory default: schema ids are written into
  every message kept in Kafka, so they must survive ``dev down`` / ``dev up`` along with the broker's data.
- Both the API and the health (management) port bind to 127.0.0.1; small heap, C1 JIT only (starts in ~5 s).
- Apicurio's default global compatibility is NONE; ``start`` sets the policy's level explicitly.
- Services learn the registry's address from settings, never by looking for this process: ``start`` writes
  ``CIVREG_REGISTRY_URL`` to ``<home>/dev.env`` (read by ``Settings`` while the local broker is in use) and
  ``stop`` removes it.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from civreg.errors import CivregError
from civreg.settings import Settings
from deploy.local.dev_env import update_dev_env
from deploy.local.jvm import COMPLETE_MARKER, JvmProcess, fetch_with_maven, maven_command, port_in_use
from deploy.schema_policy import load_policy
from schemas.registry import registry_client

__all__ = [
    "MIN_REGISTRY_JAVA_VERSION",
    "LocalRegistry",
    "LocalRegistryError",
    "RegistryProbe",
    "RegistryStatus",
    "find_java",
    "own_registry_url",
    "probe_registry",
]

log = logging.getLogger(__name__)

MIN_REGISTRY_JAVA_VERSION = 21
REGISTRY_DIR = Path(__file__).resolve().parent / "java" / "registry"
POM_PATH = REGISTRY_DIR / "pom.xml"
_RUN_JAR = "quarkus-run.jar"
_JVM_ROOTS = (Path("/usr/lib/jvm"), Path("/opt/java"), Path("/usr/local/lib/jvm"))


def own_registry_url(settings: Settings) -> str | None:
    """The user's own registry, or None when the local one serves (no URL, or the one ``start`` handed over)."""
    url = settings.registry_url
    return url if url and url != settings.local_registry_url else None


class LocalRegistryError(CivregError, RuntimeError):
    """An expected failure (no Java 21, no Maven, port taken, registry died) whose message is enough."""


@dataclass(frozen=True)
class RegistryStatus:
    """What ``civreg dev status`` shows about the local registry."""

    running: bool
    pid: int | None
    url: str
    version: str
    data_dir: Path


@dataclass(frozen=True)
class RegistryProbe:
    """Whether a registry answered, for the local one and a user's own."""

    reachable: bool
    url: str
    compatibility: str | None = None
    error: str | None = None


def probe_registry(
    url: str, *, username: str | None = None, password: str | None = None, timeout: float = 5.0
) -> RegistryProbe:
    """Ask the registry at ``url`` for its global compatibility level; never raises for an unreachable one."""
    from schemas.registry import RegistrySchemaResolver

    resolver = RegistrySchemaResolver(
        registry_client(url, username=username, password=password, timeout=timeout), url=url
    )
    try:
        level = resolver.check_reachable()
    except Exception as exc:  # RegistryUnavailable, RegistryError, and whatever a misconfigured URL raises
        return RegistryProbe(False, resolver.url, error=str(exc))
    return RegistryProbe(True, resolver.url, compatibility=str(level))


def _java_major(java: str) -> int | None:
    try:
        result = subprocess.run([java, "-version"], capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 and match.group(2) else major


def find_java(settings: Settings, minimum: int = MIN_REGISTRY_JAVA_VERSION) -> str:
    """A ``java`` of version ``minimum`` or newer; raises LocalRegistryError saying what was found instead."""
    candidates: list[Path] = []
    if settings.registry_java_home is not None:
        candidates.append(settings.registry_java_home / "bin" / "java")
    if java_home := os.environ.get("JAVA_HOME"):
        candidates.append(Path(java_home) / "bin" / "java")
    if on_path := shutil.which("java"):
        candidates.append(Path(on_path))
    for root in _JVM_ROOTS:
        if root.is_dir():
            candidates.extend(sorted(root.glob("*/bin/java"), reverse=True))
    seen: dict[str, int | None] = {}
    for candidate in candidates:
        if not candidate.is_file() or str(candidate) in seen:
            continue
        major = seen[str(candidate)] = _java_major(str(candidate))
        if major is not None and major >= minimum:
            return str(candidate)
    found = ", ".join(f"{path} (Java {major})" for path, major in seen.items()) or "no Java at all"
    raise LocalRegistryError(
        f"the local schema registry (Apicurio Registry 3) needs Java {minimum}+; found {found}. Install a Java "
        f"{minimum}+ JDK (e.g. Temurin) and set CIVREG_REGISTRY_JAVA_HOME, or set CIVREG_REGISTRY_URL to your own "
        "registry"
    )


class LocalRegistry:
    """One local Apicurio Registry whose state lives under ``settings.home / "registry"``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.base_dir = settings.home.resolve() / "registry"
        self.data_dir = self.base_dir / "data"
        self.log_path = self.base_dir / "registry.log"
        self.pid_path = self.base_dir / "registry.pid"
        self.url = settings.local_registry_url
        self.health_url = f"http://127.0.0.1:{settings.local_registry_health_port}/health/ready"
        self.version = settings.registry_version
        self._jvm = JvmProcess(
            name="local registry",
            pid_path=self.pid_path,
            log_path=self.log_path,
            # how a scan of /proc tells our JVM from any other registry (see ``command``)
            markers=(_RUN_JAR, f"-Dcivreg.registry.home={self.base_dir}"),
            logger=log,
        )

    # ---- installation -----------------------------------------------------------------------------------

    @property
    def install_dir(self) -> Path:
        """Where the unpacked Quarkus application lives."""
        return self.settings.cache_dir.resolve() / f"apicurio-registry-{self.version}"

    def installed(self) -> bool:
        """True when the registry can start without running Maven (the CLI shows a spinner otherwise)."""
        return (self.install_dir / COMPLETE_MARKER).is_file() and (self.install_dir / _RUN_JAR).is_file()

    def ensure_installed(self) -> Path:
        """Fetch and unpack the registry with Maven once; returns the directory holding ``quarkus-run.jar``."""
        find_java(self.settings)  # fail early and clearly: there is no point fetching 160 MB without Java 21
        if self.installed():
            return self.install_dir
        mvn = shutil.which("mvn")
        if mvn is None:
            raise LocalRegistryError(
                "Maven (mvn) is not installed; install it (Debian: apt-get install maven) "
                "or set CIVREG_REGISTRY_URL to your own registry"
            )
        # A private staging dir renamed into place when complete, as for the broker's jars: a killed fetch or two
        # sessions fetching at once never leave a directory that looks complete but is not.
        staging = self.install_dir.with_name(f"{self.install_dir.name}.partial-{os.getpid()}")
        log.info("fetching Apicurio Registry %s with Maven", self.version)
        started = time.monotonic()

        def check_staging(staging: Path) -> None:
            if not (staging / _RUN_JAR).is_file():
                raise LocalRegistryError(f"the Apicurio Registry {self.version} archive has no {_RUN_JAR}")

        fetch_with_maven(
            self.maven_command(mvn, staging),
            staging=staging,
            target=self.install_dir,
            version=self.version,
            is_complete=self.installed,
            failure=lambda output: LocalRegistryError(
                f"Maven could not fetch Apicurio Registry {self.version}:\n{output}"
            ),
            check_staging=check_staging,
        )
        if not self.installed():
            raise LocalRegistryError(f"Apicurio Registry did not appear in {self.install_dir} after running Maven")
        log.info("Apicurio Registry ready to run in %.1fs", time.monotonic() - started)
        return self.install_dir

    def maven_command(self, mvn: str = "mvn", output_dir: Path | None = None) -> list[str]:
        """The ``mvn`` invocation that unpacks the registry into ``output_dir`` (default ``install_dir``)."""
        target = output_dir if output_dir is not None else self.install_dir
        properties = {
            "registry.version": self.version,
            "registry.install.dir": str(target),
            "registry.build.dir": str(target.with_name(target.name + ".build")),
        }
        repo_local = self.settings.cache_dir.resolve() / "m2"
        return maven_command(mvn, POM_PATH, repo_local, properties, "dependency:unpack")

    # ---- lifecycle --------------------------------------------------------------------------------------

    def command(self, java: str) -> list[str]:
        """The JVM command line: loopback only, settable ports, H2 file storage, quiet access logs."""
        settings = self.settings
        return [
            java,
            "-Xmx256m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dcivreg.registry.home={self.base_dir}",  # how JvmProcess.is_ours tells our JVM from any other registry
            "-Dquarkus.http.host=127.0.0.1",
            f"-Dquarkus.http.port={settings.local_registry_port}",
            "-Dquarkus.management.host=127.0.0.1",
            f"-Dquarkus.management.port={settings.local_registry_health_port}",
            "-Dquarkus.http.access-log.enabled=false",
            '-Dquarkus.log.category."io.apicurio.registry.logging.audit".level=WARN',
            f"-Dapicurio.datasource.url=jdbc:h2:file:{self.data_dir / 'registry'}",
            "-Dapicurio.datasource.jdbc.initial-size=2",
            "-Dapicurio.datasource.jdbc.min-size=2",
            "-Dapicurio.datasource.jdbc.max-size=10",
            "-jar",
            str(self.install_dir / _RUN_JAR),
        ]

    def start(self, timeout: float = 90.0) -> RegistryStatus:
        """Start the registry, wait until it is ready and set its global compatibility; a no-op if it runs."""
        current = self.status()
        if current.running:
            self.write_dev_env()
            return current
        for port in (self.settings.local_registry_port, self.settings.local_registry_health_port):
            if port_in_use(port):
                raise LocalRegistryError(
                    f"port {port} on 127.0.0.1 is already in use by another program; "
                    "set CIVREG_LOCAL_REGISTRY_PORT / CIVREG_LOCAL_REGISTRY_HEALTH_PORT to free ports"
                )
        self.ensure_installed()
        java = find_java(self.settings)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        proc = self._jvm.launch(self.command(java), cwd=self.base_dir)
        self._jvm.wait_ready(
            proc,
            self._ready,
            deadline=started + timeout,
            exited=lambda code: LocalRegistryError(
                f"the registry exited with code {code} while starting; end of {self.log_path}:\n{self.log_tail()}"
            ),
            timed_out=lambda: LocalRegistryError(
                f"the registry did not become ready on {self.url} within {timeout:.0f}s; end of "
                f"{self.log_path}:\n{self.log_tail()}"
            ),
        )
        self.apply_global_compatibility()
        self.write_dev_env()
        log.info("local registry ready on %s in %.1fs", self.url, time.monotonic() - started)
        return self.status()

    def write_dev_env(self) -> Path:
        """Hand the registry's address to later processes: ``CIVREG_REGISTRY_URL`` in ``<home>/dev.env``."""
        return update_dev_env(self.settings.dev_env_file, {"CIVREG_REGISTRY_URL": self.url})

    def remove_dev_env(self) -> None:
        """Take the address back: later processes use this checkout's local schema ids again."""
        update_dev_env(self.settings.dev_env_file, {"CIVREG_REGISTRY_URL": None})

    def apply_global_compatibility(self) -> str:
        """Set the registry-wide rule to the policy's default (Apicurio starts with NONE); returns it."""
        level = load_policy(self.settings.config_files.compatibility_policy).default.value
        client = registry_client(self.url)
        try:
            client.set_compatibility(level=level)
        except Exception as exc:  # SchemaRegistryError or transport errors: the registry is not usable
            raise LocalRegistryError(f"could not set the registry's global compatibility to {level}: {exc}") from exc
        return level

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM for a clean shutdown, SIGKILL after ``timeout``; True if a registry was running."""
        self.remove_dev_env()
        return self._jvm.stop(timeout)

    def status(self, *, search: bool = True) -> RegistryStatus:
        """Whether our registry process runs (not whether it is ready: see ``probe_registry``).

        ``search=False`` trusts the pid file alone (no /proc scan).
        """
        pid = self._jvm.running_pid(search=search)
        if pid is None and search and self.pid_path.exists():
            self._jvm.forget_pid()  # stale: the process is gone or the pid now belongs to something else
        return RegistryStatus(pid is not None, pid, self.url, self.version, self.data_dir)

    def is_running(self) -> bool:
        """Cheap check (the pid file alone) used by the dev tools; services read ``CIVREG_REGISTRY_URL`` instead."""
        return self.status(search=False).running

    def log_tail(self, lines: int = 20) -> str:
        """The end of the registry log, quoted in errors so a failed start explains itself."""
        return self._jvm.log_tail(lines, missing="(no registry log)")

    # ---- internals --------------------------------------------------------------------------------------

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.health_url, timeout=2.0) as response:  # noqa: S310 (loopback http)
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False
