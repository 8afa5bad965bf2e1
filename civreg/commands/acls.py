"""``civreg acls``: the bus's ACLs, generated from the data-sharing agreements (see ``deploy/acls.py``).

Commands only parse arguments and delegate. ``apply`` needs a super user (locally the ``admin`` principal that
``civreg dev up --secure`` writes into ``dev.env``); ``list`` and ``k8s`` change nothing.
"""

from __future__ import annotations

from typing import Annotated

import typer
from confluent_kafka.admin import AdminClient
from rich.console import Console
from rich.table import Table

from civreg.kafka_config import quiet_admin_config
from civreg.settings import Settings, load_settings
from deploy.acls import (
    K8S_USER_PREFIX,
    AclRule,
    acl_rules,
    agreement_departments,
    apply_acls,
    binding_key,
    current_acls,
    kafka_users_yaml,
    secure_local_broker,
    to_binding,
)
from deploy.local.kafka import LocalKafka

__all__ = ["acls_app"]

acls_app = typer.Typer(
    help="Apply, list or export the bus's ACLs, generated from the agreements in deploy/agreements/.",
    no_args_is_help=True,
)
console = Console()

UserPrefixOption = Annotated[
    str,
    typer.Option(
        "--user-prefix",
        help=f"Prefix of every principal's name: '' locally (tax, router), '{K8S_USER_PREFIX}' for Strimzi users.",
    ),
]
TimeoutOption = Annotated[float, typer.Option("--timeout", min=1.0, help="Seconds to wait for Kafka.")]


def _rules(settings: Settings, user_prefix: str) -> list[AclRule]:
    departments = agreement_departments(settings.config_files.agreements_dir)
    return acl_rules(departments, settings.topic_prefix, user_prefix=user_prefix)


@acls_app.command("apply")
def acls_apply(user_prefix: UserPrefixOption = "", timeout: TimeoutOption = 30.0) -> None:
    """Make the cluster hold exactly the generated ACLs on the bus's topics and groups (idempotent).

    Creates missing bindings and deletes stale ones (a department whose agreement was removed loses its access).
    On the secure local broker it also gives every principal its SCRAM login.
    """
    settings = load_settings()
    kafka = LocalKafka(settings) if settings.uses_local_broker else None
    if kafka is not None and kafka.security is not None and not user_prefix:
        report = secure_local_broker(kafka, agreement_departments(settings.config_files.agreements_dir), timeout)
    else:
        admin = AdminClient(quiet_admin_config(settings, []))
        report = apply_acls(admin, _rules(settings, user_prefix), settings.topic_prefix, timeout)
    console.print(
        f"ACLs on {settings.effective_bootstrap_servers}: {len(report.created)} created, {len(report.deleted)} "
        f"deleted, {report.unchanged} unchanged",
        highlight=False,
    )


@acls_app.command("list")
def acls_list(user_prefix: UserPrefixOption = "", timeout: TimeoutOption = 10.0) -> None:
    """Show the generated ACLs and whether the cluster holds them. Exit code 1 when the cluster differs."""
    settings = load_settings()
    wanted = _rules(settings, user_prefix)
    held = {binding_key(b) for b in current_acls(AdminClient(quiet_admin_config(settings, [])), timeout)}
    table = Table(title=f"ACLs for prefix {settings.topic_prefix!r} on {settings.effective_bootstrap_servers}")
    for column in ("principal", "resource", "name", "pattern", "operation", "on cluster"):
        table.add_column(column)
    missing = 0
    for rule in wanted:
        present = binding_key(to_binding(rule)) in held
        missing += not present
        table.add_row(
            rule.principal,
            rule.resource.value,
            rule.name,
            rule.pattern.value,
            rule.operation,
            "[green]yes[/]" if present else "[red]missing[/]",
        )
    console.print(table)
    if missing:
        typer.echo(f"{missing} ACL(s) missing: run 'civreg acls apply'.", err=True)
        raise typer.Exit(code=1)


@acls_app.command("k8s")
def acls_k8s() -> None:
    """Print the Strimzi KafkaUser resources for the agreements ('civreg acls k8s > deploy/k8s/users.yaml')."""
    settings = load_settings()
    departments = agreement_departments(settings.config_files.agreements_dir)
    typer.echo(kafka_users_yaml(departments, settings.topic_prefix), nl=False)
