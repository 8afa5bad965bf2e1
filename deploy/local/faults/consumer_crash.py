"""Scenario (3), consumer crash: the department consumer SIGKILLed at random moments, many times."""

from __future__ import annotations

import random
import time

from deploy.local.faults.counting import applied_count, progress_from, wait_for
from deploy.local.faults.lab import Lab
from deploy.local.faults.results import FaultResult
from deploy.local.faults.run import ScenarioRun


def consumer_crash(lab: Lab) -> FaultResult:
    """The department consumer SIGKILLed at random moments, many times, during a long stream."""
    run = ScenarioRun.begin(lab, "consumer-crash", lab.broker(), events=lab.options.crash_events, seed=1)
    rng = random.Random(lab.options.seed)
    consumer = run.consumer()
    kills = lab.options.crash_kills
    # Paced so the stream lasts about as long as the kills take (a restart and group join are several seconds).
    chunk = 500
    producing = run.producing(chunk=chunk, pause=kills * 7.0 / max(len(run.events) // chunk, 1))
    producing.start()
    consumer.start()
    expected_total = len(run.events)
    for _ in range(kills):
        # A random moment once it is applying: up to a few seconds after it made progress.
        wait_for(progress_from(run.settings, applied_count(run.settings), expected_total), 60, step=0.2)
        time.sleep(rng.uniform(0.0, 2.5))
        consumer.kill()
        consumer.start()
    fault_ended = time.monotonic()
    if applied_count(run.settings) >= expected_total:
        run.notes.append("the consumer caught up before the last kill")
    return run.finish(producing, fault_ended=fault_ended, faults=kills)
