"""Plumbing shared by the local JVM services (``deploy.local.kafka``, ``deploy.local.registry``).

Both fetch their jars with Maven into a staging directory that is renamed into place with a completion marker,
and both run one detached JVM whose pid file is the only state: a stale pid file (process gone, or the pid reused
by something that is not ours) is detected and removed, and a JVM whose pid file was lost is found in /proc.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = [
    "COMPLETE_MARKER",
    "JvmProcess",
    "cmdline",
    "fetch_with_maven",
    "free_port",
    "maven_command",
    "pid_alive",
    "port_in_use",
    "tail",
]

COMPLETE_MARKER = ".civreg-complete"


def maven_command(mvn: str, pom: Path, repo_local: Path, properties: dict[str, str], goal: str) -> list[str]:
    """A quiet batch-mode ``mvn`` invocation of ``goal`` on ``pom`` with ``-Dkey=value`` for each property."""
    return [
        mvn,
        "-B",
        "-q",
        "-Dstyle.color=never",
        "-f",
        str(pom),
        f"-Dmaven.repo.local={repo_local}",
        *(f"-D{key}={value}" for key, value in properties.items()),
        goal,
    ]


def fetch_with_maven(
    command: Sequence[str],
    *,
    staging: Path,
    target: Path,
    version: str,
    is_complete: Callable[[], bool],
    failure: Callable[[str], Exception],
    check_staging: Callable[[Path], None] | None = None,
) -> None:
    """Run ``command`` (Maven filling ``staging``), then rename ``staging`` to ``target`` with a completion marker.

    Maven fills a private staging dir that is renamed into place when complete: a run that is killed half-way, or
    two sessions fetching at once, never leave a ``target`` that looks complete but is not. ``failure`` turns
    the end of Maven's output into the exception to raise; ``check_staging`` may raise on a staging dir that Maven
    filled but that lacks what is needed. The caller checks ``is_complete()`` afterwards.
    """
    shutil.rmtree(staging, ignore_errors=True)
    try:
        result = subprocess.run(list(command), capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise failure(tail((result.stdout + result.stderr).splitlines(), 15))
        if check_staging is not None:
            check_staging(staging)
        (staging / COMPLETE_MARKER).write_text(f"{version}\n", encoding="utf-8")
        if not is_complete():  # else another process finished first: keep its copy
            shutil.rmtree(target, ignore_errors=True)  # an incomplete copy from an older run
            with contextlib.suppress(OSError):
                staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(staging.with_name(staging.name + ".build"), ignore_errors=True)


class JvmProcess:
    """One detached JVM known by its pid file, recognised in /proc by ``markers`` in its command line."""

    def __init__(
        self,
        *,
        name: str,
        pid_path: Path,
        log_path: Path,
        markers: Sequence[str],
        logger: logging.Logger,
    ) -> None:
        self.name = name  # "local Kafka": used in log messages
        self.pid_path = pid_path
        self.log_path = log_path
        self.markers = tuple(markers)
        self.log = logger
        self.proc: subprocess.Popen[bytes] | None = None

    def launch(self, command: Sequence[str], cwd: Path) -> subprocess.Popen[bytes]:
        """Start ``command`` in a new session, output appended to the log, and write the pid file."""
        with self.log_path.open("ab") as log_file:
            proc = subprocess.Popen(
                list(command),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                start_new_session=True,  # survives the CLI and Ctrl-C in its terminal
            )
        self.proc = proc
        self.pid_path.write_text(f"{proc.pid}\n", encoding="utf-8")
        self.log.info("%s starting, pid %d", self.name, proc.pid)
        return proc

    def wait_ready(
        self,
        proc: subprocess.Popen[bytes],
        ready: Callable[[], bool],
        *,
        deadline: float,
        exited: Callable[[int], Exception],
        timed_out: Callable[[], Exception],
    ) -> None:
        """Poll ``ready`` until it is true; raise ``exited(code)`` if the JVM dies, ``timed_out()`` (after
        stopping it) once ``deadline`` (``time.monotonic``) passes."""
        while True:
            if proc.poll() is not None:
                self.forget_pid()
                raise exited(proc.returncode)
            if ready():
                return
            if time.monotonic() > deadline:
                self.stop()
                raise timed_out()
            time.sleep(0.2)

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM for a clean shutdown, SIGKILL after ``timeout``; True if the JVM was running."""
        pid = self.running_pid(search=True)
        if pid is None:
            self.forget_pid()
            return False
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            self.forget_pid()
            return False
        if not self._wait_gone(pid, timeout):
            self.log.warning("%s pid %d ignored SIGTERM for %.0fs; killing it", self.name, pid, timeout)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            self._wait_gone(pid, 10.0)
        self.forget_pid()
        return True

    def running_pid(self, *, search: bool = True) -> int | None:
        """The pid file's pid if that process is alive and ours; with ``search``, else a scan of /proc.

        The scan finds a JVM whose pid file was lost (deleted by hand, a crashed CLI), so ``stop`` leaves no
        orphan JVM and a start does not run a second one on the same data dir.
        """
        pid = self.read_pid()
        if pid is not None and self.is_ours(pid):
            return pid
        if not search:
            return None
        found = self._find()
        if found is not None:
            self.pid_path.parent.mkdir(parents=True, exist_ok=True)
            self.pid_path.write_text(f"{found}\n", encoding="utf-8")
        return found

    def read_pid(self) -> int | None:
        try:
            return int(self.pid_path.read_text(encoding="utf-8").strip())
        except (FileNotFoundError, ValueError):
            return None

    def is_ours(self, pid: int) -> bool:
        if self.proc is not None and self.proc.pid == pid and self.proc.poll() is not None:
            return False  # our own child, already exited (reaped here so it leaves no zombie)
        if not pid_alive(pid):
            return False
        line = cmdline(pid)
        if line is None:
            return True  # no /proc: trust the pid file
        return all(marker in line for marker in self.markers)  # else: pid reused by another program

    def forget_pid(self) -> None:
        self.pid_path.unlink(missing_ok=True)
        if self.proc is not None and self.proc.poll() is not None:
            self.proc = None

    def log_tail(self, lines: int, missing: str) -> str:
        """The end of the log (``missing`` if there is none), quoted in errors so a failed start explains itself."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return missing
        return tail(text.splitlines(), lines)

    def _find(self) -> int | None:
        proc = Path("/proc")
        if not proc.is_dir():
            return None
        for entry in proc.iterdir():
            if entry.name.isdigit() and self.is_ours(int(entry.name)):
                return int(entry.name)
        return None

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        if self.proc is not None and self.proc.pid == pid:
            try:
                self.proc.wait(timeout=timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return True
            time.sleep(0.1)
        return not pid_alive(pid)


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on now (for a local service or a test)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def pid_alive(pid: int) -> bool:
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


def cmdline(pid: int) -> str | None:
    """The command line of ``pid`` where /proc exists (Linux); None elsewhere, meaning 'cannot tell'."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.replace(b"\0", b" ").decode("utf-8", errors="replace")


def tail(lines: Sequence[str], count: int) -> str:
    """The last ``count`` non-blank lines, or ``(empty)``."""
    picked = [line for line in lines if line.strip()][-count:]
    return "\n".join(picked) if picked else "(empty)"
