"""``civreg bench``: named benchmark cases, each timed for this project's path and a baseline, side by side.

Why a table of named cases: speed claims in the README are figures this command prints, never timed assertions in
tests. A suite is a function returning ``BenchCase`` rows; ``SUITES`` lists them, so a consumer suite (or any
other) is one more entry. Each case is timed as the best of several passes over the same workload (the least
disturbed by whatever else the machine does) and its median is kept too; results go to
``bench-results/<suite>.json``.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from rich.console import Console
from rich.table import Table

from civreg.settings import Settings

__all__ = [
    "BenchCase",
    "BenchOptions",
    "CaseResult",
    "SuiteResult",
    "measure",
    "print_suite",
    "write_suite",
]

Pass = Callable[[], int]
"""One pass over a case's workload; returns how many events it handled."""


@dataclass(frozen=True)
class BenchOptions:
    """Workload size and repetition, shared by every suite."""

    events: int = 2000
    rounds: int = 7
    seed: int = 2016
    out_dir: Path = Path("bench-results")


@dataclass(frozen=True)
class BenchCase:
    """One named measurement: this project's pass and, when there is one, the baseline's."""

    name: str
    ours: Pass
    baseline: Pass | None = None
    note: str = ""


@dataclass(frozen=True)
class CaseResult:
    """A case's figures in microseconds per event (best pass, and median pass)."""

    name: str
    ours_us: float
    ours_median_us: float
    baseline_us: float | None
    baseline_median_us: float | None
    note: str

    @property
    def ratio(self) -> float | None:
        """How many times slower the baseline is (best passes)."""
        if self.baseline_us is None or self.ours_us <= 0:
            return None
        return self.baseline_us / self.ours_us


@dataclass
class SuiteResult:
    """One suite's results and the facts needed to read them."""

    suite: str
    title: str
    ours_label: str
    baseline_label: str
    cases: list[CaseResult] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)


class Suite(Protocol):
    """Builds and runs a suite's cases (setting up and tearing down what they need) and returns the results."""

    def __call__(self, settings: Settings, options: BenchOptions, console: Console) -> SuiteResult: ...


def measure(run: Pass, rounds: int) -> tuple[float, float]:
    """(best, median) microseconds per event over ``rounds`` passes, after one untimed warm-up pass."""
    run()
    per_event: list[float] = []
    for _ in range(rounds):
        started = time.perf_counter()
        handled = run()
        per_event.append((time.perf_counter() - started) / max(handled, 1) * 1e6)
    return min(per_event), statistics.median(per_event)


def run_cases(cases: list[BenchCase], rounds: int) -> list[CaseResult]:
    """Time every case, ours and baseline interleaved so drift in machine load touches both alike."""
    results: list[CaseResult] = []
    for case in cases:
        ours_best, ours_median = measure(case.ours, rounds)
        base_best, base_median = measure(case.baseline, rounds) if case.baseline is not None else (None, None)
        results.append(CaseResult(case.name, ours_best, ours_median, base_best, base_median, case.note))
    return results


def print_suite(result: SuiteResult, console: Console) -> None:
    """The suite as a table: µs/event for each side and the ratio."""
    table = Table(title=result.title)
    table.add_column("case")
    table.add_column(f"{result.ours_label}\nµs/event", justify="right")
    table.add_column(f"{result.baseline_label}\nµs/event", justify="right")
    table.add_column("baseline ÷\ncivreg", justify="right")
    table.add_column("note")
    for case in result.cases:
        ratio = case.ratio
        table.add_row(
            case.name,
            f"{case.ours_us:.1f}",
            "-" if case.baseline_us is None else f"{case.baseline_us:.1f}",
            "-" if ratio is None else f"{ratio:.1f}x",
            case.note,
        )
    console.print(table)
    facts = ", ".join(f"{key}: {value}" for key, value in result.context.items() if not isinstance(value, dict))
    console.print(f"[dim]{facts}[/]", highlight=False)


def write_suite(result: SuiteResult, out_dir: Path) -> Path:
    """Write ``<out_dir>/<suite>.json``; returns its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{result.suite}.json"
    payload = {
        "suite": result.suite,
        "title": result.title,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "unit": "microseconds per event (best of the timed passes; median alongside)",
        "ours": result.ours_label,
        "baseline": result.baseline_label,
        "context": result.context,
        "cases": [{**asdict(case), "ratio": case.ratio} for case in result.cases],
    }
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return path
