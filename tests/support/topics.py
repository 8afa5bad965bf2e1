"""Reading what is on the registration topics, for tests that check what was published."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, TopicPartition

from civreg.cluster import watermarks
from civreg.kafka_config import consumer_config
from civreg.settings import Settings
from schemas.topics import registration_topics


def on_topics(settings: Settings) -> list[tuple[str, str]]:
    """(entry key, event id) of every message on the registration topics, in partition order (up to the high
    watermarks read first, so the reading ends)."""
    consumer = Consumer(consumer_config(settings, f"reader-{uuid.uuid4()}", **{"enable.auto.commit": False}))
    try:
        ends: dict[tuple[str, int], int] = {}
        for topic in registration_topics(settings.topic_prefix).values():
            for partition in consumer.list_topics(topic, timeout=10).topics[topic].partitions:
                low, high = watermarks(consumer, topic, partition)
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
