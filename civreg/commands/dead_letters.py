"""``civreg dead-letters list | redrive``: what a department (or the router) could not apply, and sending it round
again."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from civreg.settings import load_settings
from deploy.acls import ROUTER

__all__ = ["dead_letters_app"]

dead_letters_app = typer.Typer(
    help="Inspect a department's or the router's dead letters (why each is there) and re-drive them once the cause "
    "is fixed.",
    no_args_is_help=True,
)

Department = Annotated[
    str,
    typer.Option(
        "--department",
        "-d",
        help="The department whose dead letters to read, or 'router' for the registrations the router could not "
        "decode (<prefix>.dead-letter.router).",
    ),
]


@dead_letters_app.command("list")
def list_command(department: Department) -> None:
    """List the department's dead letters: reason, error, original position and event id (never the body)."""
    from consumers.operations.redrive import list_dead_letters

    try:
        letters = list_dead_letters(load_settings(), department)
    except LookupError as exc:
        raise typer.BadParameter(str(exc), param_hint="--department") from None
    table = Table(title=f"{department}: {len(letters)} dead letter(s)")
    columns = ("partition/offset", "reason", "error", "original", "event id", "event type", "dead-lettered at")
    lanes = department == ROUTER
    for column in ("partition/offset", "lane") if lanes else columns[:1]:
        table.add_column(column)
    for column in columns[1:]:
        table.add_column(column)
    for letter in letters:
        table.add_row(
            f"{letter.partition}/{letter.offset}",
            *((letter.department,) if lanes else ()),
            letter.reason,
            f"{letter.error_class}: {letter.error_message}",
            f"{letter.original_topic}[{letter.original_partition}]@{letter.original_offset}",
            letter.event_id or "(undecodable)",
            letter.event_type or "",
            letter.dead_lettered_at,
        )
    Console().print(table)
    if lanes and letters:
        originals = len({letter.original for letter in letters})
        typer.echo(
            f"{originals} registration(s) the router could not decode (each lane of its register wrote one); "
            "after the fix: civreg dead-letters redrive -d router --include-undecodable"
        )


@dead_letters_app.command("redrive")
def redrive_command(
    department: Department,
    event_id: Annotated[
        list[str] | None, typer.Option("--event-id", help="Re-drive only this event (repeatable). Default: all.")
    ] = None,
    include_undecodable: Annotated[
        bool,
        typer.Option("--include-undecodable", help="Also re-drive messages that never decoded (after a codec fix)."),
    ] = False,
) -> None:
    """Copy dead letters back to the topic they were read from, so the department applies them again.

    Other departments skip them (they already applied those event ids). With -d router, each registration the
    router could not decode goes back once to its registration topic and every lane routes it afresh (its letters
    are all undecodable: pass --include-undecodable). Re-drive only after fixing the cause.
    """
    from consumers.operations.redrive import redrive

    try:
        sent = redrive(load_settings(), department, event_ids=event_id, include_undecodable=include_undecodable)
    except (LookupError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from None
    targets = sorted({letter.original_topic for letter in sent})
    typer.echo(
        f"re-drove {len(sent)} dead letter(s) of {department}" + (f" to {', '.join(targets)}" if targets else "")
    )
