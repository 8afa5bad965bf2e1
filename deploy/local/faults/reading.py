"""Reading a topic to its end as a department would (``read_committed``), for counting what is on it.

Transactional topics (the department topics and the ledger the router writes) hold commit markers and aborted
records between the offsets, so their watermarks do not count messages: a partition is read to its end when the
consumer reports end of partition (librdkafka stops there at the last stable offset, past markers and aborted
records), and only the records delivered are counted.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition

from civreg.kafka_config import consumer_config
from civreg.settings import Settings

__all__ = ["TopicMessage", "read_topic"]

TopicMessage = tuple[bytes | None, bytes | None, list[Any]]
"""(key, value, headers) of one committed record."""


def read_topic(settings: Settings, topic: str, *, timeout: float = 300.0) -> list[TopicMessage]:
    """Every committed record of ``topic`` from the start of each partition to its end, in partition order."""
    config = consumer_config(settings, f"reader-{uuid.uuid4()}", role="reader")
    consumer = Consumer({**config, "enable.partition.eof": True, "auto.offset.reset": "earliest"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        done: set[int] = set()
        found: list[TopicMessage] = []
        deadline = time.monotonic() + timeout
        while len(done) < len(partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic} to its end in {timeout:.0f}s")
            for message in consumer.consume(1000, 1.0):
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        done.add(message.partition() or 0)
                    continue
                found.append((message.key(), message.value(), list(message.headers() or [])))
        return found
    finally:
        consumer.close()
