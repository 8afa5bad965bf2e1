"""What a running service checks on the cluster before it starts: that its topics exist.

Core, not deploy tooling: a consumer must say "run 'civreg topics apply'" in one line instead of dying later on the
Kafka client's own exception, and consumers may not import ``deploy`` (the import contracts in pyproject.toml).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from confluent_kafka import Consumer, IsolationLevel, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from civreg.errors import CivregError, MissingTopics
from civreg.kafka_config import error_text, quiet_admin_config
from civreg.settings import Settings

__all__ = ["ClusterUnreachable", "committed_log_ranges", "require_topics", "unread_ranges", "watermarks"]


# Answers a partition gives while its leadership is still moving (a topic just created, a broker just restarted).
_LEADER_MOVING = frozenset(
    {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE, KafkaError.UNKNOWN_TOPIC_OR_PART}
)


class ClusterUnreachable(CivregError, RuntimeError):
    """The bootstrap servers did not answer; the message names them and the client's reason."""


def require_topics(settings: Settings, topics: Sequence[str], *, timeout: float = 10.0) -> None:
    """Raise ``MissingTopics`` (one line: what to run, which prefix) unless every one of ``topics`` exists."""
    errors: list[str] = []
    admin = AdminClient(quiet_admin_config(settings, errors))
    try:
        existing = admin.list_topics(timeout=timeout).topics
    except KafkaException as exc:
        detail = errors[0] if errors else error_text(exc)
        raise ClusterUnreachable(f"cannot reach Kafka at {settings.effective_bootstrap_servers}: {detail}") from exc
    missing = [name for name in topics if name not in existing or existing[name].error is not None]
    if missing:
        raise MissingTopics(missing, settings.topic_prefix)


def watermarks(consumer: Consumer, topic: str, partition: int, *, timeout: float = 10.0) -> tuple[int, int]:
    """(low, high) offsets of one partition, asking again while its leadership settles.

    A topic created a moment ago, or a partition whose broker just restarted, answers "not leader" for a short
    while; a one-shot question would make "caught up" and report commands fail on a healthy cluster.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout)
            return int(low), int(high)
        except KafkaException as exc:
            error = exc.args[0]
            moving = isinstance(error, KafkaError) and (error.retriable() or error.code() in _LEADER_MOVING)
            if not moving or time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


def unread_ranges(
    consumer: Consumer, topic: str, partitions: Sequence[int], *, timeout: float = 10.0
) -> dict[int, tuple[int, int]]:
    """(low, high) of each of ``partitions`` that holds anything: where a tool reading a topic to its end starts and
    stops (the high watermarks read first, so the reading ends); empty partitions are left out."""
    ranges: dict[int, tuple[int, int]] = {}
    for partition in sorted(partitions):
        low, high = watermarks(consumer, topic, partition, timeout=timeout)
        if high > low:
            ranges[partition] = (low, high)
    return ranges


def committed_log_ranges(admin: AdminClient, topics: Sequence[str]) -> dict[tuple[str, int], tuple[int, int]]:
    """(log start, last stable offset) of every partition of ``topics`` that exists, in one metadata and two offsets
    round trips, read committed: a transaction still open is not yet the end, and commit markers are counted.

    What "caught up" is measured against, by the department consumer and by each router lane alike.
    """
    metadata = admin.list_topics(timeout=10)
    partitions = [
        TopicPartition(topic, partition)
        for topic in topics
        if topic in metadata.topics
        for partition in metadata.topics[topic].partitions
    ]
    if not partitions:
        return {}
    earliest: OffsetSpec = OffsetSpec.earliest()  # type: ignore[no-untyped-call]
    latest: OffsetSpec = OffsetSpec.latest()  # type: ignore[no-untyped-call]
    committed = IsolationLevel.READ_COMMITTED
    starts = admin.list_offsets(dict.fromkeys(partitions, earliest), isolation_level=committed)
    ends = admin.list_offsets(dict.fromkeys(partitions, latest), isolation_level=committed)
    return {
        (tp.topic, tp.partition): (int(starts[tp].result(timeout=15).offset), int(ends[tp].result(timeout=15).offset))
        for tp in partitions
    }
