"""Every suite of ``civreg bench`` by name, and running them: the one module that knows all suites.

Why apart from the harness: each suite imports the harness (its ``BenchCase`` and ``run_cases``); the list of
suites imports each suite. With both in one module they imported each other.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from civreg.settings import Settings
from deploy.local.bench.codec import run_codec_suite
from deploy.local.bench.consumer import run_consumer_suite
from deploy.local.bench.harness import BenchOptions, Suite, print_suite, write_suite

__all__ = ["SUITES", "run_suites"]


SUITES: dict[str, Suite] = {"codec": run_codec_suite, "consumer": run_consumer_suite}
"""Every suite by name, in the order ``civreg bench`` runs them."""


def run_suites(settings: Settings, names: list[str], options: BenchOptions, console: Console) -> list[Path]:
    """Run the named suites (all when empty), print each table and write each JSON; returns the JSON paths."""
    unknown = [name for name in names if name not in SUITES]
    if unknown:
        raise KeyError(f"unknown suite(s) {', '.join(unknown)}; known: {', '.join(SUITES)}")
    written: list[Path] = []
    for name in names or list(SUITES):
        result = SUITES[name](settings, options, console)
        print_suite(result, console)
        written.append(write_suite(result, options.out_dir))
    return written
