"""The fault suite (``python -m deploy.local.faults``) as tests: every scenario against real processes, counted from
the producer's acknowledgements (or the outbox's committed rows) against the stores and topics, must lose nothing
and double nothing.

It starts its own brokers (a three-node cluster for broker loss), its own PostgreSQL server (it stops it) and a proxy
in front of the session's registry (it stops the proxy, never the registry). ``make faults`` runs the full sizes,
``make faults-quick`` the reduced ones (``-m faults``), ``make test`` the smallest (``-m faults_ci``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.local.faults import SCENARIOS
from tests.support.environment import REPO

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.registry]


def _run_suite(size: str, registry_url: str, out_dir: Path) -> None:
    command = [sys.executable, "-m", "deploy.local.faults", f"--{size}", "--out-dir", str(out_dir)]
    run = subprocess.run(
        [*command, "--registry-url", registry_url],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=1200,
    )
    results = json.loads((out_dir / "faults.json").read_text(encoding="utf-8"))
    assert [r["scenario"] for r in results] == list(SCENARIOS), run.stdout[-3000:]
    assert {"router-crash", "relay-crash"} <= set(SCENARIOS)
    for result in results:
        assert result["acknowledged"] == result["events"], result
        assert result["applied"] > 0, result
        assert result["faults"] > 0, result
        assert (result["lost"], result["doubled"], result["dead_lettered"]) == (0, 0, 0), result
        assert not [note for note in result["notes"] if note.startswith("FAILED")], result
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]


@pytest.mark.faults
def test_the_reduced_fault_suite_loses_nothing_and_doubles_nothing(registry_url: str, tmp_path: Path) -> None:
    _run_suite("quick", registry_url, tmp_path)
