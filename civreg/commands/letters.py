"""``civreg letters run``: a department's scheduled letters, never one to a person known to have died."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from civreg.settings import Settings, load_settings

__all__ = ["letters_app"]

letters_app = typer.Typer(
    help="Departments' scheduled correspondence, checked against their records and the suppression service.",
    no_args_is_help=True,
)


def _existing(settings: Settings, named: Path | None, department: str, hint: str, how: str) -> Path | None:
    """The SQLite file to open, checked to exist; None means PostgreSQL (CIVREG_POSTGRES_DSN set, no file named)."""
    if named is None and settings.postgres_dsn is not None:
        return None
    path = named or settings.department_database(department)
    if not path.exists():
        raise typer.BadParameter(f"{path} does not exist; {how}", param_hint=hint)
    return path


@letters_app.command("run")
def run(
    department: Annotated[str, typer.Option("--department", "-d", help="tax, pensions, dvla, electoral or passports.")],
    on: Annotated[str | None, typer.Option("--date", help="First day of the run, YYYY-MM-DD (default: today).")] = None,
    days: Annotated[int, typer.Option(min=1, max=366, help="Days of scheduled letters the run covers.")] = 28,
    out: Annotated[Path, typer.Option("--out", help="The print file: letters to send (CSV).")] = Path("letters.csv"),
    report: Annotated[
        Path, typer.Option("--report", help="Letters held back and why, by record id (CSV, no names).")
    ] = Path("letters-held.csv"),
    database: Annotated[
        Path | None,
        typer.Option(
            "--database", help="The department's SQLite file (default: from settings; PostgreSQL if a DSN is set)."
        ),
    ] = None,
    suppression_database: Annotated[
        Path | None,
        typer.Option(
            "--suppression-database",
            help="The suppression service's SQLite file (default: from settings; PostgreSQL if a DSN is set).",
        ),
    ] = None,
) -> None:
    """Produce the letters due from --date for --days days, holding back any to a person known to have died.

    A letter is held when the department's own records say the addressee died, when a registered death that may be
    about them waits in the department's review queue, or when the letter-suppression service suppresses or holds
    them. The report names held letters by record id, kind and due date only.
    """
    from consumers.departments import CORRESPONDENCE, department_named
    from consumers.kit.letters import run_letters
    from consumers.operations.running import open_store

    if department not in CORRESPONDENCE:
        raise typer.BadParameter(f"known: {', '.join(sorted(CORRESPONDENCE))}", param_hint="--department")
    try:
        first_day = date.today() if on is None else date.fromisoformat(on)
    except ValueError:
        raise typer.BadParameter("must be a date, YYYY-MM-DD", param_hint="--date") from None
    settings = load_settings()
    own = _existing(
        settings,
        database,
        department,
        "--database",
        f"load its register and run `civreg consume --department {department}` first",
    )
    suppression_path = _existing(
        settings,
        suppression_database,
        "suppression",
        "--suppression-database",
        "run `civreg consume --department suppression` first (letters are never sent unchecked)",
    )
    store, suppression = open_store(settings, department, own), open_store(settings, "suppression", suppression_path)
    try:
        result = run_letters(
            department_named(department),
            CORRESPONDENCE[department],
            store,
            suppression,
            first_day=first_day,
            days=days,
            out=out,
            report=report,
        )
    finally:
        store.close()
        suppression.close()
    typer.echo(
        f"{department}: {result.due} letters due {result.first_day}..{result.last_day}; "
        f"{sum(result.sent.values())} to send ({out}); {len(result.held)} held back ({report})"
    )
    for (held_by, reason), count in sorted(result.held_reasons.items()):
        typer.echo(f"  held by {held_by}: {reason}: {count}")
