"""Scenario (4), database outage: PostgreSQL stopped under load."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request

from deploy.local.faults.counting import applied_count, group_members, wait_for
from deploy.local.faults.lab import Lab
from deploy.local.faults.processes import REPO, consumer_env
from deploy.local.faults.results import FaultResult
from deploy.local.faults.run import ScenarioRun
from deploy.local.jvm import free_port


def database_outage(lab: Lab) -> FaultResult:
    """PostgreSQL stopped under load: the consumer waits in its group, shows the outage, resumes."""
    server = lab.postgres()
    run = ScenarioRun.begin(lab, "database-outage", lab.broker_with_database(), events=lab.options.events, seed=2)
    settings = run.settings
    port = free_port()
    consumer = run.consumer(metrics_port=port)
    consumer.start()
    # Events must still be arriving while the database is away, or a fast consumer finishes the stream before the
    # halt takes effect and no batch meets the outage: publishing is paced to last at least twice the outage.
    chunks = max(len(run.events) // 100, 1)
    producing = run.producing(chunk=100, pause=max(0.1, 2 * lab.options.database_outage_seconds / chunks))
    producing.start()
    wait_for(lambda: applied_count(settings) >= len(run.events) // 4, 300)
    members_before = group_members(settings)
    server.halt()
    outage = lab.options.database_outage_seconds
    time.sleep(outage / 2)
    metrics = _scrape(f"http://127.0.0.1:{port}/metrics")
    if _sample(metrics, "civreg_store_up") != 0.0:
        run.notes.append("FAILED: civreg_store_up was not 0 during the outage")
    status = subprocess.run(
        [sys.executable, "-m", "civreg", "status", "--once", "--endpoint", f"127.0.0.1:{port}", "--interval", "0.5"],
        env=consumer_env(settings, {"COLUMNS": "300"}),
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if not ("not ready" in status.stdout and "unreachable" in status.stdout):  # the table may wrap the cell
        run.notes.append(f"FAILED: 'civreg status' did not show the store unreachable: {status.stdout[-600:]}")
    time.sleep(outage / 2)
    members_during = group_members(settings)
    server.resume()
    fault_ended = time.monotonic()
    if not consumer.alive:
        run.notes.append("FAILED: the consumer exited during the outage")
    if members_before and members_during != members_before:
        run.notes.append("FAILED: the consumer left its group during the outage")
    result = run.finish(producing, fault_ended=fault_ended, faults=1)
    log = consumer.log_text()
    if '"batch-retry"' not in log:
        result.notes.append("FAILED: no batch-retry in the consumer's log")
    result.notes.append(f"outage {outage:.0f}s; retries logged: {log.count('batch-retry')}")
    return result


def _scrape(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - a local http URL we built
            return str(response.read().decode("utf-8", errors="replace"))
    except OSError:
        return ""


def _sample(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None
