"""Scenario (7), router crash: ``civreg route`` SIGKILLed at random moments, many times, during a stream.

The router writes every department's topic and the disclosure ledger in Kafka transactions; killed mid-transaction
and restarted (same transactional ids, which fences and aborts what the dead one left open), every department topic
must hold each event its agreement lets it see exactly once, and the ledger one disclosure per delivery. Counted
from the producer's delivery reports and the agreements against what a ``read_committed`` reader finds on the
topics, never from the router's own report. Events carry schema registry ids (the suite's registry, as
``registry-outage`` uses), so every restart resolves them again and the lanes register their projections.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections import Counter

from confluent_kafka import ConsumerGroupTopicPartitions
from confluent_kafka.admin import AdminClient

from civreg.codec_from_settings import open_codec
from civreg.kafka_config import admin_config
from civreg.settings import Settings
from consumers.routing.disclosures import Disclosure
from consumers.routing.router import lane_group
from consumers.runtime.agreements import load_agreements
from deploy.local.faults.counting import grows, wait_for
from deploy.local.faults.lab import Lab
from deploy.local.faults.processes import REPO, RouterProcess, consumer_env
from deploy.local.faults.producing import Producing
from deploy.local.faults.reading import read_topic
from deploy.local.faults.results import FaultResult
from producers.simulation import simulate_registrations
from schemas.topics import department_topic, disclosure_topic

NAME = "router-crash"


def routed_offsets(settings: Settings, groups: list[str]) -> int:
    """Sum of the offsets the router's lanes have committed (in their transactions): it grows while it routes."""
    admin = AdminClient(admin_config(settings, "faults"))
    total = 0
    for group in groups:
        try:
            future = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], request_timeout=10)
            result = future[group].result(timeout=15)
        except Exception:  # the group does not exist yet, or its coordinator is moving: no progress seen
            result = None
        if result is not None:
            total += sum(tp.offset for tp in result.topic_partitions or [] if tp.offset >= 0)
    return total


def router_crash(lab: Lab) -> FaultResult:
    """The router SIGKILLed at random moments while events of every register stream in; then one restart that
    catches up. Every department topic, and the ledger, must hold each agreed delivery exactly once."""
    # Registry ids, as in production: each restart resolves them again, and each lane registers its projections.
    base = lab.broker().model_copy(update={"registry_url": lab.registry_url()})
    settings = lab.scenario(base, NAME, every_department=True)
    agreements = load_agreements(settings.config_files.agreements_dir)
    groups = [lane_group(department, settings.topic_prefix) for department in agreements]
    events = list(simulate_registrations(lab.options.router_events, lab.options.seed + 5))
    codec = open_codec(settings, publishing=True)
    rng = random.Random(lab.options.seed + 5)
    kills = lab.options.router_kills
    notes: list[str] = []
    # Paced so the stream lasts about as long as the kills take (a restart fences six transactional ids).
    chunk = 100
    producing = Producing(settings, codec, events, chunk=chunk, pause=kills * 6.0 / max(len(events) // chunk, 1))
    router = RouterProcess(settings, lab.workdir / NAME / "router.log", batch_size=100)
    producing.start()
    routing_at_kill = 0
    for _ in range(kills):
        progressed = grows(lambda: routed_offsets(settings, groups))
        router.start()
        # A random moment once it is routing: up to a second and a half after it committed a transaction.
        if wait_for(progressed, 60, step=0.2):
            routing_at_kill += 1
        time.sleep(rng.uniform(0.0, 1.5))
        if not router.alive:
            notes.append(f"FAILED: the router exited on its own with code {router.exit_code}")
        router.kill()
    fault_ended = time.monotonic()
    producing.join(600)
    if producing.error is not None:
        notes.append(f"FAILED: the producer stopped: {type(producing.error).__name__}: {producing.error}")
    final = subprocess.run(
        [sys.executable, "-m", "civreg", "route", "--until-caught-up", "--batch-size", "100", "--metrics-port", "0"],
        env=consumer_env(settings),
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    recovery = time.monotonic() - fault_ended
    if final.returncode != 0:
        notes.append(f"FAILED: the restarted router exited with code {final.returncode}: {final.stderr[-400:]}")
    notes.append(f"{routing_at_kill} of {kills} kills while the router was committing transactions")

    acknowledged = producing.ids_acknowledged()
    prefix = settings.topic_prefix
    records = [Disclosure.from_json(value or b"") for _, value, _ in read_topic(settings, disclosure_topic(prefix))]
    ledger = Counter((record.event_id, record.department) for record in records)
    lost = doubled = delivered_once = deliveries = 0
    for department, agreement in sorted(agreements.items()):
        expected = Counter(
            str(e.event_id) for e in events if str(e.event_id) in acknowledged and agreement.withheld_because(e) is None
        )
        on_topic = read_topic(settings, department_topic(department, prefix))
        delivered = Counter(str(codec.decode(value).event_id) for _, value, _ in on_topic)
        disclosed = Counter({event_id: n for (event_id, name), n in ledger.items() if name == department})
        missing, extra = expected - delivered, delivered - expected
        lost += sum(missing.values()) + sum((expected - disclosed).values())
        doubled += sum(extra.values()) + sum((disclosed - expected).values())
        delivered_once += sum((expected & delivered).values())
        deliveries += sum(expected.values())
        foreign = set(delivered) - set(expected)
        if foreign:
            notes.append(f"FAILED: {len(foreign)} events on the {department} topic that its agreement withholds")
    notes.append(f"{deliveries:,} agreed deliveries to {len(agreements)} departments; ledger {sum(ledger.values()):,}")
    return FaultResult(
        scenario=NAME,
        events=len(events),
        acknowledged=len(acknowledged),
        applied=delivered_once,
        lost=lost,
        doubled=doubled,
        recovery_seconds=round(recovery, 1),
        faults=kills,
        notes=notes,
    )
