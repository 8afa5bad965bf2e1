"""Dead-letter topic writer: the original bytes, unchanged, with headers that say why.

Headers (all UTF-8 strings): ``civreg.reason`` (a short stable code), ``civreg.error.class``,
``civreg.error.message`` (field and rule, never the person's data), ``civreg.department``,
``civreg.original.topic``, ``civreg.original.partition``, ``civreg.original.offset``, ``civreg.dead-lettered-at``
(ISO 8601 UTC) and, when the message was decodable, ``civreg.event-id`` and ``civreg.event-type``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import KafkaError, Producer

from consumers.runtime.errors import TransientError

__all__ = ["DeadLetter", "DeadLetterWriter"]


@dataclass(frozen=True)
class DeadLetter:
    """One message on its way to the dead-letter topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    reason: str
    error_class: str
    error_message: str
    event_id: str | None = None
    event_type: str | None = None

    def headers(self, department: str) -> list[tuple[str, str | bytes | None]]:
        """Kafka headers describing why the message was dead-lettered."""
        headers = {
            "civreg.reason": self.reason,
            "civreg.error.class": self.error_class,
            "civreg.error.message": self.error_message[:1000],
            "civreg.department": department,
            "civreg.original.topic": self.topic,
            "civreg.original.partition": str(self.partition),
            "civreg.original.offset": str(self.offset),
            "civreg.dead-lettered-at": datetime.now(UTC).isoformat(),
        }
        if self.event_id is not None:
            headers["civreg.event-id"] = self.event_id
        if self.event_type is not None:
            headers["civreg.event-type"] = self.event_type
        return [(name, value.encode()) for name, value in headers.items()]


class DeadLetterWriter:
    """Writes dead letters and waits for the broker to acknowledge them before the batch commits."""

    def __init__(self, producer_config: dict[str, Any], topic: str, department: str) -> None:
        self._producer = Producer(producer_config)
        self.topic = topic
        self._department = department

    def write(self, letters: list[DeadLetter], timeout: float = 30.0) -> None:
        """Produce and flush; raise TransientError (batch retried) if any is not acknowledged."""
        if not letters:
            return
        failures: list[str] = []

        def on_delivery(error: KafkaError | None, _message: Any) -> None:
            if error is not None:
                failures.append(error.str())

        for letter in letters:
            self._producer.produce(
                self.topic,
                key=letter.key,
                value=letter.value,
                headers=letter.headers(self._department),
                on_delivery=on_delivery,
            )
        remaining = self._producer.flush(timeout)
        if remaining or failures:
            raise TransientError(
                f"dead-letter topic did not acknowledge {remaining + len(failures)} message(s): "
                f"{'; '.join(failures[:3]) or 'timed out'}"
            )

    def close(self) -> None:
        """Flush anything outstanding and release the client (no reconnect attempts after shutdown)."""
        self._producer.flush(10)
        del self._producer
