"""``civreg bench``: named benchmark cases, each timed for this project's path and a baseline, side by side.

Why a table of named cases: speed claims in the README are figures this command prints, never timed assertions in
tests. A suite is a function returning ``BenchCase`` rows; ``SUITES`` lists them, so a consumer suite (or any
other) is one more entry. Each case is timed as the best of several passes over the same workload (the least
disturbed by whatever else the machine does) and its median is kept too; results go to
``bench-results/<suite>.json``.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
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
    "Rate",
    "SuiteResult",
    "Target",
    "measure",
    "print_suite",
    "write_rates_chart",
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
    publish_events: int = 20_000
    """Events of the publish suite (100,000 for the issue's full size)."""
    latency_rate: float = 500.0
    """Events per second the latency suite publishes at (the target's rate)."""
    latency_seconds: float = 20.0
    """How long the latency suite publishes at that rate (after its warm-up)."""
    bulk_rows: int = 100_000
    """Rows of the bulk suite's register and mailing files (1,000,000 for the issue's full size)."""


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


@dataclass(frozen=True)
class Target:
    """A goal and the figure measured for it in this run: a ratio (at least ``goal``) or seconds (at most)."""

    name: str
    figure: float
    goal: float
    unit: str = "ratio"
    """``ratio`` (higher is better, e.g. civreg's rate ÷ the ceiling's) or ``s`` (lower is better)."""
    note: str = ""
    """What bounds the figure, measured in the same run (printed under the target's row)."""

    @property
    def met(self) -> bool:
        """Whether the figure reaches the goal."""
        return self.figure >= self.goal if self.unit == "ratio" else self.figure <= self.goal

    def describe(self, value: float) -> str:
        """A figure or goal in this target's unit: a share of a ceiling in %, a multiple (goal ≥ 1) as 1.23x."""
        return (
            f"{value:.1%}"
            if self.unit == "ratio" and self.goal < 1
            else f"{value:.2f}x"
            if self.unit == "ratio"
            else f"{value:.2f} s"
        )


@dataclass(frozen=True)
class Rate:
    """One measured throughput: a path over a department's messages, and the raw ceiling of the same run."""

    department: str
    path: str
    messages: int
    seconds: float
    rate: float
    ceiling: float | None = None

    @property
    def share(self) -> float | None:
        """The rate as a share of the ceiling measured in the same run."""
        return None if not self.ceiling else self.rate / self.ceiling


@dataclass
class SuiteResult:
    """One suite's results and the facts needed to read them."""

    suite: str
    title: str
    ours_label: str
    baseline_label: str
    cases: list[CaseResult] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    rates: list[Rate] = field(default_factory=list)
    """Throughputs (events/s) of a suite timed as whole runs rather than µs per event, e.g. the consumer suite."""


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
    """The suite as a table: µs/event for each side and the ratio, or events/s per path for a suite of rates.

    Targets are not printed here: ``run_suites`` prints every suite's targets in one table."""
    if result.rates:
        _print_rates(result, console)
    if result.cases:
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


def _print_rates(result: SuiteResult, console: Console) -> None:
    table = Table(title=result.title)
    for column in ("department", "path", "messages", "seconds", "events/s", "share of raw"):
        table.add_column(column, justify="left" if column in ("department", "path") else "right")
    for rate in result.rates:
        share = rate.share
        table.add_row(
            rate.department,
            rate.path,
            str(rate.messages),
            f"{rate.seconds:.2f}",
            f"{rate.rate:,.0f}",
            "-" if share is None else f"{share:.1%}",
        )
    console.print(table)


def write_rates_chart(result: SuiteResult, out_dir: Path) -> Path | None:
    """``<out_dir>/<suite>.png``: events/s per department and path (None when the suite has no rates)."""
    if not result.rates:
        return None
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    departments = list(dict.fromkeys(rate.department for rate in result.rates))
    paths = list(dict.fromkeys(rate.path for rate in result.rates))
    by = {(rate.department, rate.path): rate.rate for rate in result.rates}
    width = 0.8 / len(paths)
    figure, axes = plt.subplots(figsize=(max(8.0, 1.6 * len(departments) + 3), 5))
    for index, path in enumerate(paths):
        xs = [d + index * width for d in range(len(departments))]
        axes.bar(xs, [by.get((department, path), 0.0) for department in departments], width, label=path)
    axes.set_xticks([d + 0.4 - width / 2 for d in range(len(departments))], departments)
    axes.set_ylabel("events per second")
    axes.set_yscale("log")
    axes.set_title(result.title, fontsize=9)
    axes.legend(fontsize=7)
    figure.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    chart = out_dir / f"{result.suite}.png"
    figure.savefig(chart, dpi=110)
    plt.close(figure)
    return chart


def targets_table(targets: list[Target], title: str) -> Table:
    """Every target with its figure and its goal side by side."""
    table = Table(title=title)
    table.add_column("target")
    table.add_column("figure", justify="right")
    table.add_column("goal", justify="right")
    table.add_column("met")
    for target in targets:
        goal = ("≥ " if target.unit == "ratio" else "≤ ") + target.describe(target.goal)
        table.add_row(target.name, target.describe(target.figure), goal, "yes" if target.met else "[red]no[/]")
        if target.note:
            table.add_row(f"[dim]  {target.note}[/]", "", "", "")
    return table


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
        "rates": [{**asdict(rate), "share": rate.share} for rate in result.rates],
        "targets": [{**asdict(target), "met": target.met} for target in result.targets],
    }
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return path


@contextlib.contextmanager
def fixtures_out_of_gc() -> Iterator[None]:
    """Keep the garbage collector off what the benchmark holds for every pass while the passes run.

    The fixtures a suite holds (a simulated population as models, encoded bytes, registers) are far more objects
    than any service keeps; a collection that walks them lands in whichever pass allocates at that moment (one
    batch of 500 events measured 1.0 s instead of 0.17 s). A path run in its own process (``civreg publish``, a
    department consumer) never carries them, so every pass runs with them frozen.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
