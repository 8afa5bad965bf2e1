"""``civreg relay`` on the real broker with outboxes on both engines: committed rows published in order per entry and
marked sent, rolled-back ones never; a row sent twice applied once; a broker outage never marks a row sent."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from prometheus_client import CollectorRegistry

from civreg.kafka_config import consumer_config
from civreg.metrics import RelayMetrics, default_metrics
from civreg.settings import Settings
from consumers.operations.running import run_department
from deploy.local.jvm import free_port
from producers.event_files import write_event_file
from producers.outbox import Outbox
from producers.publisher import Publisher
from producers.relay import Relay
from schemas.models import Event
from schemas.topics import registration_topics
from tests.e2e.test_operators import DASHBOARDS, dashboard_queries, exported_names, relay_only, rule_expressions
from tests.integration.test_outbox import outbox_target
from tests.support.environment import REPO, settings_env
from tests.support.factories import make_correction, make_death, make_person

pytestmark = pytest.mark.kafka

CIVREG = [sys.executable, "-m", "civreg"]


def on_topics(settings: Settings) -> list[tuple[str, str]]:
    """(entry key, event id) of every message on the registration topics, in partition order (up to the high
    watermarks read first, so the reading ends)."""
    consumer = Consumer(consumer_config(settings, f"reader-{uuid.uuid4()}", **{"enable.auto.commit": False}))
    try:
        ends: dict[tuple[str, int], int] = {}
        for topic in registration_topics(settings.topic_prefix).values():
            for partition in consumer.list_topics(topic, timeout=10).topics[topic].partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
                if high > low:
                    ends[(topic, partition)] = high
        consumer.assign([TopicPartition(t, p, 0) for t, p in ends])
        found: list[tuple[str, str]] = []
        remaining = dict(ends)
        deadline = time.monotonic() + 120
        while remaining and time.monotonic() < deadline:
            for message in consumer.consume(500, 1.0):
                if message.error() is not None:
                    continue
                headers = dict(message.headers() or [])
                found.append((message.key().decode(), headers["event_id"].decode()))
                where = (message.topic(), message.partition())
                if message.offset() + 1 >= remaining.get(where, 0):
                    remaining.pop(where, None)
        assert not remaining, f"could not read to the end of {sorted(remaining)}"
        return found
    finally:
        consumer.close()


def _entries_with_history(count: int, corrected: int) -> list[list[Event]]:
    """``count`` deaths; the first ``corrected`` of them corrected twice (versions 2 and 3)."""
    histories: list[list[Event]] = []
    for n in range(1, count + 1):
        death = make_death(entry_number=n, deceased=make_person(given_names=f"Person{n}", identifiers=None))
        history: list[Event] = [death]
        if n <= corrected:
            first = make_correction(of=death, place_of_death="St James's Hospital")
            history += [first, make_correction(of=first, place_of_death="Leeds General Infirmary")]
        histories.append(history)
    return histories


def _unsent(target: str) -> int:
    with Outbox.open(target) as box:
        return box.backlog()[0]


def test_committed_rows_go_out_in_order_per_entry_and_are_marked_sent_rolled_back_ones_never(
    bus_store_settings: Settings, tmp_path: Path
) -> None:
    target = outbox_target(bus_store_settings, tmp_path)
    histories = _entries_with_history(30, corrected=12)
    rolled_back = make_death(entry_number=999)
    with Outbox.open(target) as box:
        # Interleave entries: version 1 of each, then the corrections, each step in its own transaction.
        for step in range(3):
            for history in histories:
                if step < len(history):
                    with box.transaction() as tx:
                        box.add(tx, history[step])
        with pytest.raises(RuntimeError), box.transaction() as tx:
            box.add(tx, rolled_back)
            raise RuntimeError("registration abandoned")
    expected = sum(len(h) for h in histories)

    report = Relay(bus_store_settings, target, batch_size=7, poll_interval=0.05).run(until_empty=True)

    assert (report.published, report.backlog) == (expected, 0)
    assert _unsent(target) == 0
    found = on_topics(bus_store_settings)
    assert len(found) == expected
    assert str(rolled_back.event_id) not in {event_id for _, event_id in found}
    by_entry: dict[str, list[str]] = defaultdict(list)
    for key, event_id in found:
        by_entry[key].append(event_id)
    assert by_entry == {h[0].entry.key: [str(e.event_id) for e in h] for h in histories}


def test_a_row_published_twice_is_applied_once_downstream(bus_settings: Settings, tmp_path: Path) -> None:
    target = str(tmp_path / "office.sqlite3")
    events = [e for h in _entries_with_history(40, corrected=0) for e in h]
    with Outbox.open(target) as box, box.transaction() as tx:
        for event in events:
            box.add(tx, event)
    Relay(bus_settings, target, batch_size=10).run(until_empty=True)
    # As if the relay had been killed after the broker acknowledged half of them, before it marked them sent.
    with sqlite3.connect(target) as connection:
        connection.execute("UPDATE civreg_outbox SET sent_at = NULL WHERE id <= 20")
    assert Relay(bus_settings, target, batch_size=10).run(until_empty=True).published == 20
    assert len(on_topics(bus_settings)) == 60

    totals = run_department(bus_settings, "suppression", until_caught_up=True, handle_signals=False)

    with sqlite3.connect(bus_settings.department_database("suppression")) as store:
        outcomes = store.execute("SELECT COUNT(*), COUNT(DISTINCT event_id) FROM civreg_event_outcomes").fetchone()
    assert outcomes == (40, 40)
    assert totals.duplicates == 20


def test_with_the_broker_down_nothing_is_marked_sent_and_the_relay_retries_then_catches_up(
    bus_settings: Settings, tmp_path: Path
) -> None:
    target = str(tmp_path / "office.sqlite3")
    events = [e for h in _entries_with_history(5, corrected=0) for e in h]
    with Outbox.open(target) as box, box.transaction() as tx:
        for event in events:
            box.add(tx, event)
    dead = f"127.0.0.1:{free_port()}"  # a port nothing listens on
    down = bus_settings.model_copy(update={"bootstrap_servers": dead})
    failed_before = _failed_deliveries()

    def publisher(on_delivery: Any) -> Publisher:
        return Publisher(down, on_delivery=on_delivery, config_overrides={"message.timeout.ms": 1500})

    metrics = RelayMetrics(CollectorRegistry())
    relay = Relay(down, target, flush_timeout=0.5, max_backoff=0.5, metrics=metrics, publisher_factory=publisher)
    thread = threading.Thread(target=relay.run)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while relay.report.retries < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert relay.report.retries >= 2
        assert not relay.readiness().ok and relay.readiness().detail == "broker not acknowledging"
        assert metrics.registry.get_sample_value("civreg_relay_retries_total", {"reason": "broker"}) >= 2
        assert metrics.registry.get_sample_value("civreg_relay_ready") == 0
        assert _failed_deliveries() > failed_before  # what the CivregPublishFailures alert reads
        assert _unsent(target) == len(events)
    finally:
        relay.stop()
        thread.join(timeout=60)
    assert not thread.is_alive()
    assert relay.report.published == 0 and _unsent(target) == len(events)

    assert Relay(bus_settings, target).run(until_empty=True).published == len(events)
    assert sorted(e for _, e in on_topics(bus_settings)) == sorted(str(e.event_id) for e in events)


def _failed_deliveries() -> float:
    value = default_metrics().registry.get_sample_value(
        "civreg_published_events_total", {"event_type": "DeathRegistered", "outcome": "failed"}
    )
    return value or 0.0


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read().decode()


def test_the_relay_process_serves_its_metrics_and_stops_cleanly_on_sigterm(
    bus_settings: Settings, tmp_path: Path
) -> None:
    events = [e for h in _entries_with_history(12, corrected=0) for e in h]
    file = tmp_path / "events.jsonl"
    write_event_file(file, events)
    target = str(tmp_path / "office.sqlite3")
    env = {**settings_env(bus_settings), "CIVREG_OUTBOX": target}
    added = subprocess.run([*CIVREG, "outbox", "add", str(file)], env=env, cwd=REPO, capture_output=True, check=False)
    assert added.returncode == 0, added.stderr.decode()
    assert b"12 event(s) added" in added.stdout

    port = free_port()
    relay = subprocess.Popen(
        [*CIVREG, "relay", "--metrics-port", str(port), "--poll-interval", "0.1"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while _unsent(target) and time.monotonic() < deadline and relay.poll() is None:
            time.sleep(0.2)
        assert _unsent(target) == 0
        ready = (0, "")
        while time.monotonic() < deadline and ready[0] != 200:
            try:
                ready = _get(f"http://127.0.0.1:{port}/readyz")
            except OSError:
                time.sleep(0.2)
        assert ready == (200, "ready\n")
        assert _get(f"http://127.0.0.1:{port}/healthz")[0] == 200
        status, metrics = _get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        for line in (
            "civreg_relay_published_rows_total 12.0",
            "civreg_relay_backlog_rows 0.0",
            "civreg_relay_ready 1.0",
            'civreg_published_events_total{event_type="DeathRegistered",outcome="delivered"} 12.0',
        ):
            assert line in metrics
        assert "civreg_relay_oldest_unsent_timestamp_seconds" in metrics
        exported = exported_names(metrics)
        queries = [q for path in DASHBOARDS for q in dashboard_queries(json.loads(path.read_text()))]
        wanted = relay_only(queries + rule_expressions()[0])
        assert wanted and wanted <= exported, f"relay series nobody exports: {sorted(wanted - exported)}"
    finally:
        relay.send_signal(signal.SIGTERM)
        stdout, stderr = relay.communicate(timeout=60)
    assert relay.returncode == 0, stderr.decode()[-2000:]
    assert b"12 row(s) published and marked sent" in stdout
    assert b'"event": "stopping"' in stderr
    assert b"Person1" not in stderr and b"Leeds General" not in stderr  # no personal data in logs

    status_line = subprocess.run([*CIVREG, "outbox", "status"], env=env, cwd=REPO, capture_output=True, check=False)
    assert b"0 row(s) unsent" in status_line.stdout


def test_relay_help_says_what_it_does_and_how_to_run_it() -> None:
    result = subprocess.run([*CIVREG, "relay", "--help"], cwd=REPO, capture_output=True, check=False, text=True)
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for phrase in ("--outbox", "--once", "--until-empty", "--poll-interval", "--batch-size", "--metrics-port"):
        assert phrase in text
    assert "mark each row sent once the broker has it" in text
    assert "SIGTERM" in text


def test_a_second_relay_waits_for_the_first(bus_settings: Settings, tmp_path: Path) -> None:
    target = str(tmp_path / "office.sqlite3")
    with Outbox.open(target) as holder:
        assert holder.try_lock_relay()
        with holder.transaction() as tx:
            holder.add(tx, make_death())
        relay = Relay(bus_settings, target, poll_interval=0.05)
        thread = threading.Thread(target=relay.run)
        thread.start()
        deadline = time.monotonic() + 30
        while relay.readiness().detail == "outbox database unreachable" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert relay.readiness().detail.startswith("waiting for the outbox lock")
        assert holder.backlog()[0] == 1
        relay.stop()
        thread.join(timeout=30)
    assert Relay(bus_settings, target).run(until_empty=True).published == 1
