"""``civreg demo``: the whole bus on the local embedded broker, end to end, in about a minute.

1. start the local Kafka broker (unless the settings name your own cluster) and create the topics;
2. publish a few thousand simulated registrations (births, deaths, marriages, civil partnerships, corrections,
   voids in England-and-Wales proportions) through the idempotent publisher;
3. run the letter-suppression service until it has caught up;
4. filter a simulated mailing list through it and check the result against the simulation's answer key;
5. print what happened, and stop the broker it started (unless asked to keep it running).

Each run uses its own topic prefix and database, so runs never mix.
"""

from __future__ import annotations

import csv
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from civreg.settings import Settings
from consumers.running import open_store
from consumers.runtime import BatchReport, DepartmentConsumer
from consumers.suppression import Action, department, filter_mailing
from deploy.local_kafka import LocalKafka
from deploy.topics import apply_topics
from producers.mailing_list import RecipientStatus, simulate_mailing_list, write_mailing_list
from producers.publisher import Publisher
from producers.simulate import SimulatedPopulation, simulate_population

__all__ = ["DemoSummary", "run_demo"]


@dataclass
class DemoSummary:
    """What the demo did; printed at the end and returned for tests."""

    topic_prefix: str
    workdir: Path
    published: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    mailing: Counter[str] = field(default_factory=Counter)
    letters_to_deceased_sent: int = 0
    living_wrongly_suppressed: int = 0
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
    started_here = False
    try:
        started = time.monotonic()
        if broker is not None:
            with console.status("starting the local Kafka broker (first run downloads it with Maven)"):
                broker.ensure_jars()
                started_here = not broker.status().running
                broker.start(timeout=120)
        apply_topics(settings, (department.name,))
        summary.seconds["broker and topics"] = time.monotonic() - started
        console.print(f"[bold]Kafka[/] {settings.effective_bootstrap_servers}, topics prefixed [bold]{prefix}[/]")

        population = _publish(settings, count, seed, console, summary)
        _consume(settings, console, summary)
        _mail(settings, population, mailing_size, seed, summary)
        _print(console, summary)
        return summary
    finally:
        if broker is not None and started_here and not keep_running:
            with console.status("stopping the local Kafka broker"):
                broker.stop()
        elif broker is not None:
            console.print(f"the broker keeps running on {broker.bootstrap}; `civreg dev down` stops it")


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


def _consume(settings: Settings, console: Console, summary: DemoSummary) -> None:
    started = time.monotonic()
    store = open_store(settings, department.name)
    try:
        consumer = DepartmentConsumer(department, settings, store)
        with _progress(console) as progress:
            deaths = summary.published["DeathRegistered"]
            task = progress.add_task("suppression service", total=None)

            def advance(report: BatchReport) -> None:
                progress.advance(task, report.messages)

            consumer.on_batch_committed(advance)
            totals = consumer.run(until_caught_up=True)
            progress.update(task, total=max(totals.messages, deaths), completed=totals.messages)
        summary.outcomes.update(totals.outcomes)
    finally:
        store.close()
    summary.seconds["consume"] = time.monotonic() - started


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
    summary.letters_to_deceased_sent = sum(1 for rid in sent if truth[rid] is RecipientStatus.DECEASED)
    summary.living_wrongly_suppressed = sum(1 for rid in suppressed if truth[rid] is not RecipientStatus.DECEASED)
    summary.mailing.update({f"truth:{status.value}": n for status, n in Counter(truth.values()).items()})
    summary.seconds["mailing run"] = time.monotonic() - started


def _print(console: Console, summary: DemoSummary) -> None:
    published = Table(title="Registrations published", show_footer=True)
    published.add_column("event type", footer="total")
    published.add_column("events", justify="right", footer=str(sum(summary.published.values())))
    for event_type, n in sorted(summary.published.items()):
        published.add_row(event_type, str(n))

    outcomes = Table(title="Letter-suppression service: outcome of every event it received")
    outcomes.add_column("event type")
    outcomes.add_column("outcome")
    outcomes.add_column("events", justify="right")
    for (event_type, outcome), n in sorted(summary.outcomes.items()):
        outcomes.add_row(event_type, outcome, str(n))

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
    mailing.add_row("letters sent to the deceased", f"[bold]{summary.letters_to_deceased_sent}[/]")
    mailing.add_row("living people suppressed", f"[bold]{summary.living_wrongly_suppressed}[/]")

    timings = Table(title="Time")
    timings.add_column("step")
    timings.add_column("seconds", justify="right")
    for step, seconds in summary.seconds.items():
        timings.add_row(step, f"{seconds:.1f}")

    for table in (published, outcomes, mailing, timings):
        console.print(table)
    console.print(f"files: {summary.workdir}/recipients.csv, sendable.csv, suppression-report.csv")
