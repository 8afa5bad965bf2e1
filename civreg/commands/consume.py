"""``civreg consume``: run one department's consumer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from civreg.logs import configure_logging, get_logger
from civreg.settings import load_settings

__all__ = ["consume"]


def consume(
    department: Annotated[str, typer.Option("--department", "-d", help="Department to run, e.g. 'suppression'.")],
    until_caught_up: Annotated[
        bool,
        typer.Option(
            "--until-caught-up",
            help="Stop once the store has applied every partition of the department's topics to its end, whichever "
            "member holds them (back-fill, demo).",
        ),
    ] = False,
    database: Annotated[
        Path | None,
        typer.Option("--database", help="SQLite file (default: $CIVREG_DATABASE_DIR/<department>.sqlite3)."),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=10_000, help="Messages per database transaction.")] = 500,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=65_535,
            help="Serve /metrics, /healthz and /readyz on this port; 0 = off (default: $CIVREG_METRICS_PORT, 0).",
        ),
    ] = None,
) -> None:
    """Run a department consumer: apply each registration event once, record its outcome, dead-letter bad ones.

    SIGTERM or Ctrl-C finishes the batch in hand, commits it and exits cleanly; during start-up (waiting for the
    registry, the store or the broker) it exits cleanly at once. With --until-caught-up it stops only when every
    partition of the department's topics has been applied to its end, waiting (and saying so) for partitions
    another or a crashed member of the group still holds. Exit status 1, with one line saying what to do, when its
    topics do not exist or its store or registry stays unreachable.
    """
    from civreg.stopping import StopRequested, install_stop_handlers, stop_signal

    install_stop_handlers()  # before the imports below (``python -m civreg`` has done it already)
    from civreg.commands.progress import BackfillBar
    from consumers.departments import DEPARTMENTS
    from consumers.operations.running import run_department

    if department not in DEPARTMENTS:
        raise typer.BadParameter(
            f"unknown department; known: {', '.join(sorted(DEPARTMENTS))}", param_hint="--department"
        )
    configure_logging(log_level)
    # A missing topic, or a store or registry that stayed unreachable, is a CivregError: one line, exit 1 (civreg.cli).
    try:
        with BackfillBar(department, always=until_caught_up) as bar:  # also when it starts far behind
            totals = run_department(
                load_settings(),
                department,
                database=database,
                until_caught_up=until_caught_up,
                batch_size=batch_size,
                metrics_port=metrics_port,
                on_progress=bar.update,
            )
    except StopRequested:
        get_logger(__name__).info("stopping", department=department, signal=stop_signal(), before="consuming")
        typer.echo(f"{department}: stopped before consuming; nothing read")
        return
    outcomes = ", ".join(f"{t} {o}: {n}" for (t, o), n in sorted(totals.outcomes.items())) or "no new events"
    typer.echo(f"{department}: {totals.messages} messages; {outcomes}; duplicates skipped: {totals.duplicates}")
