"""The suppression consumer on the real broker: effects apply once, crashes lose and double nothing, poison is
dead-lettered with its reasons and the consumer goes on."""

from __future__ import annotations

import io
import subprocess
import sys
import uuid
from collections.abc import Iterable
from pathlib import Path

import fastavro
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from civreg.kafka_config import consumer_config, producer_config
from civreg.settings import Settings
from consumers.operations.running import open_store, run_department
from consumers.runtime import BatchReport
from consumers.suppression import Action, SuppressionList, decide
from consumers.suppression.mailing import Recipient
from producers.publisher import Publisher
from schemas.catalogue import event_schema
from schemas.codec import to_avro
from schemas.models import Event
from schemas.topics import Register, dead_letter_topic, registration_topic
from tests.support.environment import REPO, settings_env
from tests.support.factories import make_address, make_death, make_person, make_void

pytestmark = pytest.mark.kafka


def publish(settings: Settings, events: Iterable[Event]) -> None:
    with Publisher(settings) as publisher:
        for event in events:
            publisher.publish(event)


def consume(settings: Settings) -> BatchReport:
    return run_department(settings, "suppression", until_caught_up=True, handle_signals=False)


def action_for(settings: Settings, who: Recipient) -> Action:
    store = open_store(settings, "suppression")
    try:
        return decide(SuppressionList(store.read()), who).action
    finally:
        store.close()


def table_count(settings: Settings, sql: str) -> int:
    store = open_store(settings, "suppression")
    try:
        row = store.read().one(sql)
        assert row is not None
        return int(row[0])
    finally:
        store.close()


MARGARET = Recipient("r1", "Margaret", "Morgan", make_person().date_of_birth, "LS1 4AP")


def test_a_death_suppresses_letters_and_its_void_restores_them(bus_settings: Settings) -> None:
    death = make_death(deceased=make_person(address=make_address(postcode="LS1 4AP")))
    publish(bus_settings, [death])
    consume(bus_settings)
    assert action_for(bus_settings, MARGARET) is Action.SUPPRESS

    publish(bus_settings, [make_void(of=death)])
    report = consume(bus_settings)
    assert report.outcomes == {("RegistrationVoided", "applied"): 1}
    assert action_for(bus_settings, MARGARET) is Action.SEND


def test_the_same_event_delivered_twice_applies_once(bus_settings: Settings) -> None:
    death = make_death()
    publish(bus_settings, [death, death])
    report = consume(bus_settings)
    assert report.messages == 2
    assert report.duplicates == 1
    assert report.outcomes == {("DeathRegistered", "applied"): 1}
    assert table_count(bus_settings, "SELECT COUNT(*) FROM do_not_contact_history") == 1


def _committed_total(settings: Settings) -> int:
    consumer = Consumer(consumer_config(settings, f"{settings.topic_prefix}.department.suppression"))
    try:
        topic = registration_topic(Register.DEATH, settings.topic_prefix)
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = [TopicPartition(topic, p) for p in metadata.topics[topic].partitions]
        return sum(max(tp.offset, 0) for tp in consumer.committed(partitions, timeout=10))
    finally:
        consumer.close()


def test_sigkill_between_database_commit_and_offset_commit_loses_and_doubles_nothing(bus_settings: Settings) -> None:
    deaths = [make_death(entry_number=n, deceased=make_person(given_names=f"Person{n}")) for n in range(1, 61)]
    publish(bus_settings, deaths)

    crashed = subprocess.run(
        [sys.executable, "-m", "tests.support.crashing_consumer", "2", "10"],
        check=False,
        env=settings_env(bus_settings),
        cwd=REPO,
        capture_output=True,
        timeout=120,
    )
    assert crashed.returncode == -9, crashed.stderr.decode()[-2000:]
    applied_before = table_count(bus_settings, "SELECT COUNT(*) FROM civreg_event_outcomes")
    stored_offsets = table_count(bus_settings, "SELECT COALESCE(SUM(next_offset), 0) FROM civreg_offsets")
    assert 0 < applied_before < 60
    assert stored_offsets == applied_before
    # The crash fell after the database commit and before the Kafka commit of the last batch.
    assert _committed_total(bus_settings) < stored_offsets

    report = consume(bus_settings)
    assert report.duplicates == 0, "the restarted consumer must resume at the offsets stored with the data"
    assert report.messages == 60 - applied_before
    assert table_count(bus_settings, "SELECT COUNT(*) FROM civreg_event_outcomes") == 60
    assert table_count(bus_settings, "SELECT COUNT(*) FROM do_not_contact WHERE status = 'suppressed'") == 60
    assert table_count(bus_settings, "SELECT COUNT(*) FROM do_not_contact_history") == 60


def _invalid_nino_message() -> bytes:
    """Valid Avro under the DeathRegistered schema, but breaking a contract rule (an unissued NINO prefix)."""
    record = to_avro(make_death(entry_number=7))
    record["death"]["deceased"]["identifiers"]["nino"] = "ZZ123456A"
    body = io.BytesIO()
    fastavro.schemaless_writer(body, event_schema("DeathRegistered").parsed, record)
    return b"\x00" + (2).to_bytes(4, "big") + body.getvalue()


def _read_all(settings: Settings, topic: str, expected: int) -> list[object]:
    consumer = Consumer(consumer_config(settings, f"reader-{uuid.uuid4()}"))
    consumer.subscribe([topic])
    messages: list[object] = []
    try:
        for _ in range(60):
            for message in consumer.consume(10, 1.0):
                if message.error() is None:
                    messages.append(message)
            if len(messages) >= expected:
                break
    finally:
        consumer.close()
    return messages


def test_poison_messages_go_to_the_dead_letter_topic_with_reasons_and_the_consumer_goes_on(
    bus_settings: Settings,
) -> None:
    topic = registration_topic(Register.DEATH, bus_settings.topic_prefix)
    first, second = make_death(entry_number=1), make_death(entry_number=2)
    publish(bus_settings, [first])
    producer = Producer(producer_config(bus_settings))
    producer.produce(topic, key=b"garbage", value=b"\x07not avro at all")
    producer.produce(topic, key=b"rule", value=_invalid_nino_message())
    producer.flush(10)
    publish(bus_settings, [second])

    report = consume(bus_settings)
    assert report.outcomes[("DeathRegistered", "applied")] == 2
    assert report.dead_letters == 2

    letters = _read_all(bus_settings, dead_letter_topic("suppression", bus_settings.topic_prefix), 2)
    by_key = {m.key(): m for m in letters}  # type: ignore[attr-defined]
    assert set(by_key) == {b"garbage", b"rule"}
    garbage = dict(by_key[b"garbage"].headers())  # type: ignore[attr-defined]
    assert garbage["civreg.reason"] == b"bad-magic-byte"
    assert garbage["civreg.error.class"] == b"PoisonMessage"
    assert garbage["civreg.original.topic"] == topic.encode()
    assert int(garbage["civreg.original.offset"]) >= 0
    assert "civreg.dead-lettered-at" in garbage
    assert by_key[b"garbage"].value() == b"\x07not avro at all"  # type: ignore[attr-defined]
    rule = dict(by_key[b"rule"].headers())  # type: ignore[attr-defined]
    assert rule["civreg.reason"] == b"contract-violation"
    assert b"nino" in rule["civreg.error.message"]
    assert b"ZZ123456A" not in rule["civreg.error.message"]
    assert table_count(bus_settings, "SELECT COUNT(*) FROM civreg_undecodable_messages") == 2


def test_the_database_lives_where_settings_say(bus_settings: Settings) -> None:
    publish(bus_settings, [make_death()])
    consume(bus_settings)
    assert Path(bus_settings.department_database("suppression")).exists()
