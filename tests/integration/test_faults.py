"""The reduced fault suite (``python -m deploy.local.faults --quick``): every scenario against real processes, counted
from the producer's acknowledgements and the stores' tables, must lose nothing and double nothing.

It starts its own brokers (a three-node cluster for broker loss), its own PostgreSQL server (it stops it) and a proxy
in front of the session's registry (it stops the proxy, never the registry). ``make faults`` runs the full sizes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.environment import REPO

pytestmark = [pytest.mark.faults, pytest.mark.kafka, pytest.mark.postgres, pytest.mark.registry]


def test_the_reduced_fault_suite_loses_nothing_and_doubles_nothing(registry_url: str, tmp_path: Path) -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "deploy.local.faults",
            "--quick",
            "--out-dir",
            str(tmp_path),
            "--registry-url",
            registry_url,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    results = json.loads((tmp_path / "faults.json").read_text(encoding="utf-8"))
    assert {r["scenario"] for r in results} >= {
        "broker-loss",
        "consumer-crash",
        "database-outage",
        "rebalance",
        "registry-outage",
    }, run.stdout[-3000:]
    for result in results:
        assert result["acknowledged"] == result["events"], result
        assert result["applied"] > 0, result
        assert (result["lost"], result["doubled"], result["dead_lettered"]) == (0, 0, 0), result
        assert not [note for note in result["notes"] if note.startswith("FAILED")], result
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
