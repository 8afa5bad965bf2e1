"""``civreg schemas``: check schema changes against the compatibility policy, and publish schemas to the registry.

Parses arguments and delegates to ``deploy.schema_evolution``. Exit codes: 0 fine, 1 a rule is broken (check) or
the registry refused a schema (register), 2 the check could not run (no registry, registry down, bad revision).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from civreg.codec_from_settings import open_registry_resolver
from civreg.commands.groups import command_group
from civreg.settings import load_settings
from deploy.schema_evolution import (
    CheckReport,
    GitSchemaError,
    RegisterReport,
    check_against_git,
    check_against_registry,
    register_schemas,
)
from deploy.schema_policy import PolicyError, load_policy
from schemas.registry import RegistryError

__all__ = ["schemas_app"]

schemas_app = command_group(
    "Check Avro schema changes against the compatibility policy and publish them to the schema registry."
)
console = Console()
err_console = Console(stderr=True, soft_wrap=True)

_CANNOT_RUN = (RegistryError, GitSchemaError, PolicyError)


def _fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(code=code)


def _print_check(report: CheckReport) -> None:
    table = Table(title=f"Working tree schemas against {report.source}")
    for column in ("subject (without prefix)", "rule", "compared with", "result"):
        table.add_column(column)
    for check in report.checks:
        compared = ", ".join(check.compared_with) or "nothing (new subject)"
        result = "[green]compatible[/]" if check.ok else f"[red]{len(check.violations)} problem(s)[/]"
        table.add_row(check.subject.key, check.level.value, compared, result)
    console.print(table)
    for line in report.problems():
        err_console.print(f"[bold red]incompatible:[/] {escape(line)}", highlight=False)


@schemas_app.command("check")
def schemas_check(
    against_git: Annotated[
        str | None,
        typer.Option(
            "--against-git",
            metavar="REV",
            help="Compare with the schemas at this git revision (e.g. origin/main) instead of the registry.",
        ),
    ] = None,
    repo: Annotated[
        Path | None,
        typer.Option(help="Git repository holding schemas/avro (default: the one this checkout's schemas are in)."),
    ] = None,
) -> None:
    """Fail (exit 1) naming subject, field and rule if the working tree's schemas break the compatibility policy.

    Compares with every version in the registry (CIVREG_REGISTRY_URL, or the local one 'civreg dev up' runs), or
    with a git revision.
    """
    settings = load_settings()
    try:
        policy = load_policy(settings.config_files.compatibility_policy)
        if against_git is not None:
            report = check_against_git(against_git, settings.topic_prefix, repo=repo, policy=policy)
        else:
            resolver = open_registry_resolver(settings)
            if resolver is None:
                raise _fail(
                    "no schema registry is configured or running (set CIVREG_REGISTRY_URL or run 'civreg dev up'); "
                    "pass --against-git REV to compare with a git revision instead"
                )
            report = check_against_registry(resolver, settings.topic_prefix, policy=policy)
    except _CANNOT_RUN as exc:
        raise _fail(str(exc)) from None
    _print_check(report)
    if not report.ok:
        raise typer.Exit(code=1)
    console.print("[green]compatible[/]: every subject keeps its compatibility rule.")


def _print_register(report: RegisterReport) -> None:
    table = Table(title=f"Schemas registered in {report.url}")
    for column in ("subject", "rule", "version", "schema id", "status"):
        table.add_column(column)
    for item in report.subjects:
        style = {"registered": "green", "unchanged": "dim", "refused": "red"}[item.status]
        table.add_row(
            item.subject.subject,
            item.level.value,
            "-" if item.version is None else str(item.version),
            "-" if item.schema_id is None else str(item.schema_id),
            f"[{style}]{item.status}[/]",
        )
    console.print(table)
    for item in report.subjects:
        if item.error:
            err_console.print(f"[bold red]refused:[/] {escape(item.error)}", highlight=False)


@schemas_app.command("register")
def schemas_register() -> None:
    """Publish this checkout's schemas: set each subject's rule from schema-compatibility.yaml, register.

    Registers the contract's subjects and each department's projections derived from the agreements in
    CIVREG_CONFIG_DIR, under the subjects the router writes with (<prefix>.department.<name>-<record>), so the
    router can run with CIVREG_REGISTRY_AUTO_REGISTER=false.
    """
    from consumers.runtime.agreements import load_agreements

    settings = load_settings()
    try:
        agreements = load_agreements(settings.config_files.agreements_dir)
        policy = load_policy(settings.config_files.compatibility_policy)
        resolver = open_registry_resolver(settings)
        if resolver is None:
            raise _fail("no schema registry is configured or running (set CIVREG_REGISTRY_URL or run 'civreg dev up')")
        report = register_schemas(resolver, settings.topic_prefix, policy=policy, agreements=agreements)
    except _CANNOT_RUN as exc:
        raise _fail(str(exc)) from None
    _print_register(report)
    if not report.ok:
        raise typer.Exit(code=1)
