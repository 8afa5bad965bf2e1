"""``civreg bench``: print a table of named benchmark cases and write ``bench-results/<suite>.json``.

Parses arguments and delegates to ``deploy.local.bench``: the suites are listed in ``deploy.local.bench.suites``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from civreg.logs import configure_logging
from civreg.settings import load_settings

__all__ = ["bench"]


def bench(
    suites: Annotated[
        list[str] | None,
        typer.Argument(
            help="Suites to run (default: all): codec, consumer, publish, latency, bulk.", show_default=False
        ),
    ] = None,
    events: Annotated[int, typer.Option(min=10, help="Events in each suite's workload.")] = 2000,
    rounds: Annotated[int, typer.Option(min=1, help="Timed passes per case (the best is reported).")] = 7,
    seed: Annotated[int, typer.Option(help="Seed of the simulated events.")] = 2016,
    out_dir: Annotated[Path, typer.Option(help="Where <suite>.json files are written.")] = Path("bench-results"),
    publish_events: Annotated[
        int, typer.Option(min=10, help="Events of the publish suite (the issue's full size: 100000).")
    ] = 20_000,
    latency_rate: Annotated[
        float, typer.Option(min=1, help="Events per second the latency suite publishes at (the target's rate).")
    ] = 500.0,
    latency_seconds: Annotated[
        float, typer.Option(min=1, help="Seconds the latency suite publishes for, after a 3 s warm-up.")
    ] = 20.0,
    bulk_rows: Annotated[
        int, typer.Option(min=10, help="Rows of the bulk suite's register and mailing files (full size: 1000000).")
    ] = 100_000,
) -> None:
    """Time this project's paths against baselines and ceilings; print each target with its figure and its goal.

    codec: this project's codec against the stock serializers, same registry, same bytes.

    consumer: each department's consume, decode and apply on SQLite and PostgreSQL against raw consume and stock.

    publish: raw produce ceiling, Publisher, civreg publish and the stock confluent-kafka path, one broker, one run.

    latency: router and six consumers as processes at --latency-rate; p50/p95/p99 from send to applied;
    CPU per event of every process and the cores the rate needs.

    bulk: registers load and mailing filter over --bulk-rows rows, SQLite and PostgreSQL (CIVREG_POSTGRES_DSN).

    Uses your registry (CIVREG_REGISTRY_URL) or the dev stack's; otherwise starts a temporary local one.
    """
    from deploy.local.bench.harness import BenchOptions
    from deploy.local.bench.suites import run_suites

    # As ``civreg publish`` and the services run by default: a log line per event is no part of any path measured.
    configure_logging("WARNING")
    console = Console()
    options = BenchOptions(
        events=events,
        rounds=rounds,
        seed=seed,
        out_dir=out_dir,
        publish_events=publish_events,
        latency_rate=latency_rate,
        latency_seconds=latency_seconds,
        bulk_rows=bulk_rows,
    )
    try:
        written = run_suites(load_settings(), list(suites or []), options, console)
    except KeyError as exc:
        raise typer.BadParameter(str(exc.args[0]), param_hint="SUITES") from None
    for path in written:
        console.print(f"wrote {path}", highlight=False)
