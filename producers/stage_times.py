"""Where a publish's time goes, stage by stage: measured in the run itself when a caller asks for it.

Why in the code path rather than a separate profile: ``civreg bench`` shows, beside each publish figure, how the
same pass spent its time (parse, validate, encode, Kafka), so what bounds the rate is read from the run that set it.
Two clock reads per stage per event (about 0.1 µs each) are paid only when a ``StageTimes`` is given.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["StageTimes"]


@dataclass
class StageTimes:
    """Seconds spent in each stage of one ``publish_file`` run (wall clock, summed over events)."""

    parse: float = 0.0
    """Reading lines and parsing them (orjson, with the repeated-key check; CSV cells)."""
    validate: float = 0.0
    """The models' validation of each row, duplicate event ids included."""
    encode: float = 0.0
    """Avro body of each valid event, written into the spool."""
    produce: float = 0.0
    """Reading the spool back and ``produce`` calls (queueing to librdkafka, serving delivery reports)."""
    acknowledge: float = 0.0
    """The final flush: waiting for the broker's last acknowledgements."""
    total: float = 0.0
    """The whole run, set by the caller that timed it (the rest is file checks, metadata, producer set-up)."""

    @property
    def other(self) -> float:
        """Time in no stage above."""
        return max(self.total - self.parse - self.validate - self.encode - self.produce - self.acknowledge, 0.0)

    def per_event_us(self, events: int) -> dict[str, float]:
        """Each stage in µs per event, and the total."""
        per = 1e6 / max(events, 1)
        stages = {
            "parse (read + orjson)": self.parse,
            "validation (pydantic)": self.validate,
            "encode (Avro)": self.encode,
            "Kafka produce (queue + reports)": self.produce,
            "Kafka acknowledgements (flush)": self.acknowledge,
            "other": self.other,
            "total": self.total,
        }
        return {name: round(seconds * per, 1) for name, seconds in stages.items()}
