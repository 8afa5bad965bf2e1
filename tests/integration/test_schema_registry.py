"""The schema registry for real (Apicurio, started once per session) with the real broker: evolution across versions,
breaking changes refused, standard bytes, and what happens when the registry goes away."""

from __future__ import annotations

import io
import json
import queue
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import avro.io
import avro.schema
import fastavro
import pytest
from confluent_kafka import Consumer, Message, Producer

from civreg.codec_from_settings import open_codec, open_registry_resolver
from civreg.kafka_config import consumer_config, producer_config
from civreg.settings import Settings
from consumers.departments import department_named
from consumers.operations.acknowledgements import trace_event
from consumers.operations.running import open_store, run_department
from consumers.runtime import BatchReport, DepartmentConsumer
from deploy.local.bench.codec import run_codec_suite
from deploy.local.bench.harness import BenchOptions
from deploy.local.jvm import free_port
from deploy.local.registry import LocalRegistry
from deploy.schema_evolution import check_against_registry, register_schemas, working_tree_schemas
from producers.publisher import Publisher
from schemas.acknowledgements import ActionTaken, action_taken_schema
from schemas.catalogue import event_schema
from schemas.codec import to_avro
from schemas.compatibility import AvroSchema
from schemas.models import EVENT_MODELS, Event
from schemas.registry import (
    RegistrySchemaResolver,
    RegistryUnavailable,
    SchemaNotRegistered,
    load_client_library,
    subject_name,
)
from schemas.topics import Register, acknowledgement_topic, dead_letter_topic, registration_topic, registration_topics
from tests.support.environment import REPO, settings_env
from tests.support.factories import all_event_examples, make_death

load_client_library()  # before confluent-kafka's registry modules, so their dependency's import warning stays quiet
from confluent_kafka.schema_registry import Schema  # noqa: E402
from confluent_kafka.schema_registry.avro import AvroDeserializer  # noqa: E402
from confluent_kafka.schema_registry.error import SchemaRegistryError  # noqa: E402
from confluent_kafka.serialization import MessageField, SerializationContext  # noqa: E402

pytestmark = [pytest.mark.kafka, pytest.mark.registry]

DEATH = "DeathRegistered"


# --- helpers ----------------------------------------------------------------------------------------------------


def resolver_for(settings: Settings) -> RegistrySchemaResolver:
    resolver = open_registry_resolver(settings)
    assert resolver is not None
    return resolver


def deaths_topic(settings: Settings) -> str:
    return registration_topic(Register.DEATH, settings.topic_prefix)


def death_subject(settings: Settings) -> str:
    return subject_name(deaths_topic(settings), event_schema(DEATH).full_name)


def death_v1() -> dict[str, Any]:
    return json.loads(event_schema(DEATH).schema_str)


def death_v2() -> dict[str, Any]:
    """Version 2, built from version 1's JSON: the death details gain an optional field with a default."""
    v2 = death_v1()
    details = next(field for field in v2["fields"] if field["name"] == "death")["type"]
    details["fields"].append({"name": "informant_relationship", "type": ["null", "string"], "default": None})
    return v2


def frame(schema_id: int, schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(schema, named_schemas={}), record)
    return b"\x00" + schema_id.to_bytes(4, "big") + body.getvalue()


def produce_raw(settings: Settings, topic: str, messages: Iterable[tuple[bytes, bytes]]) -> None:
    producer = Producer(producer_config(settings))
    for key, value in messages:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0


def publish(settings: Settings, events: Iterable[Event]) -> None:
    with Publisher(settings) as publisher:
        for event in events:
            publisher.publish(event)


def read_all(settings: Settings, topics: list[str], expected: int) -> list[Message]:
    consumer = Consumer(consumer_config(settings, f"reader-{uuid.uuid4()}"))
    consumer.subscribe(topics)
    messages: list[Message] = []
    try:
        for _ in range(60):
            messages.extend(m for m in consumer.consume(50, 1.0) if m.error() is None)
            if len(messages) >= expected:
                break
    finally:
        consumer.close()
    assert len(messages) == expected
    return messages


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "civreg"), *args],
        env={**settings_env(settings), "COLUMNS": "250"},
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        timeout=120,
    )


# --- evolution ----------------------------------------------------------------------------------------------------


def test_version_2_with_an_optional_field_passes_the_check_and_versions_1_and_2_read_each_other(
    registry_settings: Settings,
) -> None:
    settings = registry_settings
    written_v1 = [make_death(entry_number=n) for n in (1, 2)]
    publish(settings, written_v1)  # the project's producer: version 1, registered on first use
    resolver = resolver_for(settings)
    subject, topic = death_subject(settings), deaths_topic(settings)

    proposed = {**working_tree_schemas(), DEATH: AvroSchema(death_v2())}
    report = check_against_registry(resolver, settings.topic_prefix, current=proposed)
    assert report.ok, report.problems()
    assert next(c for c in report.checks if c.subject.subject == subject).compared_with == ("version 1",)

    v1_id = resolver.subject_schema_id(DEATH, topic)
    v2_id = resolver.client.register_schema(subject, Schema(json.dumps(death_v2()), "AVRO"))
    assert v2_id != v1_id
    assert resolver.client.get_versions(subject) == [1, 2]

    # A register office on version 2 writes events carrying the new field.
    written_v2 = [make_death(entry_number=n) for n in (3, 4)]
    records_v2 = []
    for event in written_v2:
        record = to_avro(event)
        record["death"]["informant_relationship"] = "Daughter"
        records_v2.append(record)
    produce_raw(
        settings,
        topic,
        [(e.entry.key.encode(), frame(v2_id, death_v2(), r)) for e, r in zip(written_v2, records_v2, strict=True)],
    )

    # A department on version 1 (this checkout's reader schema) applies every event, old and new.
    applied = run_department(settings, "suppression", until_caught_up=True, handle_signals=False)
    assert applied.outcomes == {(DEATH, "applied"): 4}
    assert applied.dead_letters == 0

    # A department on version 2 reads the version-1 events too; the new field takes its default.
    reader_v2 = fastavro.parse_schema(death_v2(), named_schemas={})
    seen: dict[str, Any] = {}
    for message in read_all(settings, [topic], 4):
        data = message.value()
        assert data is not None
        writer = resolver.writer_schema(int.from_bytes(data[1:5], "big"))
        record = fastavro.schemaless_reader(io.BytesIO(data[5:]), writer, reader_v2)
        assert isinstance(record, dict)
        seen[str(record["event_id"])] = record["death"]["informant_relationship"]
    assert seen == {
        **{str(e.event_id): None for e in written_v1},
        **{str(e.event_id): "Daughter" for e in written_v2},
    }


@pytest.mark.parametrize("change", ["field-removed", "type-changed"])
def test_a_breaking_change_is_refused_by_the_registry_and_by_the_check(
    registry_settings: Settings, change: str
) -> None:
    settings = registry_settings
    resolver = resolver_for(settings)
    subject = death_subject(settings)
    resolver.subject_schema_id(DEATH, deaths_topic(settings))  # version 1 registered, FULL_TRANSITIVE set from policy
    assert resolver.client.get_compatibility(subject) == "FULL_TRANSITIVE"

    broken = death_v1()
    if change == "field-removed":
        broken["fields"] = [f for f in broken["fields"] if f["name"] != "register_office"]
        field, rule = "register_office", "field-missing-without-default"
    else:
        details = next(f for f in broken["fields"] if f["name"] == "death")["type"]
        next(f for f in details["fields"] if f["name"] == "date_of_death")["type"] = "string"
        field, rule = "death.date_of_death", "type-changed"

    with pytest.raises(SchemaRegistryError) as refused:
        resolver.client.register_schema(subject, Schema(json.dumps(broken), "AVRO"))
    assert refused.value.http_status_code == 409
    assert resolver.client.get_versions(subject) == [1]

    report = check_against_registry(
        resolver, settings.topic_prefix, current={**working_tree_schemas(), DEATH: AvroSchema(broken)}
    )
    assert not report.ok
    problems = report.problems()
    assert problems
    assert all(p.startswith(f"subject {subject}: FULL_TRANSITIVE broken") for p in problems)
    assert all(f"field '{field}'" in p and f"[{rule}]" in p for p in problems)


def test_cli_check_and_register_name_subject_field_and_rule_when_the_working_tree_breaks_the_registry(
    registry_settings: Settings,
) -> None:
    settings = registry_settings
    resolver = resolver_for(settings)
    subject = death_subject(settings)
    # What the registry already holds has a required field the working tree lacks: the working tree "removed" it.
    older = death_v1()
    older["fields"].append({"name": "legacy_reference", "type": "string"})
    resolver.client.set_compatibility(subject_name=subject, level="FULL_TRANSITIVE")
    resolver.client.register_schema(subject, Schema(json.dumps(older), "AVRO"))

    check = run_cli(settings, "schemas", "check")
    assert check.returncode == 1, check.stdout + check.stderr
    assert f"subject {subject}: FULL_TRANSITIVE broken (forward" in check.stderr
    assert "field 'legacy_reference'" in check.stderr
    assert "[field-missing-without-default]" in check.stderr

    register = run_cli(settings, "schemas", "register")
    assert register.returncode == 1, register.stdout + register.stderr
    assert f"the registry refused the schema for subject {subject}" in register.stderr
    assert "field 'legacy_reference'" in register.stderr
    assert resolver.client.get_versions(subject) == [1]
    others = registry_settings.topic_prefix + ".registrations.births-uk.gov.civreg.BirthRegistered"
    assert resolver.client.get_versions(others) == [1]  # the rest of the contract was published


# --- production set-up: auto-registration off --------------------------------------------------------------------


def test_without_auto_registration_producers_need_civreg_schemas_register(registry_settings: Settings) -> None:
    settings = registry_settings.model_copy(update={"registry_auto_register": False})
    with pytest.raises(SchemaNotRegistered, match=r"not registered under subject .*civreg schemas register"):
        open_codec(settings, publishing=True)

    report = register_schemas(resolver_for(settings), settings.topic_prefix)
    assert report.ok
    assert {item.status for item in report.subjects} == {"registered"}
    assert {resolver_for(settings).client.get_compatibility(i.subject.subject) for i in report.subjects} == {
        "FULL_TRANSITIVE"
    }
    again = register_schemas(resolver_for(settings), settings.topic_prefix)
    assert {item.status for item in again.subjects} == {"unchanged"}

    codec = open_codec(settings, publishing=True)
    event = make_death()
    registered = next(i for i in report.subjects if i.subject.subject == death_subject(settings))
    assert int.from_bytes(codec.encode(event, deaths_topic(settings))[1:5], "big") == registered.schema_id


def test_acknowledgements_are_registered_and_decode_with_the_registrys_schema(registry_settings: Settings) -> None:
    """Outside readers (auditors, other departments' tools) decode ActionTaken from the registry, like any event."""
    settings = registry_settings.model_copy(update={"registry_auto_register": False})
    report = register_schemas(resolver_for(settings), settings.topic_prefix)
    ack_topic = acknowledgement_topic(settings.topic_prefix)
    ack_subject = subject_name(ack_topic, action_taken_schema().full_name)
    [registered] = [item for item in report.subjects if item.subject.subject == ack_subject]
    assert registered.status == "registered" and registered.schema_id is not None

    death = make_death()
    publish(settings, [death])
    run_department(settings, "suppression", until_caught_up=True, handle_signals=False)
    [message] = read_all(settings, [ack_topic], 1)
    data = message.value()
    assert data is not None and data[0] == 0
    schema_id = int.from_bytes(data[1:5], "big")
    client = resolver_for(settings).client
    assert schema_id == registered.schema_id == client.get_latest_version(ack_subject).schema_id

    schema = avro.schema.parse(client.get_schema(schema_id).schema_str)
    record = avro.io.DatumReader(schema).read(avro.io.BinaryDecoder(io.BytesIO(data[5:])))
    ack = ActionTaken.model_validate(record)
    assert (ack.event_id, ack.department, ack.outcome) == (death.event_id, "suppression", "applied")
    stock = AvroDeserializer(client)(data, SerializationContext(ack_topic, MessageField.VALUE))
    assert ActionTaken.model_validate(stock) == ack
    traced = trace_event(settings, str(death.event_id), timeout=30)
    assert traced.departments["suppression"].latest == ack


# --- standard bytes -----------------------------------------------------------------------------------------------


def test_messages_decode_with_apache_avro_and_confluent_deserializer_given_the_registry(
    registry_settings: Settings,
) -> None:
    settings = registry_settings
    events = all_event_examples()
    publish(settings, events)
    by_id = {str(event.event_id): event for event in events}
    resolver = resolver_for(settings)
    client = resolver.client
    stock = AvroDeserializer(client)
    messages = read_all(settings, list(registration_topics(settings.topic_prefix).values()), len(events))
    for message in messages:
        data, topic = message.value(), message.topic()
        assert data is not None and topic is not None
        event_type = dict(message.headers() or [])["event_type"].decode()
        schema_id = int.from_bytes(data[1:5], "big")
        assert data[0] == 0
        latest = client.get_latest_version(subject_name(topic, event_schema(event_type).full_name))
        assert schema_id == latest.schema_id  # the id in the message is the registry's, for its subject

        registered = avro.schema.parse(client.get_schema(schema_id).schema_str)
        apache = avro.io.DatumReader(registered).read(avro.io.BinaryDecoder(io.BytesIO(data[5:])))
        event = by_id[str(apache["event_id"])]
        assert EVENT_MODELS[event_type].model_validate(apache) == event

        confluent = stock(data, SerializationContext(topic, MessageField.VALUE))
        assert EVENT_MODELS[event_type].model_validate(confluent) == event


# --- failures -----------------------------------------------------------------------------------------------------


def test_a_registry_down_at_start_is_retried_then_reported_clearly(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/apis/ccompat/v7"
    settings = Settings(home=tmp_path, registry_url=dead, registry_wait_seconds=1.5, postgres_dsn=None)
    with pytest.raises(RegistryUnavailable) as caught:
        open_codec(settings, publishing=True)
    message = str(caught.value)
    assert message.startswith(f"gave up resolving schema ids at {dead} after 1.5s")
    assert "is unreachable" in message and "'civreg dev up' starts the local one" in message


@pytest.fixture
def private_registry(tmp_path: Path) -> Iterator[LocalRegistry]:
    """A registry of this test's own, so stopping it disturbs no other test."""
    settings = Settings(
        home=tmp_path / "registry-home",
        cache_dir=REPO / ".cache",
        local_registry_port=free_port(),
        local_registry_health_port=free_port(),
        postgres_dsn=None,
    )
    registry = LocalRegistry(settings)
    registry.start(timeout=180)
    try:
        yield registry
    finally:
        registry.stop()


def test_registry_stopped_mid_run_known_ids_keep_decoding_and_an_unknown_id_is_dead_lettered(
    bus_settings: Settings, private_registry: LocalRegistry
) -> None:
    settings = bus_settings.model_copy(update={"registry_url": private_registry.url})
    topic = deaths_topic(settings)
    publisher = Publisher(settings)  # every subject's id resolved now, with the registry up
    publisher.publish(make_death(entry_number=1))
    publisher.flush()

    codec = open_codec(settings)
    resolver = codec.resolver
    assert isinstance(resolver, RegistrySchemaResolver)
    unavailable = threading.Event()
    fetch = resolver.writer_schema

    def observed(schema_id: int) -> dict[str, Any]:  # watches the real resolver; changes nothing
        try:
            return fetch(schema_id)
        except RegistryUnavailable:
            unavailable.set()
            raise

    resolver.writer_schema = observed  # type: ignore[method-assign]
    store = open_store(settings, "suppression")
    consumer = DepartmentConsumer(department_named("suppression"), settings, store, codec=codec)
    batches: queue.Queue[BatchReport] = queue.Queue()
    consumer.on_batch_committed(batches.put)
    runner = threading.Thread(target=consumer.run, daemon=True)
    runner.start()
    try:
        assert batches.get(timeout=60).outcomes == {(DEATH, "applied"): 1}

        pid = private_registry.status().pid
        assert pid is not None
        assert private_registry.stop()
        assert not Path(f"/proc/{pid}").exists()  # no JVM left behind

        publisher.publish(make_death(entry_number=2))  # the publisher's ids are cached: no registry needed
        publisher.flush()
        assert batches.get(timeout=60).outcomes == {(DEATH, "applied"): 1}  # a known id decodes from the cache

        record = to_avro(make_death(entry_number=3))
        produce_raw(settings, topic, [(b"unknown-id", frame(987_654, death_v1(), record))])
        assert unavailable.wait(timeout=60)  # the registry cannot be asked: waiting, not dead-lettering
        assert batches.empty() and runner.is_alive()

        private_registry.start(timeout=180)  # same data: the registry now says the id does not exist
        report = batches.get(timeout=90)
        assert report.dead_letter_reasons == {"unknown-schema-id": 1}
    finally:
        consumer.stop()
        runner.join(timeout=30)
        store.close()
        publisher.flush()
    letters = read_all(settings, [dead_letter_topic("suppression", settings.topic_prefix)], 1)
    headers = dict(letters[0].headers() or [])
    assert headers["civreg.reason"] == b"unknown-schema-id"
    assert letters[0].key() == b"unknown-id"


# --- the benchmark runs on the real registry ---------------------------------------------------------------------


def test_codec_benchmark_compares_identical_bytes_and_records(registry_settings: Settings, tmp_path: Path) -> None:
    from rich.console import Console

    options = BenchOptions(events=40, rounds=1, out_dir=tmp_path)
    result = run_codec_suite(registry_settings, options, Console(file=io.StringIO()))
    assert result.context["same bytes"] is True
    assert result.context["same records"] is True
    assert [case.name for case in result.cases][:3] == [
        "encode: event → bytes",
        "decode: bytes → record",
        "decode: bytes → event",
    ]
    assert all(case.ratio is not None and case.ratio > 0 for case in result.cases[:3])
