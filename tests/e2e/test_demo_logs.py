"""A demo run's complete logs contain none of the personal values it published, nor any password (issue 11).

The real thing: ``civreg demo`` as a process, as ``make demo`` runs it: on its own local broker, secured (TLS,
SASL/SCRAM logins per principal, ACLs), started on free ports under its own CIVREG_HOME and stopped by the demo;
the session's schema registry. At DEBUG; stdout, stderr and every log file it leaves under its home (the broker's
too) are read whole, and searched for every name, date of birth, identifier, address line and postcode of the
registrations it published (the same seed simulated again here: the simulator is deterministic) and for every
password in the credentials file the secure broker was given.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from civreg.settings import Settings
from deploy.local.jvm import free_port
from deploy.local.kafka import LocalKafka
from deploy.local.security import read_credentials
from producers.simulation import simulate_population
from tests.support.environment import REPO
from tests.support.personal_data import leaks_as_words, personal_values, public_text

pytestmark = [pytest.mark.kafka, pytest.mark.registry]

COUNT = 300
SEED = 7


def demo_env(registry_url: str, home: Path, port: int, controller_port: int) -> dict[str, str]:
    """A private home and free ports: the demo starts (and stops) a secure local broker of its own."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("CIVREG_")}
    env |= {
        "PYTHONPATH": str(REPO),
        "CIVREG_HOME": str(home),
        "CIVREG_CACHE_DIR": str(REPO / ".cache"),
        "CIVREG_LOCAL_PORT": str(port),
        "CIVREG_LOCAL_CONTROLLER_PORT": str(controller_port),
        "CIVREG_REGISTRY_URL": registry_url,
        "COLUMNS": "200",
    }
    return env


def test_a_secure_demo_run_logs_no_personal_value_and_no_password(registry_url: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    port, controller_port = free_port(), free_port()
    command = ["demo", "--count", str(COUNT), "--mailing-size", "100", "--seed", str(SEED), "--log-level", "DEBUG"]
    try:
        result = subprocess.run(
            [sys.executable, "-m", "civreg", *command],
            cwd=REPO,
            env=demo_env(registry_url, home, port, controller_port),
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    finally:  # the demo stops the broker it started; this only covers a demo killed by the timeout
        LocalKafka(
            Settings(home=home, local_port=port, local_controller_port=controller_port, bootstrap_servers=None)
        ).stop()
    assert result.returncode == 0, result.stderr[-3000:]
    data = home / "kafka" / "data"  # the broker's partition segments (``*.log``) are the bus's data, not logs
    log_files = [
        path
        for path in home.rglob("*")
        if path.is_file() and (path.suffix == ".log" or "logs" in path.parts) and not path.is_relative_to(data)
    ]
    assert home / "kafka" / "broker.log" in log_files
    logs = "\n".join([result.stdout, result.stderr, *(path.read_text(errors="replace") for path in log_files)])
    # The services' own lines are in what is searched, not only the demo's tables.
    assert "consuming" in result.stderr and "stopped" in result.stderr
    assert "published" in result.stdout or "publishing" in result.stdout

    # Secured, each step as its own principal, and one department's bytes beside its agreement.
    assert "over SASL_SSL" in result.stdout
    for step, principal in [
        ("publish registrations", "register-office"),
        ("route (six lanes)", "router"),
        ("dvla consumer", "dvla"),
        ("tax consumer", "tax"),
        ("trace one death", "operator"),
        ("lag of every group", "operator"),
    ]:
        assert any(step in line and f" {principal} " in line for line in result.stdout.splitlines()), step
    assert "read as principal dvla" in result.stdout
    assert "every field in the message is in dvla's agreement" in result.stdout

    passwords = read_credentials(home / "kafka" / "secure" / "credentials")
    assert {"admin", "register-office", "router", "operator", "dvla"} <= set(passwords)
    assert not [name for name, password in passwords.items() if password in logs], "a password in the demo's output"

    published = simulate_population(COUNT, seed=SEED).events
    dumped = [event.model_dump(mode="json") for event in published]
    public = public_text(dumped)
    values = {value for value in personal_values(dumped) if not leaks_as_words(public, [value])}
    assert len(values) > 1000
    leaked = leaks_as_words(logs, values)
    assert leaked == [], f"{len(leaked)} personal values in the demo's logs"
    # At DEBUG the publisher logs every delivery: ids, topics, partitions and offsets stay readable.
    delivered = [str(event.event_id) for event in published]
    assert all(event_id in result.stderr for event_id in delivered)
