"""``civreg demo``: the whole bus on the local embedded broker, end to end, in about a minute.

1. start the local Kafka broker and schema registry (unless the settings name your own) and create the topics;
2. publish a few thousand simulated registrations (births, deaths, marriages, civil partnerships, corrections,
   voids in England-and-Wales proportions) through the idempotent publisher;
3. load each department's simulated customer register (tax, pensions, DVLA, electoral register, passports: the
   same people, as they stood before the registrations, with strangers and near-duplicates);
4. run all six services (the five departments and the letter-suppression service) side by side until each has
   caught up;
5. filter a simulated mailing list through the suppression service, and run each department's scheduled letters
   for the first four weeks; check both against the simulation's answer key (nobody dead is written to);
6. trace one death through the acknowledgement topic: which services received it and what each did;
7. print what happened, and stop the broker and registry it started (unless asked to keep them running).

Each run uses its own topic prefix and database, so runs never mix.
"""

from __future__ import annotations

import csv
import shlex
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from civreg.kafka_config import quiet_admin_config
from civreg.settings import Settings
from consumers.departments import CORRESPONDENCE, DEPARTMENTS
from consumers.kit.customer_records import load_customer_records
from consumers.kit.letters import run_letters
from consumers.operations.acknowledgements import AcknowledgementPublisher, EventTrace, trace_event
from consumers.operations.running import open_store
from consumers.runtime import BatchReport, Department, DepartmentConsumer
from consumers.suppression import Action, department, filter_mailing
from deploy.local.kafka import LocalKafka
from deploy.local.registry import LocalRegistry, own_registry_url
from deploy.topics import DEFAULT_DEPARTMENTS, apply_topics
from producers.customer_records import simulate_customer_records
from producers.mailing_list import RecipientStatus, simulate_mailing_list, write_mailing_list
from producers.publisher import Publisher
from producers.simulation import SimulatedPopulation, simulate_population
from schemas.models import DeathRegistered
from schemas.registry import redact_url

__all__ = ["DemoSummary", "run_demo", "settings_to_keep_using"]


@dataclass
class DemoSummary:
    """What the demo did; printed at the end and returned for tests."""

    topic_prefix: str
    workdir: Path
    published: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    """The suppression service's outcomes per (event type, outcome)."""
    department_outcomes: dict[str, Counter[str]] = field(default_factory=dict)
    """Every service's events per outcome, plus 'withheld' (kept from it by its data-sharing agreement)."""
    registers: Counter[str] = field(default_factory=Counter)
    mailing: Counter[str] = field(default_factory=Counter)
    letters: dict[str, Counter[str]] = field(default_factory=dict)
    """Per department: letters due, sent, and held back by whom."""
    mailing_sent_to_deceased: int = 0
    letters_to_deceased_sent: int = 0
    """Mailing-run letters and department letters sent to a person the simulation says is dead (must be 0)."""
    living_wrongly_suppressed: int = 0
    schema_ids: str = ""
    """Where the messages' schema ids came from (the local registry, yours, or the local catalogue)."""
    trace: EventTrace | None = None
    """One death's acknowledgements: which services received it and what each did."""
    seconds: dict[str, float] = field(default_factory=dict)


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )


def run_demo(
    settings: Settings,
    *,
    count: int = 3000,
    mailing_size: int = 2000,
    seed: int = 2016,
    keep_running: bool = False,
    console: Console | None = None,
) -> DemoSummary:
    """Run the demo; returns its summary (also printed to ``console``)."""
    console = console or Console()
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    prefix = f"{settings.topic_prefix}-demo-{stamp}"
    workdir = settings.state_path("demo", stamp)
    settings = settings.model_copy(update={"topic_prefix": prefix, "database_dir": workdir})
    summary = DemoSummary(prefix, workdir)
    broker = LocalKafka(settings) if settings.uses_local_broker else None
    registry = LocalRegistry(settings) if settings.uses_local_broker and not own_registry_url(settings) else None
    started_here: list[LocalKafka | LocalRegistry] = []
    try:
        started = time.monotonic()
        if broker is not None:
            with console.status("starting the local Kafka broker (first run downloads it with Maven)"):
                broker.ensure_jars()
                if not broker.status().running:
                    started_here.append(broker)
                broker.start(timeout=120)
        if registry is not None:
            with console.status("starting the local schema registry (first run downloads it with Maven)"):
                registry.ensure_installed()
                if not registry.is_running():
                    started_here.append(registry)
                registry.start()
            settings = settings.model_copy(update={"registry_url": registry.url})  # every service below uses it
        apply_topics(settings, DEFAULT_DEPARTMENTS, profile=_topic_profile(settings))
        summary.seconds["broker, registry and topics"] = time.monotonic() - started
        summary.schema_ids = f"registry {settings.registry_url}" if settings.registry_url else "local schema catalogue"
        console.print(
            f"[bold]Kafka[/] {settings.effective_bootstrap_servers}, topics prefixed [bold]{prefix}[/]; "
            f"schema ids from the {summary.schema_ids}"
        )

        population = _publish(settings, count, seed, console, summary)
        truth = _load_registers(settings, population, seed, summary)
        _consume(settings, console, summary, population)
        _mail(settings, population, mailing_size, seed, summary)
        _letters(settings, population, truth, summary)
        _trace(settings, population, summary)
        _print(console, summary)
        return summary
    finally:
        if keep_running:
            if started_here:
                console.print("the local broker and registry keep running; `civreg dev down` stops them")
            console.print("to use what the demo left (its topics and department databases), export:", highlight=False)
            console.print("\n".join(settings_to_keep_using(settings)), highlight=False, markup=False, soft_wrap=True)
        else:
            for service in reversed(started_here):
                with console.status(f"stopping the {'broker' if isinstance(service, LocalKafka) else 'registry'}"):
                    service.stop()


def _topic_profile(settings: Settings) -> str | None:
    """``local`` (one replica) when your own cluster has a single broker, where the production profile's three
    replicas could never be placed; otherwise the settings' default (``deploy.topics.default_profile``)."""
    if settings.uses_local_broker:
        return None
    try:
        brokers = AdminClient(quiet_admin_config(settings, [])).list_topics(timeout=10).brokers
    except KafkaException:
        return None  # apply_topics reports an unreachable cluster in one line
    return "local" if len(brokers) == 1 else None


def settings_to_keep_using(settings: Settings) -> list[str]:
    """``export CIVREG_...=...`` lines that point other commands at the demo's topics, databases and stack.

    The demo uses its own topic prefix and database directory, so ``civreg consume`` with default settings would
    find no topics. Secrets are never printed: with your own credentials, keep them set as they are.
    """
    values = {
        "CIVREG_TOPIC_PREFIX": settings.topic_prefix,
        "CIVREG_DATABASE_DIR": str(settings.database_dir),
        "CIVREG_HOME": str(settings.home),
        "CIVREG_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "CIVREG_REGISTRY_URL": redact_url(settings.registry_url) if settings.registry_url else None,
    }
    return [f"export {name}={shlex.quote(value)}" for name, value in values.items() if value]


def _publish(settings: Settings, count: int, seed: int, console: Console, summary: DemoSummary) -> SimulatedPopulation:
    started = time.monotonic()
    population = simulate_population(count, seed)
    with _progress(console) as progress, Publisher(settings) as publisher:
        task = progress.add_task("publishing registrations", total=len(population.events))
        for event in population.events:
            publisher.publish(event)
            summary.published[event.event_type] += 1
            progress.advance(task)
        publisher.flush()
    summary.seconds["simulate and publish"] = time.monotonic() - started
    return population


def _load_registers(
    settings: Settings, population: SimulatedPopulation, seed: int, summary: DemoSummary
) -> dict[str, dict[str, str]]:
    """Each department's customers into its database; returns record id -> person id (the answer key)."""
    started = time.monotonic()
    truth: dict[str, dict[str, str]] = {}
    for name in CORRESPONDENCE:
        records = simulate_customer_records(population, name, seed)
        store = open_store(settings, name)
        try:
            summary.registers[name] = load_customer_records(
                store, DEPARTMENTS[name], (record.row for record in records)
            )
        finally:
            store.close()
        truth[name] = {record.row["record_id"]: record.person_id for record in records}
    summary.seconds["department registers"] = time.monotonic() - started
    return truth


def _consume(settings: Settings, console: Console, summary: DemoSummary, population: SimulatedPopulation) -> None:
    """All six services side by side, each until it has caught up (one progress bar each)."""
    started = time.monotonic()
    with _progress(console) as progress, ThreadPoolExecutor(max_workers=len(DEPARTMENTS)) as pool:

        def run(service: Department[Any]) -> BatchReport:
            expected = sum(1 for event in population.events if event.family in service.registers)
            task = progress.add_task(f"{service.name} catching up", total=expected)
            store = open_store(settings, service.name)
            acknowledgements = AcknowledgementPublisher(settings, service.name, store)
            try:
                consumer = DepartmentConsumer(service, settings, store)
                consumer.on_batch_committed(lambda report: progress.advance(task, report.messages))
                acknowledgements.attach(consumer)
                return consumer.run(until_caught_up=True)
            finally:
                acknowledgements.close()
                store.close()

        reports = dict(zip(DEPARTMENTS, pool.map(run, DEPARTMENTS.values()), strict=True))
    for name, totals in reports.items():
        counts: Counter[str] = Counter()
        for (_, outcome), n in totals.outcomes.items():
            counts[outcome] += n
        counts["withheld"] += sum(totals.withheld.values())
        summary.department_outcomes[name] = counts
    summary.outcomes.update(reports[department.name].outcomes)
    summary.seconds["consume (six services)"] = time.monotonic() - started


def _letters(
    settings: Settings, population: SimulatedPopulation, truth: dict[str, dict[str, str]], summary: DemoSummary
) -> None:
    """Each department's letters for the first four weeks, checked against who the simulation says is dead."""
    started = time.monotonic()
    dead = {person.person_id for person in population.people if person.is_deceased}
    suppression = open_store(settings, department.name)
    try:
        for name, letters_due in CORRESPONDENCE.items():
            store = open_store(settings, name)
            out = summary.workdir / f"{name}-letters.csv"
            try:
                run = run_letters(
                    DEPARTMENTS[name],
                    letters_due,
                    store,
                    suppression,
                    first_day=population.start,
                    days=28,
                    out=out,
                    report=summary.workdir / f"{name}-letters-held.csv",
                )
            finally:
                store.close()
            counts: Counter[str] = Counter(due=run.due, sent=sum(run.sent.values()))
            counts.update(f"held by {letter.held_by}" for letter in run.held)
            with out.open(newline="", encoding="utf-8") as handle:
                to_the_dead = sum(1 for row in csv.DictReader(handle) if truth[name][row["record_id"]] in dead)
            counts["sent to the deceased"] = to_the_dead
            summary.letters_to_deceased_sent += to_the_dead
            summary.letters[name] = counts
    finally:
        suppression.close()
    summary.seconds["letters runs"] = time.monotonic() - started


def _trace(settings: Settings, population: SimulatedPopulation, summary: DemoSummary) -> None:
    """Follow the first registered death through the acknowledgement topic (what ``civreg trace`` shows)."""
    started = time.monotonic()
    death = next((event for event in population.events if isinstance(event, DeathRegistered)), None)
    if death is not None:
        summary.trace = trace_event(settings, str(death.event_id))
    summary.seconds["trace one death"] = time.monotonic() - started


def _mail(settings: Settings, population: SimulatedPopulation, size: int, seed: int, summary: DemoSummary) -> None:
    started = time.monotonic()
    recipients = simulate_mailing_list(population, size, seed)
    recipients_csv = summary.workdir / "recipients.csv"
    with recipients_csv.open("w", newline="", encoding="utf-8") as handle:
        write_mailing_list(recipients, handle)
    sendable, report = summary.workdir / "sendable.csv", summary.workdir / "suppression-report.csv"
    store = open_store(settings, department.name)
    try:
        result = filter_mailing(store, recipients_csv, sendable, report)
    finally:
        store.close()
    summary.mailing.update({action.value: n for action, n in result.actions.items()})
    truth = {r.recipient_id: r.status for r in recipients}
    with sendable.open(newline="", encoding="utf-8") as handle:
        sent = {row["recipient_id"] for row in csv.DictReader(handle)}
    with report.open(newline="", encoding="utf-8") as handle:
        suppressed = {row["recipient_id"] for row in csv.DictReader(handle) if row["action"] == Action.SUPPRESS}
    summary.mailing_sent_to_deceased = sum(1 for rid in sent if truth[rid] is RecipientStatus.DECEASED)
    summary.letters_to_deceased_sent += summary.mailing_sent_to_deceased
    summary.living_wrongly_suppressed = sum(1 for rid in suppressed if truth[rid] is not RecipientStatus.DECEASED)
    summary.mailing.update({f"truth:{status.value}": n for status, n in Counter(truth.values()).items()})
    summary.seconds["mailing run"] = time.monotonic() - started


def _print(console: Console, summary: DemoSummary) -> None:
    published = Table(title="Registrations published", show_footer=True)
    published.add_column("event type", footer="total")
    published.add_column("events", justify="right", footer=str(sum(summary.published.values())))
    for event_type, n in sorted(summary.published.items()):
        published.add_row(event_type, str(n))

    outcomes = Table(title="Six services caught up: the outcome of every event each received", show_footer=True)
    outcomes.add_column("service", footer="total")
    columns = ("applied", "no_matching_record", "needs_review", "dead_lettered", "withheld")
    for column in columns:
        total = sum(counts[column] for counts in summary.department_outcomes.values())
        outcomes.add_column(column.replace("_", " "), justify="right", footer=str(total))
    for name, counts in summary.department_outcomes.items():
        outcomes.add_row(name, *(str(counts[column]) for column in columns))
    outcomes.caption = "withheld: not in the service's data-sharing agreement (e.g. stillbirths): never delivered"

    letters = Table(title="Scheduled letters, first four weeks: sent, and held back by whom", show_footer=True)
    letters.add_column("department", footer="total")
    letter_columns = (
        ("due", "due"),
        ("sent", "sent"),
        ("records", "held by department records"),
        ("review", "held by review queue"),
        ("suppression", "held by suppression service"),
        ("to the dead", "sent to the deceased"),
    )
    for label, counted in letter_columns:
        letters.add_column(label, justify="right", footer=str(sum(c[counted] for c in summary.letters.values())))
    for name, counts in summary.letters.items():
        letters.add_row(name, *(str(counts[counted]) for _, counted in letter_columns))
    letters.caption = (
        "held back by the department's own records (it applied the death), its review queue (a death it could not "
        "match safely may be about the addressee) or the suppression service; to the dead: the answer key's check"
    )

    mailing = Table(title="Mailing run through the suppression service")
    mailing.add_column("")
    mailing.add_column("recipients", justify="right")
    for label, key in (
        ("in the mailing list", None),
        ("sent", "send"),
        ("suppressed (death registered)", "suppress"),
        ("held for review (possible match)", "hold"),
    ):
        value = (
            sum(v for k, v in summary.mailing.items() if not k.startswith("truth:"))
            if key is None
            else (summary.mailing.get(key, 0))
        )
        mailing.add_row(label, str(value))
    mailing.add_row("of whom deceased (simulation's answer key)", str(summary.mailing.get("truth:DECEASED", 0)))
    mailing.add_row("letters sent to the deceased", f"[bold]{summary.mailing_sent_to_deceased}[/]")
    mailing.add_row("living people suppressed", f"[bold]{summary.living_wrongly_suppressed}[/]")

    timings = Table(title="Time")
    timings.add_column("step")
    timings.add_column("seconds", justify="right")
    for step, seconds in summary.seconds.items():
        timings.add_row(step, f"{seconds:.1f}")

    trace = Table(title=f"civreg trace: one death, {summary.trace.event_id if summary.trace else '-'}")
    trace.add_column("service")
    trace.add_column("outcome")
    trace.add_column("note")
    if summary.trace is not None:
        for name, acknowledged in sorted(summary.trace.departments.items()):
            trace.add_row(name, str(acknowledged.latest.outcome), acknowledged.latest.note)
        for name in summary.trace.awaiting:
            trace.add_row(name, "[red]not acknowledged[/]", "")

    for table in (published, outcomes, mailing, letters, trace, timings):
        console.print(table)
    console.print(f"schema ids: {summary.schema_ids}")
    console.print(
        f"files: {summary.workdir}/recipients.csv, sendable.csv, suppression-report.csv, "
        "<department>-letters.csv, <department>-letters-held.csv"
    )
