"""``civreg relay`` (publish a register office's outbox) and ``civreg outbox add | status`` (load and inspect one)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from civreg.errors import CivregError
from civreg.logs import configure_logging
from civreg.settings import Settings, load_settings

__all__ = ["outbox_app", "relay"]

OutboxOption = Annotated[
    str | None,
    typer.Option(
        "--outbox",
        help="The outbox: a SQLite file or a PostgreSQL DSN (postgresql://...). Default: $CIVREG_OUTBOX.",
        show_default=False,
    ),
]


def _outbox_target(settings: Settings, outbox: str | None) -> str:
    if outbox:
        return outbox
    if settings.outbox is not None:
        return settings.outbox.get_secret_value()
    raise CivregError("no outbox: pass --outbox FILE-OR-DSN or set CIVREG_OUTBOX")


def relay(
    outbox: OutboxOption = None,
    once: Annotated[
        bool, typer.Option("--once", help="Relay one batch (or nothing if none is waiting), then exit.")
    ] = False,
    until_empty: Annotated[
        bool, typer.Option("--until-empty", help="Relay until no unsent row is left, then exit (scripts, tests).")
    ] = False,
    batch_size: Annotated[int, typer.Option(min=1, max=10_000, help="Rows published and marked sent at a time.")] = 500,
    poll_interval: Annotated[
        float, typer.Option(min=0.01, max=60.0, help="Seconds between looks at an empty outbox.")
    ] = 1.0,
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
    """Publish a register office's outbox to Kafka, in order, and mark each row sent once the broker has it.

    The office's system writes each registration and its event (table civreg_outbox) in one transaction; the relay
    publishes unsent rows in sequence order, keyed by entry (one entry's events stay in order on one partition),
    waits for the broker's acknowledgement (acks=all) and only then marks them sent. Killed at any moment it loses
    nothing: rows not yet marked are sent again on restart, and departments skip event ids they have seen.

    Runs until SIGTERM or Ctrl-C (which finish the batch in hand and exit 0). When the broker or the database is
    down it waits and retries with backoff, reports not ready on /readyz, and never marks an unsent row sent.
    One relay per outbox: a second one waits for the first to stop. Exit status 1 with one line when the outbox
    cannot be opened.
    """
    from producers.relay import run_relay

    configure_logging(log_level)
    settings = load_settings()
    report = run_relay(
        settings,
        _outbox_target(settings, outbox),
        batch_size=batch_size,
        poll_interval=poll_interval,
        until_empty=until_empty,
        once=once,
        metrics_port=metrics_port,
    )
    typer.echo(
        f"relay: {report.published} row(s) published and marked sent in {report.batches} batch(es); "
        f"retries: {report.retries}; rejected: {report.rejected}; still unsent: {report.backlog}"
    )


outbox_app = typer.Typer(
    help="A register office's outbox (table civreg_outbox): load events into it, see what is waiting.",
    no_args_is_help=True,
)


@outbox_app.command("add")
def add_command(
    file: Annotated[
        Path,
        typer.Argument(help="JSONL or CSV file of events (as for 'civreg publish').", exists=True, dir_okay=False),
    ],
    outbox: OutboxOption = None,
) -> None:
    """Add every event of a file to the outbox in ONE transaction (all rows valid, or nothing is added).

    For demos and tests: a real office's system adds each event in the transaction of its registration.
    Exit 1 when a row is invalid or an event id is already in the outbox (nothing added).
    """
    from producers.event_files import EventFileReader
    from producers.outbox import Outbox

    settings = load_settings()
    reader = EventFileReader(file)
    rows = list(reader)
    errors = [error for row in rows for error in row.errors]
    if errors:
        shown = "\n".join(str(error) for error in errors[:20])
        raise CivregError(f"{file}: {len(errors)} error(s); nothing added\n{shown}")
    with Outbox.open(_outbox_target(settings, outbox)) as box, box.transaction() as tx:
        for row in rows:
            assert row.event is not None
            box.add(tx, row.event)
    typer.echo(f"outbox: {len(rows)} event(s) added")


@outbox_app.command("status")
def status_command(outbox: OutboxOption = None) -> None:
    """How many rows are waiting to be sent, since when, and how many are held as rejected."""
    from producers.outbox import Outbox

    settings = load_settings()
    with Outbox.open(_outbox_target(settings, outbox)) as box:
        waiting, oldest = box.backlog()
        rejected = box.rejected_count()
    since = f", oldest added {oldest.isoformat(timespec='seconds')}" if oldest is not None else ""
    typer.echo(f"outbox {box.where}: {waiting} row(s) unsent{since}; {rejected} held as rejected")
