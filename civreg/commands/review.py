"""``civreg review list`` and ``civreg review resolve``: a person decides what a department could not match safely."""

from __future__ import annotations

import getpass
import uuid
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from civreg.logs import configure_logging
from civreg.settings import load_settings

__all__ = ["review_app"]

review_app = typer.Typer(
    help="The needs-review queue: events a department could not match safely, waiting for a person.",
    no_args_is_help=True,
)

DepartmentOption = Annotated[str, typer.Option("--department", "-d", help="Department whose queue, e.g. 'tax'.")]


def _known(department: str) -> str:
    from consumers.departments import DEPARTMENTS

    if department not in DEPARTMENTS:
        raise typer.BadParameter(
            f"unknown department; known: {', '.join(sorted(DEPARTMENTS))}", param_hint="--department"
        )
    return department


def _event_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise typer.BadParameter("must be an event id (a UUID)", param_hint="EVENT_ID") from None


@review_app.command("list")
def list_command(
    department: DepartmentOption,
    include_resolved: Annotated[
        bool, typer.Option("--include-resolved", help="Also show decided items, with their resolution.")
    ] = False,
) -> None:
    """List queued events, oldest first: event id, type, entry, note, candidate record ids, queued at (no names)."""
    from consumers.operations.review_decisions import NoDepartmentStore, list_reviews
    from consumers.runtime import TransientError

    configure_logging("WARNING")
    try:
        items = list_reviews(load_settings(), _known(department), include_resolved=include_resolved)
    except (NoDepartmentStore, TransientError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    table = Table(title=f"{department}: needs review ({len(items)})")
    for column in ("event id", "event type", "entry", "note", "candidate records", "queued at"):
        table.add_column(column, overflow="fold")
    if include_resolved:
        table.add_column("resolution")
    for item in items:
        row = [item.event_id, item.event_type, item.entry_key, item.note, ", ".join(item.candidates) or "-"]
        row.append(item.queued_at[:19].replace("T", " "))
        if include_resolved:
            row.append(item.resolution or "open")
        table.add_row(*row)
    Console(width=200).print(table)


@review_app.command("resolve")
def resolve_command(
    event_id: Annotated[str, typer.Argument(help="The queued event's id.", show_default=False)],
    department: DepartmentOption,
    record: Annotated[
        str | None, typer.Option("--record", help="The department's record id the event is about.")
    ] = None,
    no_match: Annotated[
        bool, typer.Option("--no-match", help="No record of the department matches the event.")
    ] = False,
    party: Annotated[
        str | None,
        typer.Option(
            "--party",
            help="With --no-match on a marriage or civil partnership: whom no record matches (party_1, party_2, "
            "partner_1, partner_2; the roles in the note). The other party's review stays open.",
        ),
    ] = None,
    by: Annotated[str | None, typer.Option("--by", help="Who decided (default: your login name).")] = None,
) -> None:
    """Decide a queued event: apply it to --record, or say --no-match. Publishes the department's acknowledgement.

    An entry naming two people is decided person by person: the item stays open until each is decided.
    """
    from consumers.operations.review_decisions import NoDepartmentStore, resolve
    from consumers.runtime import PermanentError, TransientError

    if (record is None) == (not no_match):
        raise typer.BadParameter("give exactly one of --record RECORD_ID or --no-match", param_hint="--record")
    if party is not None and not no_match:
        raise typer.BadParameter(
            "--party goes with --no-match (a chosen record says whose it is)", param_hint="--party"
        )
    configure_logging("WARNING")
    reviewer = by or getpass.getuser()
    try:
        resolution = resolve(load_settings(), _known(department), _event_id(event_id), record, reviewer, party=party)
    except (NoDepartmentStore, LookupError, ValueError, PermanentError, TransientError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    result = resolution.result
    published = (
        "acknowledgement published"
        if resolution.acknowledged
        else "acknowledgement queued (the department's consumer publishes it)"
    )
    typer.echo(f"{event_id}: {result.outcome.value} ({result.note}); {published}")
