"""The router against a real broker and registry: each department topic holds exactly its agreed events with
exactly its agreed fields, the ledger one disclosure per delivery, and a router killed with SIGKILL at random
moments and restarted neither loses nor duplicates anything."""

from __future__ import annotations

import io
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import fastavro
from confluent_kafka import Producer
from confluent_kafka.schema_registry import Schema

from civreg.codec_from_settings import open_codec, open_registry_resolver
from civreg.kafka_config import producer_config
from civreg.settings import Settings
from consumers.routing.disclosures import Disclosure, entry_disclosures, render_html
from consumers.routing.router import Router
from consumers.runtime.agreements import load_agreements
from deploy.local.faults.counting import group_members
from deploy.local.faults.reading import read_topic
from deploy.local.faults.tcp_proxy import TcpProxy
from producers.publisher import Publisher
from schemas.catalogue import event_schema
from schemas.codec import Codec, to_avro
from schemas.models import Event
from schemas.registry import subject_name
from schemas.topics import Register, department_topic, disclosure_topic, registration_topic
from tests.support.environment import settings_env
from tests.support.factories import all_event_examples, make_death
from tests.support.routing import route
from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]


def _leaves(record: dict[str, object], prefix: str = "") -> set[str]:
    found: set[str] = set()
    for key, value in record.items():
        if isinstance(value, dict):
            found |= _leaves(value, f"{prefix}{key}.")
        elif isinstance(value, tuple):
            found |= _leaves(value[1], f"{prefix}{key}.")
        elif value is not None:
            found.add(f"{prefix}{key}")
    return found


def _schema_leaves(schema: object, prefix: str = "") -> set[str]:
    """Every leaf field path a (parsed) writer schema can carry."""
    if isinstance(schema, list):
        return set().union(*(_schema_leaves(branch, prefix) for branch in schema))
    if isinstance(schema, dict) and schema.get("type") == "record":
        found: set[str] = set()
        for field in schema["fields"]:
            nested = _schema_leaves(field["type"], f"{prefix}{field['name']}.")
            found |= nested or {f"{prefix}{field['name']}"}
        return found
    return set()


def _publish(settings: Settings) -> list[Event]:
    events = all_event_examples()
    with Publisher(settings) as publisher:
        for event in events:
            publisher.publish(event)
    return events


def test_each_department_topic_holds_exactly_its_agreed_events_and_fields(registry_settings: Settings) -> None:
    events = _publish(registry_settings)
    report = route(registry_settings)
    codec = open_codec(registry_settings)
    agreements = load_agreements()
    for name, agreement in agreements.items():
        expected = {str(e.event_id) for e in events if agreement.withheld_because(e) is None}
        messages = read_topic(registry_settings, department_topic(name, registry_settings.topic_prefix))
        ids = []
        for _key, value, _headers in messages:
            assert value is not None
            writer = codec.resolver.writer_schema(int.from_bytes(value[1:5], "big"))
            record = fastavro.schemaless_reader(io.BytesIO(value[5:]), writer, None)
            assert isinstance(record, dict)
            event_type = writer["name"].split(".")[-1]
            # The writer schema the registry holds has exactly the agreed fields: nothing else is in the bytes.
            assert _leaves(record) <= agreement.fields_allowed[event_type], (name, event_type)
            assert _schema_leaves(writer) == agreement.fields_allowed[event_type], (name, event_type)
            ids.append(record["event_id"])
            assert "cause" not in str(writer)
        assert sorted(map(str, ids)) == sorted(expected), name
        assert report.routed[name] == len(expected)


def test_the_ledger_records_one_disclosure_per_delivery_and_the_report_lists_them(registry_settings: Settings) -> None:
    events = _publish(registry_settings)
    route(registry_settings)
    ledger = [
        Disclosure.from_json(v or b"")
        for _, v, _ in read_topic(registry_settings, disclosure_topic(registry_settings.topic_prefix))
    ]
    agreements = load_agreements()
    expected = Counter(
        (str(e.event_id), name) for e in events for name, a in agreements.items() if a.withheld_because(e) is None
    )
    assert Counter((d.event_id, d.department) for d in ledger) == expected
    death = next(e for e in events if e.event_type == "DeathRegistered")
    report = entry_disclosures(registry_settings, death.entry.key)
    received = {name for name, a in agreements.items() if a.withheld_because(death) is None}
    assert {d.department for d in report if d.event_id == str(death.event_id)} == received
    for disclosure in report:
        assert set(disclosure.fields) <= agreements[disclosure.department].fields_allowed[disclosure.event_type]
    assert "shared with" in render_html(death.entry.key, report)


def test_a_router_killed_at_random_moments_neither_loses_nor_duplicates(registry_settings: Settings) -> None:
    events = [e for _ in range(15) for e in all_event_examples()]  # fresh ids each round
    with Publisher(registry_settings) as publisher:
        for event in events:
            publisher.publish(event)
    env = {**os.environ, **settings_env(registry_settings), "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "civreg", "route", "--until-caught-up", "--batch-size", "20"]
    rng = random.Random(11)
    for _ in range(6):
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(2.0, 6.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
    final = subprocess.run(command, env=env, check=False, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr[-3000:]
    agreements = load_agreements()
    codec = Codec(open_codec(registry_settings).resolver)
    ledger = Counter(
        (Disclosure.from_json(v or b"").event_id, Disclosure.from_json(v or b"").department)
        for _, v, _ in read_topic(registry_settings, disclosure_topic(registry_settings.topic_prefix))
    )
    for name, agreement in agreements.items():
        expected = Counter(str(e.event_id) for e in events if agreement.withheld_because(e) is None)
        delivered = Counter(
            str(codec.decode(v).event_id)
            for _, v, _ in read_topic(registry_settings, department_topic(name, registry_settings.topic_prefix))
        )
        assert delivered == expected, name
        assert Counter({i: n for (i, d), n in ledger.items() if d == name}) == expected, name


def test_caught_up_means_every_partition_of_the_log_from_the_committed_offsets(registry_settings: Settings) -> None:
    """A router that holds no partition yet (a restart, a rebalance) judges from the lanes' committed offsets
    against the registration topics' ends: at the end only when every lane has routed every partition."""
    _publish(registry_settings)
    fresh = Router(registry_settings)
    try:
        ends = fresh.log_ends()
        assert sum(high - low for low, high in ends.values()) == len(all_event_examples())
        assert not any(lane.caught_up(ends) for lane in fresh.lanes)  # nothing routed yet
    finally:
        fresh.close()
    route(registry_settings)
    restarted = Router(registry_settings)
    try:
        assert all(lane.caught_up(restarted.log_ends()) for lane in restarted.lanes)
        with Publisher(registry_settings) as publisher:
            publisher.publish(all_event_examples()[0])  # a birth: at least one lane has it still to route
        ends = restarted.log_ends()
        births = registration_topic(Register.BIRTH, registry_settings.topic_prefix)
        behind = [lane.department for lane in restarted.lanes if not lane.caught_up(ends)]
        assert behind == [lane.department for lane in restarted.lanes if births in lane.topics]
        assert behind  # some agreement covers births
        # The metrics listener asks one lane's lag per transaction (lane_lag), the same figure lag() gives for it.
        assert {lane.department: restarted.lane_lag(lane.department) for lane in restarted.lanes} == restarted.lag()
        assert restarted.lane_lag("no-such-department") is None
    finally:
        restarted.close()


def test_a_new_optional_field_in_the_contract_reaches_no_department_topic(registry_settings: Settings) -> None:
    """A register office on a newer contract (an optional field in the envelope and one in the death details,
    registered as a compatible version) publishes through the router: no department topic's schema or bytes carry
    either field, because no agreement names them; every department entitled to the death still receives it."""
    settings, prefix = registry_settings, registry_settings.topic_prefix
    topic = registration_topic(Register.DEATH, prefix)
    with Publisher(settings) as publisher:  # version 1 registered, with the subject's compatibility rule
        publisher.publish(make_death(entry_number=1))
    resolver = open_registry_resolver(settings)
    assert resolver is not None
    newer = json.loads(event_schema("DeathRegistered").schema_str)
    newer["fields"].append({"name": "source_system", "type": ["null", "string"], "default": None})
    details = next(field for field in newer["fields"] if field["name"] == "death")["type"]
    details["fields"].append({"name": "informant_relationship", "type": ["null", "string"], "default": None})
    subject = subject_name(topic, event_schema("DeathRegistered").full_name)
    newer_id = resolver.client.register_schema(subject, Schema(json.dumps(newer), "AVRO"))
    death = make_death(entry_number=2)
    record = to_avro(death)
    record["source_system"] = "NEWFIELD-SOURCE"
    record["death"]["informant_relationship"] = "NEWFIELD-INFORMANT"
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(newer, named_schemas={}), record)
    producer = Producer(producer_config(settings))
    producer.produce(topic, key=death.entry.key.encode(), value=b"\x00" + newer_id.to_bytes(4, "big") + body.getvalue())
    assert producer.flush(30) == 0

    report = route(settings)
    assert not report.dead_letters
    codec = open_codec(settings)
    agreements = load_agreements()
    receivers = {name for name, agreement in agreements.items() if agreement.withheld_because(death) is None}
    assert receivers
    for name in agreements:
        received = set()
        for _key, value, _headers in read_topic(settings, department_topic(name, prefix)):
            assert value is not None
            assert b"NEWFIELD" not in value, name
            writer = codec.resolver.writer_schema(int.from_bytes(value[1:5], "big"))
            assert "source_system" not in str(writer) and "informant_relationship" not in str(writer), name
            decoded = fastavro.schemaless_reader(io.BytesIO(value[5:]), writer, None)
            assert isinstance(decoded, dict)
            received.add(str(decoded["event_id"]))
        assert (str(death.event_id) in received) == (name in receivers), name


def test_a_registry_outage_longer_than_the_poll_interval_keeps_every_lane_in_its_group(
    registry_settings: Settings,
) -> None:
    """Every lane meets schema ids it has never seen while the registry is away for longer than
    max.poll.interval.ms: each waits it out paused in its group (same member, no dead letter, no exit), and once
    the registry is back each department topic holds each agreed event exactly once."""
    assert registry_settings.registry_url
    registry = urlsplit(registry_settings.registry_url)
    proxy = TcpProxy(registry.hostname or "127.0.0.1", registry.port or 80)
    proxy.start()
    settings = registry_settings.model_copy(
        update={
            "registry_url": registry._replace(netloc=f"127.0.0.1:{proxy.port}").geturl(),
            "session_timeout_ms": 6_000,
            "max_poll_interval_ms": 6_000,
        }
    )
    router = Router(settings, poll_timeout=0.1)
    groups = [lane.group for lane in router.lanes]
    failures: list[BaseException] = []

    def run() -> None:
        try:
            router.run()
        except BaseException as exc:  # the test reports it
            failures.append(exc)

    def members() -> dict[str, set[str]]:
        return {group: group_members(settings, group) for group in groups}

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        before = wait_for(lambda: (found := members()) and all(found.values()) and found, "every lane in its group")
        proxy.stop()  # no lane has met a schema id yet: each must ask the registry
        events = [e for _ in range(3) for e in all_event_examples()]
        with Publisher(registry_settings) as publisher:  # straight to the registry, not through the proxy
            for event in events:
                publisher.publish(event)
        wait_for(lambda: all(lane.registry_outage.attempts for lane in router.lanes), "every lane to wait")
        # Longer than max.poll.interval.ms with the registry away: a lane that stopped polling is evicted now.
        deadline = time.monotonic() + 2 * settings.max_poll_interval_ms / 1000
        while time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.2)
        assert thread.is_alive() and not failures, failures
        assert members() == before, "a lane left (or was evicted from) its group during the outage"
        assert not router.totals.routed and not router.totals.dead_letters

        proxy.start()
        agreements = load_agreements()
        expected = {
            name: Counter(str(e.event_id) for e in events if agreement.withheld_because(e) is None)
            for name, agreement in agreements.items()
        }
        wait_for(
            lambda: all(router.totals.routed[name] >= sum(want.values()) for name, want in expected.items()),
            "every agreed event routed once the registry is back",
        )
        assert members() == before, "a lane left (or was evicted from) its group"
        assert not any(lane.registry_outage.attempts for lane in router.lanes)
    finally:
        router.stop()
        thread.join(timeout=60)
        proxy.stop()
    assert not failures, failures
    assert not router.totals.dead_letters
    codec = Codec(open_codec(registry_settings).resolver)
    for name, want in expected.items():
        topic = department_topic(name, registry_settings.topic_prefix)
        assert Counter(str(codec.decode(v).event_id) for _, v, _ in read_topic(registry_settings, topic)) == want, name
