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


SIZES = ("full", "quick", "ci")
"""``full``: the issue's sizes (``make faults``); ``quick``: reduced (``make faults-quick``); ``ci``: the smallest
run of every scenario that still kills and interrupts each service several times (on demand: ``--ci``)."""


@dataclass(frozen=True)
class FaultOptions:
    """Sizes: the issue's full sizes by default, ``quick`` and ``ci`` for fewer events, kills and shorter outages."""

    size: str = "full"
    seed: int = 2016
    out_dir: Path = Path("bench-results")
    registry_url: str | None = None

    def _pick(self, full: float, quick: float, ci: float) -> float:
        return {"full": full, "quick": quick, "ci": ci}[self.size]

    @property
    def events(self) -> int:
        """Events per scenario (the crash scenarios have their own, larger, streams)."""
        return int(self._pick(20_000, 1_500, 400))

    @property
    def crash_events(self) -> int:
        return int(self._pick(100_000, 3_000, 800))

    @property
    def crash_kills(self) -> int:
        return int(self._pick(20, 5, 3))

    @property
    def router_events(self) -> int:
        """Events of every register for the router crash (each goes to several departments and the ledger)."""
        return int(self._pick(20_000, 2_000, 600))

    @property
    def router_kills(self) -> int:
        return int(self._pick(20, 5, 3))

    @property
    def outbox_rows(self) -> int:
        return int(self._pick(20_000, 2_000, 600))

    @property
    def relay_kills(self) -> int:
        return int(self._pick(20, 6, 3))

    @property
    def database_outage_seconds(self) -> float:
        return self._pick(30.0, 10.0, 6.0)

    @property
    def max_poll_interval_ms(self) -> int:
        return 6_000  # librdkafka's floor is session.timeout.ms; the outage below is longer

    @property
    def registry_outage_seconds(self) -> float:
        return self._pick(20.0, 8.0, 7.0)

    @property
    def two_brokers_down_seconds(self) -> float:
        return self._pick(25.0, 25.0, 15.0)


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
