"""``civreg agreements validate | show``: the data-sharing agreements, checked, and set beside what travels.

Parses arguments and delegates to ``consumers.runtime.agreements`` (loading and checks) and
``consumers.operations.agreement_sample`` (messages of a department's topic, read as the department).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from civreg.commands.groups import command_group
from civreg.settings import Settings, load_settings

__all__ = ["agreements_app", "principal_for"]

agreements_app = command_group(
    "The data-sharing agreements (deploy/agreements/): check them, and show one beside its department's topic."
)
console = Console()


def principal_for(settings: Settings, department: str) -> Settings:
    """``settings`` as the department's own login when a credentials file holds every role's password
    (``CIVREG_SASL_PASSWORD_FILE``); otherwise as they are (your own login, or an unsecured broker)."""
    if settings.sasl_username is not None and settings.sasl_password_file is not None:
        return settings.as_principal(department)
    return settings


@agreements_app.command("validate")
def agreements_validate() -> None:
    """Load every agreement in CIVREG_CONFIG_DIR and check it against the contract and its department's handlers.

    Errors name the file and line (an unknown field or event type, a missing legal gateway, a required field left
    out) or the department and rule; exit code 1 when any agreement fails.
    """
    from consumers.departments import DEPARTMENTS
    from consumers.runtime.agreements import load_agreements

    settings = load_settings()
    agreements = load_agreements(settings.config_files.agreements_dir)  # AgreementError: file and line, exit 1
    table = Table(title=f"Agreements in {settings.config_files.agreements_dir}")
    for column in ("department", "event types", "allowed fields", "check"):
        table.add_column(column)
    problems: list[str] = []
    for name, agreement in sorted(agreements.items()):
        department = DEPARTMENTS.get(name)
        found = agreement.problems(department) if department is not None else []
        problems += found
        check = "[red]problems[/]" if found else "[green]ok[/]"
        if department is None:
            check = "[yellow]no service declared (router only)[/]"
        fields = sum(len(paths) for paths in agreement.fields_allowed.values())
        table.add_row(name, str(len(agreement.event_types)), str(fields), check)
    console.print(table)
    for problem in problems:
        typer.echo(f"error: {problem}", err=True)
    if problems:
        raise typer.Exit(1)


@agreements_app.command("show")
def agreements_show(
    department: Annotated[str, typer.Argument(help="The department, e.g. dvla.")],
    sample: Annotated[
        int,
        typer.Option(
            "--sample",
            min=0,
            max=100,
            help="Also decode this many messages of the department's own topic, read as the department's "
            "principal, and check every field they carry against the agreement (values are never shown).",
        ),
    ] = 0,
    event_type: Annotated[
        str | None,
        typer.Option("--event-type", help="Sample only messages of this event type, e.g. DeathRegistered."),
    ] = None,
) -> None:
    """Print a department's agreement: controller, purpose, legal gateway, event types and allowed fields.

    With --sample N, the first N messages of its topic decoded with the schema they were written with, field by
    field beside the agreement. On a secure broker the messages are read with the department's own login (from
    CIVREG_SASL_PASSWORD_FILE). Exit code 1 if a sampled message carries a field outside the agreement.
    """
    from consumers.operations.agreement_sample import sample_department_topic
    from consumers.runtime.agreements import agreement_for
    from deploy.local.agreement_view import agreement_table, sample_table

    settings = load_settings()
    agreement = agreement_for(department, settings.config_files.agreements_dir)
    console.print(agreement_table(agreement, settings.topic_prefix))
    if not sample:
        return
    reader = principal_for(settings, department)
    try:
        samples = sample_department_topic(reader, agreement, sample, event_type=event_type)
    except LookupError as exc:
        raise typer.BadParameter(str(exc), param_hint="DEPARTMENT") from None
    if not samples:
        console.print(f"{department}'s topic holds no messages yet (run 'civreg route')")
    for sampled in samples:
        console.print(sample_table(sampled, agreement, reader.sasl_username))
    if any(sampled.outside_agreement for sampled in samples):
        raise typer.Exit(1)
