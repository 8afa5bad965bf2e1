"""``civreg dev`` (the local Kafka broker) and ``civreg topics`` (declarative topics).

Commands only parse arguments and delegate to ``deploy.local.kafka`` and ``deploy.topics``. Expected failures
(no Java, no Maven, port taken, cluster unreachable) end with one line on stderr and exit code 1, not a
traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from civreg.settings import Settings, load_settings
from deploy.acls import AclApplyError, agreement_departments, principals, secure_local_broker
from deploy.local.dev_env import update_dev_env
from deploy.local.kafka import LocalKafka, LocalKafkaError, probe_cluster
from deploy.local.registry import LocalRegistry, LocalRegistryError, own_registry_url, probe_registry
from deploy.topics import (
    DEFAULT_DEPARTMENTS,
    ApplyReport,
    TopicAction,
    TopicApplyError,
    TopicDefinitionError,
    apply_topics,
    topic_states,
)

__all__ = ["dev_app", "topics_app"]

dev_app = typer.Typer(
    help="Run a real single-node Kafka broker on 127.0.0.1 for development and tests.",
    no_args_is_help=True,
)
topics_app = typer.Typer(
    help="Create and check the bus's topics from deploy/topics.yaml (idempotent).",
    no_args_is_help=True,
)

console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # an error stays one line, however narrow the terminal

T = TypeVar("T")

_EXPECTED = (AclApplyError, LocalKafkaError, LocalRegistryError, TopicApplyError, TopicDefinitionError)

DepartmentsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--department",
        "-d",
        help=f"Department needing a dead-letter topic; repeat for several. Default: {', '.join(DEFAULT_DEPARTMENTS)}.",
    ),
]
ReplicationOption = Annotated[
    int | None,
    typer.Option("--replication-factor", "-r", min=1, help="Override the profile's replication factor."),
]
ProfileOption = Annotated[
    str | None,
    typer.Option(
        "--profile",
        help="Profile in topics.yaml: 'local' or 'production'. Default: local for the local broker.",
    ),
]
TimeoutOption = Annotated[float, typer.Option("--timeout", min=1.0, help="Seconds to wait for Kafka.")]


def _run(action: Callable[[], T]) -> T:
    """Run ``action``; turn an expected failure into a one-line error and exit code 1."""
    try:
        return action()
    except _EXPECTED as exc:
        first, _, rest = str(exc).partition("\n")
        err_console.print(f"[bold red]error:[/] {first}", highlight=False)
        if rest:
            err_console.print(rest, highlight=False, markup=False)
        raise typer.Exit(code=1) from None


def _settings() -> Settings:
    try:
        return load_settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"CIVREG_{'_'.join(str(part) for part in error['loc']).upper()}: {error['msg']}" for error in exc.errors()
        )
        err_console.print(f"[bold red]error:[/] invalid settings: {problems}", highlight=False)
        raise typer.Exit(code=1) from None


def _report_remote(settings: Settings, timeout: float) -> None:
    """The user runs their own cluster: start nothing, say whether it answers."""
    console.print(f"CIVREG_BOOTSTRAP_SERVERS is set: not starting a local broker; using {settings.bootstrap_servers}")
    probe = probe_cluster(settings, timeout=timeout)
    if probe.reachable:
        console.print(
            f"[green]reachable[/]: cluster {probe.cluster_id}, {probe.broker_count} broker(s)",
            highlight=False,
        )
        return
    err_console.print(f"[bold red]error:[/] {settings.bootstrap_servers} is not reachable: {probe.error}")
    raise typer.Exit(code=1)


def _probe_own_registry(settings: Settings, url: str, timeout: float) -> tuple[str, bool]:
    """One line about the user's own registry (CIVREG_REGISTRY_URL), and whether it answered."""
    password = settings.registry_password.get_secret_value() if settings.registry_password else None
    probe = probe_registry(url, username=settings.registry_username, password=password, timeout=timeout)
    if probe.reachable:
        return f"schema registry {probe.url}: [green]reachable[/] (global compatibility {probe.compatibility})", True
    return f"schema registry {probe.url}: [red]not reachable[/]: {escape(probe.error or '')}", False


def _registry_up(settings: Settings, timeout: float) -> None:
    """Start the local schema registry next to the local broker, unless the user has their own."""
    if own := own_registry_url(settings):
        line, _ = _probe_own_registry(settings, own, timeout=min(timeout, 10.0))
        console.print(f"CIVREG_REGISTRY_URL is set: not starting a local registry; {line}", highlight=False)
        return
    registry = LocalRegistry(settings)
    if not registry.installed():
        with console.status(f"Fetching Apicurio Registry {registry.version} with Maven (first run: about 160 MB)..."):
            _run(registry.ensure_installed)
    with console.status(f"Starting the schema registry on {registry.url}..."):
        status = _run(lambda: registry.start(timeout=timeout))
        level = _run(registry.apply_global_compatibility)
    console.print(
        f"[green]Schema registry (Apicurio {status.version}) is up[/] (pid {status.pid}, data in {status.data_dir}); "
        f"global compatibility {level}",
        highlight=False,
    )
    console.print(f"schema registry: [bold]{status.url}[/]", highlight=False)
    console.print(
        f"settings for every later civreg process here (written to {settings.dev_env_file}):\n"
        f"  export CIVREG_REGISTRY_URL={status.url}",
        highlight=False,
    )


def _print_report(report: ApplyReport) -> None:
    table = Table(title=f"Topics on {report.bootstrap} (profile {report.profile}, rf {report.replication_factor})")
    table.add_column("topic")
    table.add_column("action")
    table.add_column("details")
    for change in report.changes:
        style = "dim" if change.actions == (TopicAction.UNCHANGED,) else "green"
        table.add_row(
            change.topic,
            f"[{style}]{', '.join(change.actions)}[/]",
            "; ".join(change.details),
        )
    console.print(table)
    for warning in report.warnings:
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)


SecureOption = Annotated[
    bool,
    typer.Option(
        "--secure",
        help="TLS (a generated local CA), SASL/SCRAM logins per principal and ACLs from the agreements. "
        "Once set up, the broker stays secure. Passwords go to a 0600 file under CIVREG_HOME, never to the screen.",
    ),
]


def _secure_up(kafka: LocalKafka, settings: Settings) -> Settings:
    """Logins and ACLs on the secure local broker; the client settings (never a password) into dev.env."""
    assert kafka.security is not None
    departments = agreement_departments(settings.config_files.agreements_dir)
    report = secure_local_broker(kafka, departments)
    env = kafka.security.client_env()
    update_dev_env(settings.dev_env_file, env)
    console.print(
        f"[green]secure[/]: SASL_SSL with SCRAM-SHA-512, ACLs from {len(departments)} agreement(s) "
        f"({len(report.created)} created, {len(report.deleted)} deleted); principals: "
        f"admin (super user), {', '.join(principals(departments))}",
        highlight=False,
    )
    lines = "\n".join(f"  export {key}={value}" for key, value in env.items())
    console.print(
        f"client settings (written to {settings.dev_env_file}; pick another principal with "
        f"CIVREG_SASL_USERNAME, e.g. tax or register-office):\n{lines}",
        highlight=False,
    )
    return kafka.client_settings()


@dev_app.command("up")
def dev_up(
    departments: DepartmentsOption = None,
    timeout: TimeoutOption = 90.0,
    secure: SecureOption = False,
) -> None:
    """Start the local broker (fetching its jars with Maven on first use) and create the topics."""
    settings = _settings()
    if not settings.uses_local_broker:
        _report_remote(settings, timeout=min(timeout, 10.0))
        console.print("Run 'civreg topics apply' to create the topics on that cluster.")
        return
    if secure:
        settings = settings.model_copy(update={"local_secure": True})
    kafka = LocalKafka(settings)
    if not kafka.jars_present():
        with console.status(f"Fetching Kafka {kafka.version} jars with Maven (first run takes a minute)..."):
            _run(kafka.ensure_jars)
    with console.status(f"Starting Kafka {kafka.version} on {kafka.bootstrap}..."):
        status = _run(lambda: kafka.start(timeout=timeout))
    admin_settings = settings
    if kafka.security is not None:
        with console.status("Creating logins and applying ACLs..."):
            admin_settings = _run(lambda: _secure_up(kafka, settings))
    with console.status("Applying topics..."):
        report = _run(lambda: apply_topics(admin_settings, departments or DEFAULT_DEPARTMENTS, profile="local"))
    console.print(
        f"[green]Kafka {status.version} is up[/] (pid {status.pid}, data in {status.data_dir})",
        highlight=False,
    )
    if report.changed:
        _print_report(report)
    console.print(f"bootstrap servers: [bold]{status.bootstrap}[/]", highlight=False)
    _registry_up(settings, timeout)


@dev_app.command("down")
def dev_down(
    timeout: Annotated[
        float, typer.Option("--timeout", min=1.0, help="Seconds to wait for a clean shutdown before SIGKILL.")
    ] = 30.0,
) -> None:
    """Stop the local broker and schema registry cleanly (their data is kept for the next 'dev up')."""
    settings = _settings()
    registry = LocalRegistry(settings)
    with console.status("Stopping the schema registry..."):
        if _run(lambda: registry.stop(timeout=timeout)):
            console.print("Schema registry stopped.")
    if not settings.uses_local_broker:
        console.print("CIVREG_BOOTSTRAP_SERVERS is set: there is no local broker to stop.")
        return
    kafka = LocalKafka(settings)
    with console.status("Stopping Kafka..."):
        stopped = _run(lambda: kafka.stop(timeout=timeout))
    console.print("Kafka stopped." if stopped else "Kafka was not running.")


@dev_app.command("status")
def dev_status(timeout: TimeoutOption = 5.0) -> None:
    """Show whether the local broker and registry run and answer (or whether your own cluster and registry do).

    Exit code 3 when a local component is not running.
    """
    settings = _settings()
    own = own_registry_url(settings)
    if not settings.uses_local_broker:
        _report_remote(settings, timeout=timeout)
        if settings.registry_url:
            line, reachable = _probe_own_registry(settings, settings.registry_url, timeout)
            console.print(line, highlight=False)
            if not reachable:
                raise typer.Exit(code=1)
        return
    status = _run(LocalKafka(settings).status)
    table = Table(show_header=False, box=None)
    table.add_row("running", "[green]yes[/]" if status.running else "[red]no[/]")
    table.add_row("pid", str(status.pid) if status.pid is not None else "-")
    table.add_row("bootstrap", status.bootstrap)
    table.add_row("version", status.version)
    table.add_row("data dir", str(status.data_dir))
    if status.running:
        probe = probe_cluster(settings, timeout=timeout)
        table.add_row("answers", "[green]yes[/]" if probe.reachable else f"[red]no[/] ({probe.error})")
    registry_running = True
    if own:
        line, _ = _probe_own_registry(settings, own, timeout)
        table.add_row("registry", line)
    else:
        registry = _run(LocalRegistry(settings).status)
        registry_running = registry.running
        table.add_row("registry", "[green]running[/]" if registry.running else "[red]not running[/]")
        table.add_row("registry pid", str(registry.pid) if registry.pid is not None else "-")
        table.add_row("registry url", registry.url)
        table.add_row("registry version", f"Apicurio Registry {registry.version}")
        if registry.running:
            answer = probe_registry(registry.url, timeout=timeout)
            table.add_row(
                "registry answers",
                f"[green]yes[/] (global compatibility {answer.compatibility})"
                if answer.reachable
                else f"[red]no[/] ({escape(answer.error or '')})",
            )
    console.print(table)
    if not status.running or not registry_running:
        raise typer.Exit(code=3)  # like 'systemctl status': scripts can tell "not running" from errors


@topics_app.command("apply")
def topics_apply(
    departments: DepartmentsOption = None,
    replication_factor: ReplicationOption = None,
    profile: ProfileOption = None,
    timeout: TimeoutOption = 30.0,
) -> None:
    """Create missing topics, grow partitions and fix drifted configs; never deletes anything."""
    settings = _settings()
    report = _run(
        lambda: apply_topics(
            settings,
            departments or DEFAULT_DEPARTMENTS,
            replication_factor,
            profile=profile,
            timeout=timeout,
        )
    )
    _print_report(report)


@topics_app.command("list")
def topics_list(
    departments: DepartmentsOption = None,
    replication_factor: ReplicationOption = None,
    profile: ProfileOption = None,
    timeout: TimeoutOption = 10.0,
) -> None:
    """List the topics the bus needs and whether the cluster has them; changes nothing."""
    settings = _settings()
    states = _run(
        lambda: topic_states(
            settings,
            departments or DEFAULT_DEPARTMENTS,
            replication_factor,
            profile=profile,
            timeout=timeout,
        )
    )
    table = Table(title=f"Topics on {settings.effective_bootstrap_servers}")
    for column in ("topic", "kind", "partitions (want)", "rf (want)", "retention.ms"):
        table.add_column(column)
    missing = 0
    for state in states:
        spec = state.spec
        if not state.exists:
            missing += 1
        have_partitions = "[red]missing[/]" if state.partitions is None else str(state.partitions)
        have_rf = "-" if state.replication_factor is None else str(state.replication_factor)
        table.add_row(
            spec.name,
            spec.kind.value,
            f"{have_partitions} ({spec.partitions})",
            f"{have_rf} ({spec.replication_factor})",
            spec.config.get("retention.ms", "-"),
        )
    console.print(table)
    if missing:
        err_console.print(f"{missing} topic(s) missing: run 'civreg topics apply'.")
        raise typer.Exit(code=1)
