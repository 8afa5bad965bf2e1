"""A demo run's complete logs contain none of the personal values it published (issue 11, redaction by design).

The real thing: ``civreg demo`` as a process against the session's broker and schema registry, at DEBUG, its own
CIVREG_HOME; stdout, stderr and every log file it leaves under its home are read whole, and searched for every
name, date of birth, identifier, address line and postcode of the registrations it published (the same seed
simulated again here: the simulator is deterministic).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from civreg.kafka_config import admin_config
from civreg.settings import Settings
from producers.simulation import simulate_population
from tests.support.environment import REPO
from tests.support.personal_data import leaks_as_words, personal_values, public_text

pytestmark = [pytest.mark.kafka, pytest.mark.registry]

COUNT = 300
SEED = 7


def demo_env(kafka_settings: Settings, registry_url: str, prefix: str, home: Path) -> dict[str, str]:
    """The session's broker as a cluster of the user's own (so the demo starts nothing), a private home."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("CIVREG_")}
    env |= {
        "CIVREG_BOOTSTRAP_SERVERS": kafka_settings.effective_bootstrap_servers,
        "CIVREG_REGISTRY_URL": registry_url,
        "CIVREG_TOPIC_PREFIX": prefix,
        "CIVREG_HOME": str(home),
        "COLUMNS": "200",
    }
    if kafka_settings.security_protocol != "PLAINTEXT":  # CIVREG_TEST_SECURE: the session's admin principal
        env["CIVREG_SECURITY_PROTOCOL"] = kafka_settings.security_protocol
        env["CIVREG_SASL_MECHANISM"] = kafka_settings.sasl_mechanism
        for name, value in (
            ("CIVREG_SASL_USERNAME", kafka_settings.sasl_username),
            ("CIVREG_SASL_PASSWORD_FILE", kafka_settings.sasl_password_file),
            ("CIVREG_SSL_CA_LOCATION", kafka_settings.ssl_ca_location),
        ):
            if value is not None:
                env[name] = str(value)
    return env


def delete_topics(kafka_settings: Settings, prefix: str) -> None:
    """The demo's topics (``<prefix>-demo-<stamp>.*``): a shared broker should not keep them."""
    admin = AdminClient(admin_config(kafka_settings))
    try:
        names = [name for name in admin.list_topics(timeout=10).topics if name.startswith(f"{prefix}-demo-")]
        for future in (admin.delete_topics(names, operation_timeout=30) if names else {}).values():
            future.result()
    except KafkaException:
        pass


def test_a_demo_run_logs_none_of_the_personal_values_it_published(
    kafka_settings: Settings, registry_url: str, tmp_path: Path
) -> None:
    prefix = f"t{uuid.uuid4().hex[:12]}"
    home = tmp_path / "home"
    command = ["demo", "--count", str(COUNT), "--mailing-size", "100", "--seed", str(SEED), "--log-level", "DEBUG"]
    try:
        result = subprocess.run(
            [sys.executable, "-m", "civreg", *command],
            cwd=REPO,
            env=demo_env(kafka_settings, registry_url, prefix, home),
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    finally:
        delete_topics(kafka_settings, prefix)
    assert result.returncode == 0, result.stderr[-3000:]
    log_files = [path for path in home.rglob("*") if path.is_file() and (path.suffix == ".log" or "logs" in path.parts)]
    logs = "\n".join([result.stdout, result.stderr, *(path.read_text(errors="replace") for path in log_files)])
    # The services' own lines are in what is searched, not only the demo's tables.
    assert "consuming" in result.stderr and "stopped" in result.stderr
    assert "published" in result.stdout or "publishing" in result.stdout

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
