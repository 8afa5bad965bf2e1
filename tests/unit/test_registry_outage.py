"""``RegistryOutage``: the pause, the backoff and the resume the department consumer and the router's lanes share."""

from __future__ import annotations

from typing import Any, cast

from confluent_kafka import Consumer, TopicPartition

from consumers.runtime.registry_outage import RegistryOutage


class _Consumer:
    """Records pause and resume calls on a fixed assignment (pure logic: no broker involved)."""

    def __init__(self) -> None:
        self.assigned = [TopicPartition("t", 0), TopicPartition("t", 1)]
        self.paused: set[tuple[str, int]] = set()

    def assignment(self) -> list[TopicPartition]:
        return self.assigned

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.paused |= {(p.topic, p.partition) for p in partitions}

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.paused -= {(p.topic, p.partition) for p in partitions}


def _outage(consumer: Any) -> RegistryOutage:
    return RegistryOutage(cast(Consumer, consumer), first=0.5, cap=10.0)


def test_a_failed_try_pauses_every_partition_and_backs_off_exponentially_up_to_the_cap() -> None:
    consumer = _Consumer()
    outage = _outage(consumer)
    delays = [outage.failed() for _ in range(8)]
    assert consumer.paused == {("t", 0), ("t", 1)} and outage.waiting and outage.attempts == 8
    for attempt, delay in enumerate(delays, start=1):
        ceiling = min(0.5 * 2 ** (attempt - 1), 10.0)
        assert ceiling / 2 <= delay <= ceiling
    assert not outage.due and 0 < outage.until_retry() <= 10.0


def test_resume_fetches_again_but_keeps_counting_until_the_registry_answers() -> None:
    consumer = _Consumer()
    outage = _outage(consumer)
    outage.failed()
    outage.resume()
    assert not consumer.paused and not outage.waiting and outage.attempts == 1
    assert outage.failed() >= 0.5  # the second attempt's backoff: 1 s with jitter
    assert outage.recovered() is True
    assert not consumer.paused and outage.attempts == 0 and not outage.waiting
    assert outage.recovered() is False  # no outage since


def test_a_partition_assigned_during_the_wait_is_paused_by_the_next_failed_try() -> None:
    consumer = _Consumer()
    outage = _outage(consumer)
    outage.failed()
    consumer.assigned = [*consumer.assigned, TopicPartition("t", 2)]
    outage.failed()
    assert ("t", 2) in consumer.paused
