"""``civreg suppress check`` and ``civreg mailing filter``: the letter-suppression service's front door."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from civreg.settings import load_settings

__all__ = ["mailing_app", "suppress_app"]

suppress_app = typer.Typer(help="Ask the letter-suppression service about one person.", no_args_is_help=True)
mailing_app = typer.Typer(help="Filter mailing runs through the letter-suppression service.", no_args_is_help=True)


def _database(database: Path | None) -> Path | None:
    """The SQLite file to read, or None for PostgreSQL (CIVREG_POSTGRES_DSN set and no file named)."""
    settings = load_settings()
    if database is None and settings.postgres_dsn is not None:
        return None
    path = database or settings.department_database("suppression")
    if not path.exists():
        raise typer.BadParameter(
            f"{path} does not exist; run `civreg consume --department suppression` first", param_hint="--database"
        )
    return path


Database = Annotated[
    Path | None,
    typer.Option(
        "--database", help="Suppression service SQLite file (default: from settings; PostgreSQL if a DSN is set)."
    ),
]


@suppress_app.command("check")
def check(
    nino: Annotated[str | None, typer.Option(help="National Insurance number.")] = None,
    nhs_number: Annotated[str | None, typer.Option(help="NHS number.")] = None,
    given_names: Annotated[
        str | None, typer.Option(help="Given names (with --family-name and --date-of-birth).")
    ] = None,
    family_name: Annotated[str | None, typer.Option(help="Family name.")] = None,
    date_of_birth: Annotated[str | None, typer.Option(help="Date of birth, YYYY-MM-DD.")] = None,
    postcode: Annotated[str | None, typer.Option(help="Postcode of the address the letter would go to.")] = None,
    database: Database = None,
) -> None:
    """Say whether letters to one person must be suppressed, held for review, or may be sent.

    Exit status: 0 send, 1 suppress, 3 hold (so scripts can use it; 2 is a usage error).
    """
    from consumers.operations.running import open_store
    from consumers.suppression import Action, SuppressionList, decide
    from consumers.suppression.mailing import recipient_from_row

    if not (nino or nhs_number or (given_names and family_name and date_of_birth)):
        raise typer.BadParameter("give --nino, --nhs-number, or --given-names, --family-name and --date-of-birth")
    if date_of_birth:
        try:
            date.fromisoformat(date_of_birth)
        except ValueError:
            raise typer.BadParameter("must be YYYY-MM-DD", param_hint="--date-of-birth") from None
    row = {
        "recipient_id": "-",
        "given_names": given_names or "",
        "family_name": family_name or "",
        "date_of_birth": date_of_birth or "",
        "postcode": postcode or "",
        "nino": nino or "",
        "nhs_number": nhs_number or "",
    }
    store = open_store(load_settings(), "suppression", _database(database))
    try:
        decision = decide(SuppressionList(store.read()), recipient_from_row(row))
    finally:
        store.close()
    detail = f" (matched by {decision.matched_by}: {decision.reason})" if decision.matched_by else ""
    if decision.action is Action.HOLD and not decision.matched_by:
        detail = f" ({decision.reason})"
    typer.echo(f"{decision.action.value.upper()}{detail}")
    raise typer.Exit({Action.SEND: 0, Action.SUPPRESS: 1, Action.HOLD: 3}[decision.action])


@mailing_app.command("filter")
def filter_command(
    recipients: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV of recipients.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the sendable recipients (CSV).")] = Path(
        "sendable.csv"
    ),
    report: Annotated[Path, typer.Option("--report", help="Where to write who was held back and why (CSV).")] = Path(
        "suppression-report.csv"
    ),
    database: Database = None,
) -> None:
    """Split a mailing run: sendable recipients to --out, suppressed and held ones (with reasons) to --report.

    The CSV needs columns recipient_id, given_names, family_name, date_of_birth (YYYY-MM-DD) and postcode;
    nino and nhs_number are used when present; every other column is passed through to --out unchanged.
    The whole file is matched at once against the list (a million recipients take seconds).
    """
    from consumers.operations.running import open_store
    from consumers.suppression import filter_mailing

    store = open_store(load_settings(), "suppression", _database(database))
    try:
        summary = filter_mailing(store, recipients, out, report)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="RECIPIENTS") from None
    finally:
        store.close()
    counts = ", ".join(f"{action.value}: {count}" for action, count in sorted(summary.actions.items()))
    typer.echo(f"{summary.recipients} recipients; {counts}. Sendable: {out}; report: {report}")
