"""A throwaway PostgreSQL server for the test session: ``initdb`` into a temporary directory, ``pg_ctl`` on a free port.

Why not the packaged cluster: tests must never touch a developer's database, and CI machines have the binaries
(Debian's ``postgresql`` package) but no running server. PostgreSQL refuses to run as root, so when the tests run
as root the data directory is given to the ``postgres`` user (created by the Debian package) and the server runs
as that user through ``runuser``.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from deploy.local.jvm import free_port

__all__ = ["LocalPostgres", "PostgresUnavailable", "find_bindir"]

SUPERUSER = "civreg"


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server binaries are missing or the server would not start; the message says what to do."""


def find_bindir() -> Path:
    """Where ``initdb`` and ``pg_ctl`` are: $CIVREG_TEST_POSTGRES_BINDIR, Debian's versioned dir, or PATH."""
    configured = os.environ.get("CIVREG_TEST_POSTGRES_BINDIR")
    if configured:
        return Path(configured)
    versions = [path for path in Path("/usr/lib/postgresql").glob("*/bin/initdb") if path.parts[-3].isdigit()]
    if versions:  # Debian keeps each major version apart; the newest wins
        return max(versions, key=lambda path: int(path.parts[-3])).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise PostgresUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl) are not installed; install them "
        "(Debian: apt-get install postgresql), set CIVREG_TEST_POSTGRES_BINDIR, "
        "or set CIVREG_TEST_POSTGRES_DSN to a server you already have"
    )


@dataclass
class LocalPostgres:
    """One server in its own directory; ``start`` returns a superuser DSN (password authentication over TCP)."""

    bindir: Path
    port: int = 0
    root: Path | None = None
    password: str = ""

    @classmethod
    def create(cls) -> LocalPostgres:
        """A server description with binaries found, a free port, a fresh directory and a random password."""
        return cls(find_bindir(), free_port(), Path(tempfile.mkdtemp(prefix="civreg-pg-")), secrets.token_hex(16))

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory."""
        assert self.root is not None
        return self.root / "data"

    @property
    def dsn(self) -> str:
        """Superuser connection string to the ``postgres`` database."""
        return f"postgresql://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/postgres"

    def _run_as_owner(self, *command: str) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bindir / command[0]), *command[1:]]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            argv = ["runuser", "-u", _server_user(), "--", *argv]
        return subprocess.run(argv, check=False, capture_output=True, text=True, timeout=120)

    def start(self) -> str:
        """initdb, then pg_ctl start (waiting until it accepts connections); returns the DSN."""
        assert self.root is not None
        if os.geteuid() == 0:
            user = pwd.getpwnam(_server_user())
            os.chown(self.root, user.pw_uid, user.pw_gid)
        password_file = self.root / "password"
        password_file.write_text(self.password + "\n", encoding="utf-8")
        if os.geteuid() == 0:
            os.chown(password_file, pwd.getpwnam(_server_user()).pw_uid, -1)
        password_file.chmod(0o600)
        initdb = self._run_as_owner(
            "initdb",
            "--pgdata",
            str(self.data_dir),
            "--username",
            SUPERUSER,
            "--pwfile",
            str(password_file),
            "--auth",
            "scram-sha-256",
            "--encoding",
            "UTF8",
            "--locale",
            "C",
            "--no-sync",  # the cluster lives for one test session
        )
        password_file.unlink()
        if initdb.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {initdb.stderr.strip()[-2000:]}")
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
            "-c max_connections=200 -c fsync=off -c full_page_writes=off"  # test speed; commits stay synchronous
        )
        log_file = str(self.root / "server.log")
        started = self._run_as_owner(
            "pg_ctl",
            "start",
            "--pgdata",
            str(self.data_dir),
            "--wait",
            "--timeout=60",
            "--log",
            log_file,
            "-o",
            options,
        )
        if started.returncode != 0:
            log = (self.root / "server.log").read_text(encoding="utf-8", errors="replace")[-2000:]
            raise PostgresUnavailable(f"pg_ctl start failed: {started.stderr.strip()[-1000:]}\n{log}")
        return self.dsn

    def stop(self) -> None:
        """Fast shutdown, then remove the directory."""
        if self.root is None:
            return
        if (self.data_dir / "postmaster.pid").exists():
            self._run_as_owner("pg_ctl", "stop", "--pgdata", str(self.data_dir), "--mode", "fast", "--wait")
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None


def _server_user() -> str:
    """The non-root account that runs the server when the tests run as root."""
    for name in (os.environ.get("CIVREG_TEST_POSTGRES_USER"), "postgres", "nobody"):
        if name:
            try:
                pwd.getpwnam(name)
            except KeyError:
                continue
            return name
    raise PostgresUnavailable(
        "running as root and no 'postgres' user exists to run the server; set CIVREG_TEST_POSTGRES_USER"
    )
