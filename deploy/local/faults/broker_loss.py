"""Scenario (2), broker loss: brokers of a three-node cluster SIGKILLed while publishing and consuming."""

from __future__ import annotations

import time

from deploy.local.faults.counting import wait_for
from deploy.local.faults.lab import Lab
from deploy.local.faults.results import FaultResult
from deploy.local.faults.run import ScenarioRun


def broker_loss(lab: Lab) -> FaultResult:
    """One broker of three SIGKILLed while publishing and consuming, then two: errors and retries, no loss."""
    cluster, base = lab.cluster()
    try:
        run = ScenarioRun.begin(lab, "broker-loss", base, events=lab.options.events, seed=0, profile="production")
        consumer = run.consumer()
        consumer.start()
        # A short delivery timeout: with two brokers down, failures reach the producer (and are retried) in seconds.
        producing = run.producing(chunk=100, pause=0.05, overrides={"message.timeout.ms": 10_000})
        third = len(run.events) // 3
        producing.limit = third
        producing.start()
        wait_for(lambda: len(producing.ids_acknowledged()) >= third // 2, 300)
        cluster.kill(2)  # one broker: min.insync.replicas 2 still holds
        wait_for(lambda: len(producing.ids_acknowledged()) >= third, 300)
        cluster.restart(2)
        failed_before = producing.failed_deliveries
        cluster.kill(2)
        cluster.kill(3)  # two of three: no quorum, no in-sync majority: producers must see errors
        producing.limit = 2 * third  # the second third is published while two brokers are down
        time.sleep(lab.options.two_brokers_down_seconds)
        failed_during = producing.failed_deliveries - failed_before
        run.notes.append(f"two brokers down: {failed_during} deliveries failed and were retried")
        if failed_during == 0 and not producing.is_alive():
            run.notes.append("the stream had ended before two brokers were down")
        cluster.restart(2)
        cluster.restart(3)
        producing.limit = len(run.events)
        fault_ended = time.monotonic()
        if not consumer.alive:
            run.notes.append("FAILED: the consumer died while brokers were down")
        return run.finish(producing, fault_ended=fault_ended, faults=3)
    finally:
        lab.release_cluster()
