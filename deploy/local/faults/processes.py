"""The services under test as real ``python -m civreg`` processes (consumer, router, relay), their logs in files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from civreg.settings import Settings
from deploy.local.faults.lab import DEPARTMENT

REPO = Path(__file__).resolve().parents[3]


def consumer_env(settings: Settings, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment that makes a ``civreg`` process use ``settings`` (and nothing of the caller's ``CIVREG_``)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CIVREG_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env.update(
        {
            "CIVREG_BOOTSTRAP_SERVERS": settings.effective_bootstrap_servers,
            "CIVREG_HOME": str(settings.home),
            "CIVREG_TOPIC_PREFIX": settings.topic_prefix,
            "CIVREG_DATABASE_DIR": str(settings.database_dir),
            "CIVREG_CONFIG_DIR": str(settings.config_dir),
            "CIVREG_SESSION_TIMEOUT_MS": str(settings.session_timeout_ms),
            "CIVREG_MAX_POLL_INTERVAL_MS": str(settings.max_poll_interval_ms),
        }
    )
    if settings.postgres_dsn is not None:
        env["CIVREG_POSTGRES_DSN"] = settings.postgres_dsn.get_secret_value()
    if settings.registry_url is not None:
        env["CIVREG_REGISTRY_URL"] = settings.registry_url
    env.update(extra or {})
    return env


class ServiceProcess:
    """One ``python -m civreg ...`` service, started and restarted with its output appended to one log file."""

    def __init__(self, arguments: Sequence[str], settings: Settings, log_path: Path) -> None:
        self.arguments = list(arguments)
        self.settings = settings
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "civreg", *self.arguments],
                env=consumer_env(self.settings),
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def exit_code(self) -> int | None:
        """None while running (or never started)."""
        return None if self.proc is None else self.proc.poll()

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, no group leave, no transaction finished."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> int | None:
        """SIGTERM (finish the batch in hand, leave the group), SIGKILL after 60 s; the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""


class ConsumerProcess(ServiceProcess):
    """``python -m civreg consume --department suppression``."""

    def __init__(self, settings: Settings, log_path: Path, *, metrics_port: int = 0) -> None:
        arguments = ["consume", "--department", DEPARTMENT, "--batch-size", "200"]
        if metrics_port:
            arguments += ["--metrics-port", str(metrics_port)]
        super().__init__(arguments, settings, log_path)
        self.metrics_port = metrics_port


class RouterProcess(ServiceProcess):
    """``python -m civreg route``: one transactional lane per agreement under the settings' ``config_dir``."""

    def __init__(self, settings: Settings, log_path: Path, *, batch_size: int = 200) -> None:
        super().__init__(["route", "--batch-size", str(batch_size), "--metrics-port", "0"], settings, log_path)


class RelayProcess(ServiceProcess):
    """``python -m civreg relay`` for one outbox (small batches: a kill lands inside one more often)."""

    def __init__(self, settings: Settings, log_path: Path, outbox: str, *, batch_size: int = 20) -> None:
        arguments = ["relay", "--outbox", outbox, "--batch-size", str(batch_size), "--poll-interval", "0.05"]
        super().__init__([*arguments, "--metrics-port", "0", "--log-level", "WARNING"], settings, log_path)
