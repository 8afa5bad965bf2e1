"""Every suite of ``civreg bench`` by name, and running them: the one module that knows all suites.

Why apart from the harness: each suite imports the harness (its ``BenchCase`` and ``run_cases``); the list of
suites imports each suite. With both in one module they imported each other.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from civreg.settings import Settings
from deploy.local.bench.bulk import run_bulk_suite
from deploy.local.bench.codec import run_codec_suite
from deploy.local.bench.consumer import run_consumer_suite
from deploy.local.bench.harness import (
    BenchOptions,
    Suite,
    SuiteResult,
    print_suite,
    targets_table,
    write_rates_chart,
    write_suite,
)
from deploy.local.bench.latency import run_latency_suite
from deploy.local.bench.publish import run_publish_suite

__all__ = ["SUITES", "run_suites"]


SUITES: dict[str, Suite] = {
    "codec": run_codec_suite,
    "consumer": run_consumer_suite,
    "publish": run_publish_suite,
    "latency": run_latency_suite,
    "bulk": run_bulk_suite,
}
"""Every suite by name, in the order ``civreg bench`` runs them."""


def run_suites(settings: Settings, names: list[str], options: BenchOptions, console: Console) -> list[Path]:
    """Run the named suites (all when empty), print each table and write each JSON; then every target in one
    table and a PNG chart of them. Returns the paths written."""
    unknown = [name for name in names if name not in SUITES]
    if unknown:
        raise KeyError(f"unknown suite(s) {', '.join(unknown)}; known: {', '.join(SUITES)}")
    written: list[Path] = []
    results: list[SuiteResult] = []
    for name in names or list(SUITES):
        result = SUITES[name](settings, options, console)
        print_suite(result, console)
        written.append(write_suite(result, options.out_dir))
        chart = write_rates_chart(result, options.out_dir)
        if chart is not None:
            written.append(chart)
        results.append(result)
    targets = [target for result in results for target in result.targets]
    if targets:
        console.print(targets_table(targets, "Every target: figure measured in this run, and goal"))
        written.append(write_chart(results, options.out_dir / "targets.png"))
    return written


def write_chart(results: list[SuiteResult], path: Path) -> Path:
    """A bar per target: its figure as a share of its goal (1.0 is the goal; for times, goal ÷ figure)."""
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    targets = [target for result in results for target in result.targets]
    shares = [t.figure / t.goal if t.unit == "ratio" else t.goal / max(t.figure, 1e-9) for t in targets]
    figure, axes = plt.subplots(figsize=(9, 0.6 * len(targets) + 1.5))
    axes.barh([t.name for t in targets], shares, color=["tab:green" if t.met else "tab:red" for t in targets])
    axes.axvline(1.0, color="black", linestyle="--", linewidth=1)
    axes.set_xlabel("figure ÷ goal (≥ 1 meets the target)")
    axes.invert_yaxis()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
