"""Scenario (5), rebalance: one of two instances in a group stopped and restarted."""

from __future__ import annotations

import time

from deploy.local.faults.counting import applied_count, wait_for
from deploy.local.faults.lab import Lab
from deploy.local.faults.results import FaultResult
from deploy.local.faults.run import ScenarioRun


def rebalance(lab: Lab) -> FaultResult:
    """Two instances of one department in one group; one stopped and restarted: partitions move away and back."""
    run = ScenarioRun.begin(lab, "rebalance", lab.broker_with_database(), events=lab.options.events, seed=3)
    first, second = run.consumer("first"), run.consumer("second")
    first.start()
    second.start()
    producing = run.producing(chunk=100, pause=0.1)
    producing.start()
    wait_for(lambda: applied_count(run.settings) >= len(run.events) // 4, 300)
    code = second.stop()  # its partitions move to the first
    if code != 0:
        run.notes.append(f"FAILED: the stopped instance exited with code {code}")
    wait_for(lambda: applied_count(run.settings) >= len(run.events) // 2, 300)
    second.start()  # and back
    fault_ended = time.monotonic()
    result = run.finish(producing, fault_ended=fault_ended, faults=1)
    if second.log_text().count('"assigned"') < 2:
        result.notes.append("the restarted instance was given no partitions")
    return result
