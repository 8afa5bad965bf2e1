"""``python -m deploy.local.faults``: the command line."""

from __future__ import annotations

import argparse
import signal
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from civreg.logs import configure_logging
from deploy.local.faults.results import FaultOptions
from deploy.local.faults.suite import SCENARIOS, run_suite

DESCRIPTION = "The fault suite: real processes under real faults, counted from the outside."


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m deploy.local.faults [--quick] [--scenario NAME ...]``: exit 1 unless every scenario is ok."""
    parser = argparse.ArgumentParser(prog="python -m deploy.local.faults", description=DESCRIPTION)
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument("--quick", action="store_true", help="reduced sizes: fewer events and kills, shorter outages")
    sizes.add_argument(
        "--ci", action="store_true", help="the smallest sizes: every scenario, 3 kills each (about 5 minutes)"
    )
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS), help="run only these (repeatable)")
    parser.add_argument("--seed", type=int, default=2016)
    parser.add_argument("--out-dir", type=Path, default=Path("bench-results"))
    parser.add_argument("--registry-url", help="registry to proxy (default: $CIVREG_REGISTRY_URL, else start one)")
    args = parser.parse_args(argv)
    configure_logging("WARNING")  # the suite's own producer and readers: warnings only, not one line per event
    signal.signal(signal.SIGTERM, _interrupt)  # a CI timeout still stops every broker and server the suite started
    size = "ci" if args.ci else "quick" if args.quick else "full"
    options = FaultOptions(size=size, seed=args.seed, out_dir=args.out_dir, registry_url=args.registry_url)
    console = Console(width=max(Console().width, 120))  # the whole table, also in a CI log
    results = run_suite(options, args.scenario, console)
    return 0 if results and all(r.ok for r in results) else 1
