"""Waiting out a schema-registry outage inside a consumer group: partitions paused, polling on, retries backed off.

Shared by the department consumer (``consumers.runtime.service``) and each of the router's lanes
(``consumers.routing.router``). A member that stopped polling while the registry is away would exceed
``max.poll.interval.ms`` and be evicted (a rebalance for nothing, and again when it comes back); one that kept
fetching would read ahead of what it can decode. So every assigned partition is paused (nothing is fetched), the
owner keeps polling (membership and rebalances keep working), and the next try comes after an exponential backoff
with jitter, so a registry that is restarting is not hammered. Never a dead letter, never an exit: an unknown
schema id may well be valid once the registry answers.
"""

from __future__ import annotations

import random
import time

from confluent_kafka import Consumer

__all__ = ["RegistryOutage"]


class RegistryOutage:
    """One consumer's wait for the registry: ``failed`` pauses and schedules the next try, ``due`` says when,
    ``recovered`` resumes. The owner polls the consumer throughout (at most ``until_retry`` seconds per poll)."""

    def __init__(self, consumer: Consumer, *, first: float = 0.5, cap: float = 10.0) -> None:
        self.consumer = consumer
        self.first = first
        self.cap = cap
        self.attempts = 0
        """Failed tries since the registry last answered."""
        self.waiting = False
        """True from a failed try until ``resume`` or ``recovered``: every assigned partition is paused."""
        self._retry_at = 0.0

    def failed(self) -> float:
        """A try failed for want of the registry: pause every assigned partition; returns the seconds until the next
        try (0.5 s doubling up to 10 s, with jitter)."""
        self.attempts += 1
        self.waiting = True
        self.consumer.pause(self.consumer.assignment())
        delay = float(min(self.first * 2 ** (self.attempts - 1), self.cap) * random.uniform(0.5, 1.0))
        self._retry_at = time.monotonic() + delay
        return delay

    def until_retry(self) -> float:
        """Seconds until the next try is due (0 when it is, or when not waiting)."""
        return max(self._retry_at - time.monotonic(), 0.0) if self.waiting else 0.0

    @property
    def due(self) -> bool:
        """Waiting, and the backoff has passed: time to try again."""
        return self.waiting and time.monotonic() >= self._retry_at

    def resume(self) -> None:
        """Fetch again (a retry that needs new reads); ``attempts`` is kept until ``recovered``."""
        self.waiting = False
        self.consumer.resume(self.consumer.assignment())

    def recovered(self) -> bool:
        """The registry answered: resume if paused and forget the attempts; True if there was an outage."""
        was_out = self.attempts > 0
        if self.waiting:
            self.resume()
        self.attempts = 0
        return was_out
