"""The suite's own producer: simulated death-register events, published until the broker acknowledges each one."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from civreg.settings import Settings
from producers.publisher import DeliveryReport, Publisher, PublishError
from producers.simulation import simulate_registrations
from schemas.codec import Codec
from schemas.models import Event
from schemas.topics import Register


def death_register_events(count: int, seed: int) -> list[Event]:
    """``count`` simulated events of the death register (registrations, corrections, voids), in time order."""
    events: list[Event] = []
    for event in simulate_registrations(count * 4, seed):
        if event.family is Register.DEATH:
            events.append(event)
            if len(events) == count:
                break
    return events


class Producing(threading.Thread):
    """Publishes events in chunks, re-publishing every event whose delivery failed until the broker acknowledges it.

    A failed delivery is back-pressure, reported and retried (consumers de-duplicate by event id); an event counts as
    acknowledged only from its delivery report.
    """

    def __init__(
        self,
        settings: Settings,
        codec: Codec,
        events: Sequence[Event],
        *,
        chunk: int = 250,
        pause: float = 0.0,
        overrides: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(daemon=True)
        self.settings = settings
        self.codec = codec
        self.events = list(events)
        self.chunk = chunk
        self.pause = pause
        self.overrides = overrides or {}
        self.acknowledged: set[str] = set()
        self.failed_deliveries = 0
        self.publish_errors = 0
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._retry: list[Event] = []
        self._by_id = {str(event.event_id): event for event in self.events}
        self.limit = len(self.events)
        """Publish no further than this index until it is raised (a scenario's phases)."""

    def _on_delivery(self, report: DeliveryReport) -> None:
        with self._lock:
            if report.delivered:
                self.acknowledged.add(report.event_id)
            else:
                self.failed_deliveries += 1
                self._retry.append(self._by_id[report.event_id])

    def run(self) -> None:
        try:
            with Publisher(self.settings, self.codec, self._on_delivery, config_overrides=self.overrides) as publisher:
                index = 0
                while True:
                    with self._lock:
                        retry, self._retry = self._retry, []
                    if retry:  # failed deliveries first, as soon as they are known
                        time.sleep(1.0)
                        self._publish(publisher, retry)
                    elif index >= len(self.events):
                        break
                    elif index >= self.limit:
                        time.sleep(0.1)
                    else:
                        self._publish(publisher, self.events[index : index + self.chunk])
                        index += self.chunk
                        if self.pause:
                            time.sleep(self.pause)
        except BaseException as exc:
            self.error = exc

    def _publish(self, publisher: Publisher, events: Sequence[Event]) -> None:
        for event in events:
            while True:
                try:
                    publisher.publish(event)
                    break
                except PublishError:
                    self.publish_errors += 1  # refused when queued: reported; its report queued it for retry
                    time.sleep(0.5)
                    break
        while True:
            try:
                publisher.flush(30)
                return
            except PublishError:
                self.publish_errors += 1
                if publisher.pending == 0:
                    return

    def ids_acknowledged(self) -> set[str]:
        with self._lock:
            return set(self.acknowledged)
