"""Every command ends a project error (``civreg.errors.CivregError``) with one line on stderr and exit status 1.

Real parts: the session's broker, a registry port nobody listens on, topics under a prefix never created. The
``civreg`` process is run as a user runs it (``python -m civreg``), so the entry point's handler is what is tested.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from civreg.errors import EXIT_ERROR, CivregError, MissingTopics
from civreg.settings import Settings
from consumers.operations.acknowledgements import TraceError
from consumers.runtime import TransientError
from deploy.local.demo import settings_to_keep_using
from deploy.local.jvm import free_port
from deploy.local.kafka import LocalKafkaError
from deploy.topics import TopicApplyError
from schemas.registry import RegistryError, RegistryUnavailable
from tests.support.environment import REPO, settings_env

LOG_LINE = re.compile(r"\{|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z \[")


def civreg(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "civreg", *args],
        env={**settings_env(settings), "COLUMNS": "250", **env},
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        timeout=180,
    )


def the_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one ``error:`` line, after checking there is no traceback and nothing else but log lines (JSON, or the
    demo's readable ones, which start with their time)."""
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    plain = [line for line in result.stderr.splitlines() if line.strip() and not LOG_LINE.match(line)]
    assert len(plain) == 1 and plain[0].startswith("error: "), result.stderr[-3000:]
    return plain[0]


def test_the_projects_errors_share_one_root() -> None:
    for error in (RegistryError, RegistryUnavailable, TransientError, TraceError, LocalKafkaError, TopicApplyError):
        assert issubclass(error, CivregError)
    assert MissingTopics(["p.registrations.deaths"], "p").exit_code == EXIT_ERROR == 1


def test_keep_running_names_the_settings_of_the_stack_it_leaves(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        topic_prefix="civreg-demo-20250101",
        database_dir=tmp_path / "demo",
        registry_url="https://user:secret@registry.example:8081",
        postgres_dsn=None,
    )
    lines = settings_to_keep_using(settings)
    assert "export CIVREG_TOPIC_PREFIX=civreg-demo-20250101" in lines
    assert f"export CIVREG_DATABASE_DIR={tmp_path / 'demo'}" in lines
    assert "export CIVREG_REGISTRY_URL=https://registry.example:8081" in lines
    assert "secret" not in "\n".join(lines)


@pytest.mark.kafka
def test_a_consumer_whose_topics_do_not_exist_says_what_to_do(bus_settings: Settings) -> None:
    elsewhere = bus_settings.model_copy(update={"topic_prefix": f"never{uuid.uuid4().hex[:8]}"})
    result = civreg(elsewhere, "consume", "-d", "tax", "--until-caught-up")
    assert result.returncode == 1
    line = the_error_line(result)
    assert f"{elsewhere.topic_prefix}.department.tax" in line  # its own topic, written by the router
    assert "civreg topics apply" in line and "CIVREG_TOPIC_PREFIX" in line


@pytest.mark.kafka
def test_trace_of_a_missing_topic_is_one_line(bus_settings: Settings) -> None:
    elsewhere = bus_settings.model_copy(update={"topic_prefix": f"never{uuid.uuid4().hex[:8]}"})
    result = civreg(elsewhere, "trace", str(uuid.uuid4()), "--timeout", "10")
    assert result.returncode == 1
    assert "civreg topics apply" in the_error_line(result)


@pytest.mark.kafka
@pytest.mark.parametrize(
    "command",
    [
        ("consume", "-d", "tax", "--until-caught-up"),
        ("simulate", "registrations", "--count", "5", "--publish"),
    ],
    ids=["consume", "publish"],
)
def test_a_registry_that_is_down_is_one_line_and_exit_1(bus_settings: Settings, command: tuple[str, ...]) -> None:
    down = bus_settings.model_copy(update={"registry_url": f"http://127.0.0.1:{free_port()}"})
    result = civreg(down, *command, CIVREG_REGISTRY_WAIT_SECONDS="1")
    assert result.returncode == 1, result.stderr[-3000:]
    assert "is unreachable" in the_error_line(result)


@pytest.mark.kafka
def test_the_demo_ends_a_registry_or_topic_error_with_one_line(bus_settings: Settings) -> None:
    """Its topics (production profile on your own cluster of several brokers) or its registry fail: either way one
    line, exit 1 (retry warnings before it are log lines)."""
    down = bus_settings.model_copy(update={"registry_url": f"http://127.0.0.1:{free_port()}"})
    # --plaintext: the session's broker is a plaintext one (the secure default refuses it with its own one line).
    result = civreg(
        down, "demo", "--plaintext", "--count", "100", "--mailing-size", "10", CIVREG_REGISTRY_WAIT_SECONDS="1"
    )
    assert result.returncode == 1, result.stderr[-3000:]
    line = the_error_line(result)
    assert "is unreachable" in line or "creating" in line
