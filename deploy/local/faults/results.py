"""What a scenario reports (``FaultResult``), the suite's sizes (``FaultOptions``) and the results table."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table


@dataclass
class FaultResult:
    """One scenario's row: counts from the producer's acknowledgements and the store's tables."""

    scenario: str
    events: int
    acknowledged: int
    applied: int
    lost: int
    doubled: int
    recovery_seconds: float
    dead_lettered: int = 0
    faults: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Nothing lost, nothing doubled, nothing dead-lettered for a fault, every check of the scenario passed."""
        return self.lost == 0 and self.doubled == 0 and self.dead_lettered == 0 and not self.failures

    @property
    def failures(self) -> list[str]:
        """Notes that are failed checks (they start with ``FAILED``)."""
        return [note for note in self.notes if note.startswith("FAILED")]

    def as_json(self) -> dict[str, Any]:
        """The object written to ``faults.json``."""
        return {**dataclasses.asdict(self), "ok": self.ok}


@dataclass(frozen=True)
class FaultOptions:
    """Sizes: the issue's full sizes by default, ``quick`` for CI."""

    quick: bool = False
    seed: int = 2016
    out_dir: Path = Path("bench-results")
    registry_url: str | None = None

    @property
    def events(self) -> int:
        """Events per scenario (the crash scenario has its own, larger, stream)."""
        return 1_500 if self.quick else 20_000

    @property
    def crash_events(self) -> int:
        return 3_000 if self.quick else 100_000

    @property
    def crash_kills(self) -> int:
        return 5 if self.quick else 20

    @property
    def database_outage_seconds(self) -> float:
        return 10.0 if self.quick else 30.0

    @property
    def max_poll_interval_ms(self) -> int:
        return 6_000  # librdkafka's floor is session.timeout.ms; the outage below is longer

    @property
    def registry_outage_seconds(self) -> float:
        return 8.0 if self.quick else 20.0


def results_table(results: Sequence[FaultResult]) -> Table:
    """The suite's table: one row per scenario."""
    table = Table(title="Fault suite: acknowledged by the broker vs held by the store", title_justify="left")
    for column in ("scenario", "faults", "events", "acknowledged", "applied", "lost", "doubled", "time to recover"):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    for r in results:
        bad = "[red]{}[/red]"
        table.add_row(
            r.scenario if r.ok else bad.format(r.scenario),
            str(r.faults),
            f"{r.events:,}",
            f"{r.acknowledged:,}",
            f"{r.applied:,}",
            str(r.lost) if not r.lost else bad.format(r.lost),
            str(r.doubled) if not r.doubled else bad.format(r.doubled),
            f"{r.recovery_seconds:.1f} s",
        )
    return table
