"""Where a publish's time goes, stage by stage: measured in the run itself when a caller asks for it.

Why in the code path rather than a separate profile: ``civreg bench`` shows, beside each publish figure, how the
same pass spent its time (parse, validate, encode, Kafka), so what bounds the rate is read from the run that set it.
In one process, two clock reads per stage per event (about 0.1 µs each) are paid only when a ``StageTimes`` is
given; validating workers always time their chunks (three clock reads a row) and send the sums back with them.
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
    workers: int = 1
    """Processes that parsed, validated and encoded: above 1, those three stages are summed over the workers,
    and ``validating_wall`` is the time the validating pass took."""
    validating_wall: float = 0.0

    @property
    def validating(self) -> float:
        """Wall-clock seconds of the validating pass (parse, validation, encode)."""
        if self.workers > 1:
            return self.validating_wall
        return self.parse + self.validate + self.encode

    @property
    def other(self) -> float:
        """Time in no stage above."""
        return max(self.total - self.validating - self.produce - self.acknowledge, 0.0)

    def per_event_us(self, events: int) -> dict[str, float]:
        """Each stage in µs per event, the validating pass as a whole, and the total (the stages from the
        validating pass on, with "other", add up to it)."""
        per = 1e6 / max(events, 1)
        stages = {  # with several workers, the first three are summed over them
            "parse (read + orjson)": self.parse,
            "validation (pydantic)": self.validate,
            "encode (Avro)": self.encode,
            "validating pass (wall clock)": self.validating,
            "Kafka produce (queue + reports)": self.produce,
            "Kafka acknowledgements (flush)": self.acknowledge,
            "other": self.other,
            "total": self.total,
        }
        return {name: round(seconds * per, 1) for name, seconds in stages.items()}
