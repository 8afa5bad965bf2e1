"""``civreg publish``: publish a JSONL or CSV file of registration events (all rows valid, or nothing)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from civreg.logs import configure_logging
from civreg.settings import load_settings
from producers.event_files import FileFormat, detect_format

__all__ = ["publish"]


def publish(
    file: Annotated[
        Path,
        typer.Argument(
            help="JSONL or CSV file of events, one event per line or row.",
            exists=True,
            dir_okay=False,
            readable=True,
            show_default=False,
        ),
    ],
    file_format: Annotated[
        FileFormat | None,
        typer.Option(
            "--format",
            case_sensitive=False,
            help="File format. Default: from the suffix (.jsonl or .ndjson: jsonl; .csv: csv).",
            show_default=False,
        ),
    ] = None,
    allow_partial: Annotated[
        bool,
        typer.Option(
            "--allow-partial",
            help="Publish the valid rows even if some rows are invalid; the invalid ones are reported (exit 3).",
        ),
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and report only; publish nothing.")] = False,
    max_errors: Annotated[
        int, typer.Option("--max-errors", min=1, help="Show at most this many errors (all are counted).")
    ] = 1000,
    log_level: Annotated[
        str, typer.Option("--log-level", help="Level of the JSON logs on stderr: DEBUG, INFO, WARNING or ERROR.")
    ] = "WARNING",
) -> None:
    """Publish registration events from a JSONL or CSV file.

    Every row is validated first. If any row is invalid nothing is published and a table of errors (line, field,
    rule) is printed; --allow-partial publishes the valid rows anyway. Then the events are published with a
    progress bar and a summary by event type. Publishing a file again is safe: departments ignore event ids they
    have already seen.

    JSONL: one JSON object per line, "event_type" plus the event's fields nested as in the schema.

    CSV: line 1 is the header, with an event_type column and one column per field as a dotted path, e.g.
    entry.register, death.deceased.given_names, death.deceased.identifiers.nino. An empty cell is absent (null),
    so a file can mix event types. Address lines are one cell separated by "|". A correction writes its details
    under "corrected." plus the columns of its register's registration, e.g. corrected.death.place_of_death; the
    kind (birth, death, marriage, civil_partnership) must match entry.register.

    Exit codes: 0 all delivered; 1 invalid rows, nothing published; 3 --allow-partial published the valid rows;
    4 not (all) published: Kafka unreachable, topic missing, delivery failed, file changed or interrupted.
    """
    from rich.console import Console

    from producers.file_publishing import publish_file_and_report

    if file_format is None:
        try:
            file_format = detect_format(file)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--format") from exc
    configure_logging(log_level)
    code = publish_file_and_report(
        file,
        load_settings(),
        Console(),
        file_format=file_format,
        allow_partial=allow_partial,
        dry_run=dry_run,
        max_errors=max_errors,
    )
    raise typer.Exit(int(code))
