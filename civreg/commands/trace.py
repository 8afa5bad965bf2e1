"""``civreg trace EVENT_ID``: which departments received one registration, what each did, who has not answered."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from civreg.logs import configure_logging
from civreg.settings import load_settings

__all__ = ["trace"]


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter("must be a date or time, e.g. 2024-03-14", param_hint="--since") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def trace(
    event_id: Annotated[str, typer.Argument(help="The registration event's id (a UUID).", show_default=False)],
    since: Annotated[
        str | None,
        typer.Option(help="Read acknowledgements from this date/time on (faster; the event's registration date)."),
    ] = None,
    all_partitions: Annotated[
        bool,
        typer.Option("--all-partitions", help="Read every partition (only needed if the topic's partitions grew)."),
    ] = False,
    timeout: Annotated[float, typer.Option(min=1.0, help="Seconds to wait for Kafka.")] = 30.0,
) -> None:
    """Show each department's outcome for one event, from the acknowledgement topic, and who has not acknowledged.

    Exit status: 0 every entitled department acknowledged, 2 some have not (or none has yet), 1 error.
    """
    from consumers.operations.acknowledgements import TraceError, trace_event

    try:
        wanted = str(uuid.UUID(event_id))
    except ValueError:
        raise typer.BadParameter("must be an event id (a UUID)", param_hint="EVENT_ID") from None
    configure_logging("WARNING")
    settings = load_settings()
    console = Console(stderr=True)
    with Progress(
        TextColumn("reading acknowledgements"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("trace", total=None)
        try:
            result = trace_event(
                settings,
                wanted,
                since=_since(since),
                all_partitions=all_partitions,
                timeout=timeout,
                on_progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
        except TraceError as exc:
            progress.stop()
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
    out = Console(width=200)
    partitions = ", ".join(str(p) for p in result.partitions)
    scanned = f"read {result.scanned} acknowledgement(s) from partition {partitions} in {result.seconds:.1f} s"
    if not result.departments:
        out.print(f"{wanted}: no department has acknowledged this event yet ({scanned}).", highlight=False)
        raise typer.Exit(2)
    table = Table(title=f"{wanted}: {result.event_type} ({result.register.value if result.register else '?'})")
    for column in ("department", "outcome", "note", "decided at", "by a person", "acks"):
        table.add_column(column)
    for name, held in sorted(result.departments.items()):
        ack = held.latest
        decided = ack.decided_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(name, ack.outcome, ack.note, decided, "yes" if ack.reviewed else "", str(held.acknowledgements))
    out.print(table)
    if result.awaiting:
        out.print(
            f"not acknowledged yet: {', '.join(result.awaiting)} (still processing, stopped, or the event was withheld "
            "by its data-sharing agreement, e.g. a stillbirth)",
            highlight=False,
        )
    else:
        out.print(f"every entitled department has acknowledged ({', '.join(result.expected or ())})", highlight=False)
    out.print(scanned, highlight=False, style="dim")
    if result.awaiting:
        raise typer.Exit(2)
