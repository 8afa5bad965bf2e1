"""Raw schema-registry helpers: subjects, Confluent-framed records, producing and reading raw messages."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterable
from typing import Any

import fastavro
from confluent_kafka import Consumer, Message, Producer

from civreg.codec_from_settings import open_registry_resolver
from civreg.kafka_config import consumer_config, producer_config
from civreg.settings import Settings
from producers.publisher import Publisher
from schemas.catalogue import event_schema
from schemas.models import Event
from schemas.registry import (
    RegistrySchemaResolver,
    load_client_library,
    subject_name,
)
from schemas.topics import Register, registration_topic

load_client_library()  # before confluent-kafka's registry modules, so their dependency's import warning stays quiet

DEATH = "DeathRegistered"


def resolver_for(settings: Settings) -> RegistrySchemaResolver:
    resolver = open_registry_resolver(settings)
    assert resolver is not None
    return resolver


def deaths_topic(settings: Settings) -> str:
    return registration_topic(Register.DEATH, settings.topic_prefix)


def death_subject(settings: Settings) -> str:
    return subject_name(deaths_topic(settings), event_schema(DEATH).full_name)


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
