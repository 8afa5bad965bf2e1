"""The publisher and file publishing on the real broker, read back with a plain confluent_kafka Consumer."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

from civreg.cluster import watermarks
from civreg.kafka_config import admin_config, consumer_config
from civreg.settings import Settings
from producers.event_files import EventFileReader, event_to_json_line, write_event_file
from producers.file_publishing import ExitCode, publish_file
from producers.publisher import CONTENT_TYPE, DeliveryReport, Publisher, PublishError
from schemas.codec import Codec
from schemas.models import Address, Event
from schemas.topics import Register, registration_topic, registration_topics
from tests.support.environment import settings_env
from tests.support.factories import all_event_examples, make_correction, make_death, make_person, make_void

pytestmark = pytest.mark.kafka

DATA = Path(__file__).resolve().parents[1] / "data"
CODEC = Codec()


def _read_all(settings: Settings, expected: int, *, settle: float = 0.0) -> list[Any]:
    """Every message on the registration topics, from the beginning; waits for ``expected`` of them, then
    ``settle`` more seconds to catch any extra."""
    consumer = Consumer(consumer_config(settings, f"reader-{uuid.uuid4()}"))
    consumer.subscribe(list(registration_topics(settings.topic_prefix).values()))
    messages: list[Any] = []
    try:
        for _ in range(60):
            messages += [m for m in consumer.consume(100, 1.0) if m.error() is None]
            if len(messages) >= expected:
                break
        if settle:
            messages += [m for m in consumer.consume(100, settle) if m.error() is None]
    finally:
        consumer.close()
    return messages


def _message_count(settings: Settings) -> int:
    """Messages ever written to the registration topics (high watermarks), without consuming."""
    consumer = Consumer(consumer_config(settings, f"counter-{uuid.uuid4()}"))
    try:
        total = 0
        for topic in registration_topics(settings.topic_prefix).values():
            partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
            for partition in partitions:
                total += watermarks(consumer, topic, partition)[1]
        return total
    finally:
        consumer.close()


def _histories() -> list[Event]:
    """Many entries, each with a registration, a correction and a void, interleaved across entries."""
    deaths = [make_death(entry_number=n, district="Bradford") for n in range(1, 21)]
    corrections = [make_correction(of=d, place_of_death=f"Ward {n}") for n, d in enumerate(deaths)]
    voids = [make_void(of=c) for c in corrections]
    return [*deaths, *corrections, *voids]


def test_events_of_every_type_arrive_keyed_by_entry_with_safe_headers(bus_settings: Settings) -> None:
    events = all_event_examples() + _histories()
    reports: list[DeliveryReport] = []
    with Publisher(bus_settings, on_delivery=reports.append) as publisher:
        for event in events:
            publisher.publish(event)
    assert (publisher.produced, publisher.delivered, publisher.failed, publisher.pending) == (
        len(events),
        len(events),
        0,
        0,
    )
    assert all(report.delivered for report in reports)

    messages = _read_all(bus_settings, len(events), settle=1.0)
    assert len(messages) == len(events)
    by_id = {str(event.event_id): event for event in events}
    for message in messages:
        decoded = CODEC.decode(message.value())
        assert decoded == by_id[str(decoded.event_id)]
        assert message.topic() == registration_topic(decoded.family, bus_settings.topic_prefix)
        assert message.key() == decoded.entry.key.encode()
        assert dict(message.headers()) == {
            "event_type": decoded.event_type.encode(),
            "event_id": str(decoded.event_id).encode(),
            "content-type": CONTENT_TYPE.encode(),
        }
    assert {type(CODEC.decode(m.value())).__name__ for m in messages} == {
        "BirthRegistered",
        "DeathRegistered",
        "MarriageRegistered",
        "CivilPartnershipRegistered",
        "RegistrationCorrected",
        "RegistrationVoided",
    }
    positions = {r.event_id: (r.topic, r.partition, r.offset) for r in reports}
    assert {
        str(CODEC.decode(m.value()).event_id): (m.topic(), m.partition(), m.offset()) for m in messages
    } == positions


def test_every_event_of_one_entry_lands_on_one_partition_in_publication_order(bus_settings: Settings) -> None:
    events = _histories()
    with Publisher(bus_settings) as publisher:
        for event in events:
            publisher.publish(event)
    messages = _read_all(bus_settings, len(events))
    by_entry: dict[bytes, list[Any]] = defaultdict(list)
    for message in messages:
        by_entry[message.key()].append(message)
    assert len(by_entry) == 20
    assert len({m.partition() for m in messages}) > 1  # the entries are spread, yet each one stays together
    for entry_messages in by_entry.values():
        assert len({m.partition() for m in entry_messages}) == 1
        in_offset_order = sorted(entry_messages, key=lambda m: m.offset())
        assert [CODEC.decode(m.value()).version for m in in_offset_order] == [1, 2, 3]


def test_a_full_local_queue_is_back_pressure_not_failure(bus_settings: Settings) -> None:
    events = [make_death(entry_number=n) for n in range(1, 301)]
    with Publisher(bus_settings, config_overrides={"queue.buffering.max.messages": 5}) as publisher:
        for event in events:
            publisher.publish(event)
    assert (publisher.delivered, publisher.failed) == (300, 0)
    assert _message_count(bus_settings) == 300


def test_a_failed_delivery_is_raised_by_flush_naming_the_event_not_the_person(kafka_settings: Settings) -> None:
    prefix = f"t{uuid.uuid4().hex[:12]}"
    settings = kafka_settings.model_copy(update={"topic_prefix": prefix})
    tiny = NewTopic(registration_topic(Register.DEATH, prefix), 1, 1, config={"max.message.bytes": "100"})
    admin = AdminClient(admin_config(settings))
    for future in admin.create_topics([tiny]).values():
        future.result(30)
    death = make_death()
    reports: list[DeliveryReport] = []
    publisher = Publisher(settings, on_delivery=reports.append)
    publisher.publish(death)
    with pytest.raises(PublishError) as raised:
        publisher.flush(30)
    error = raised.value
    assert (error.failed, publisher.failed, publisher.delivered) == (1, 1, 0)
    assert error.failures[0].event_id == str(death.event_id)
    assert str(death.event_id) in str(error)
    assert "MSG_SIZE_TOO_LARGE" in str(error)
    for secret in ("Margaret", "Morgan", "AB123456C", "1941"):
        assert secret not in str(error)
    assert reports == list(error.failures)
    publisher.flush(5)  # failures are raised once


def test_an_event_kafka_refuses_to_queue_is_raised_at_once(bus_settings: Settings) -> None:
    long = "x" * 200
    big = make_death(deceased=make_person(address=Address(lines=[long] * 5, town=long, postcode="LS1 4AP")))
    reports: list[DeliveryReport] = []
    publisher = Publisher(bus_settings, on_delivery=reports.append, config_overrides={"message.max.bytes": 1000})
    with pytest.raises(PublishError, match=str(big.event_id)):
        publisher.publish(big)
    assert (publisher.produced, publisher.failed, publisher.pending) == (0, 1, 0)
    assert [r.delivered for r in reports] == [False]
    publisher.publish(make_death(entry_number=2))
    publisher.flush(30)  # the refusal was raised already: flush reports only what it waited for
    assert publisher.delivered == 1


def test_a_file_of_every_type_is_published_in_order(bus_settings: Settings, tmp_path: Path) -> None:
    events = all_event_examples()
    path = tmp_path / "events.csv"
    write_event_file(path, events)
    result = publish_file(path, bus_settings)
    assert result.exit_code is ExitCode.OK
    assert (result.delivered, result.failed, result.problem) == (len(events), 0, None)
    assert dict(result.delivered_by_type) == dict(result.report.valid_by_type)
    decoded = [CODEC.decode(m.value()) for m in _read_all(bus_settings, len(events), settle=1.0)]
    assert sorted(decoded, key=lambda e: str(e.event_id)) == sorted(events, key=lambda e: str(e.event_id))


def test_an_invalid_file_publishes_nothing(bus_settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    bad = event_to_json_line(make_death(entry_number=3)).replace('"AB123456C"', '"QQ123456C"')
    path.write_text("\n".join([event_to_json_line(make_death()), bad, event_to_json_line(make_death(entry_number=2))]))
    result = publish_file(path, bus_settings)
    assert (result.exit_code, result.published, result.report.invalid) == (ExitCode.INVALID, False, 1)
    assert _message_count(bus_settings) == 0


def test_allow_partial_publishes_the_valid_rows_only(bus_settings: Settings, tmp_path: Path) -> None:
    good = [make_death(), make_death(entry_number=2)]
    path = tmp_path / "events.jsonl"
    bad = event_to_json_line(make_death(entry_number=3)).replace('"AB123456C"', '"QQ123456C"')
    path.write_text("\n".join([event_to_json_line(good[0]), bad, event_to_json_line(good[1])]) + "\n")
    result = publish_file(path, bus_settings, allow_partial=True)
    assert (result.exit_code, result.delivered) == (ExitCode.PARTIAL, 2), (result.problem, result.failures)
    assert [(e.line, e.field) for e in result.report.errors] == [(2, "death.deceased.identifiers.nino")]
    decoded = [CODEC.decode(m.value()) for m in _read_all(bus_settings, 2, settle=1.0)]
    assert sorted(decoded, key=lambda e: e.entry.entry_number) == good


def test_missing_topics_stop_the_file_before_anything_is_published(kafka_settings: Settings) -> None:
    settings = kafka_settings.model_copy(update={"topic_prefix": f"t{uuid.uuid4().hex[:12]}"})
    result = publish_file(DATA / "deaths.csv", settings, connect_timeout=2)
    assert result.exit_code is ExitCode.NOT_PUBLISHED
    assert result.problem is not None and "do not exist; nothing was published" in result.problem
    assert not result.published


def _civreg(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = settings_env(settings) | {"COLUMNS": "200"}
    return subprocess.run(
        [str(Path(sys.executable).with_name("civreg")), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_the_command_publishes_a_valid_file_and_refuses_an_invalid_one(bus_settings: Settings, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    line = event_to_json_line(make_death(entry_number=5)).replace('"LS1 3AD"', '"QX1 1ZZ"')
    bad.write_text(line + "\n")
    refused = _civreg(bus_settings, "publish", str(bad))
    assert refused.returncode == ExitCode.INVALID, refused.stderr
    assert "death.deceased.address.postcode" in refused.stdout
    assert "QX1 1ZZ" not in refused.stdout + refused.stderr
    assert _message_count(bus_settings) == 0

    done = _civreg(bus_settings, "publish", str(DATA / "deaths.csv"))
    assert done.returncode == ExitCode.OK, done.stdout + done.stderr
    assert "All 4 event(s) delivered." in done.stdout
    expected = [row.event for row in EventFileReader(DATA / "deaths.csv")]
    decoded = [CODEC.decode(m.value()) for m in _read_all(bus_settings, 4, settle=1.0)]
    assert sorted(decoded, key=lambda e: str(e.event_id)) == expected
