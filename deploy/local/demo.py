"""``civreg demo``: the whole bus on the local embedded broker, end to end, in about a minute.

The local broker runs secured by default, as production does (``civreg dev up --secure``): TLS, one SASL/SCRAM
login per principal and ACLs generated from the agreements (``deploy.acls``), and every step runs as its role: the
register office publishes, the router routes, each department reads its own topic with its own login, an operator
traces and reads lag, the super user only creates topics and ACLs. Passwords stay in the 0600 credentials file
under ``CIVREG_HOME``; nothing prints them. ``--plaintext`` runs without security (one anonymous client).

1. start the local Kafka broker and schema registry (unless the settings name your own), create the logins, the
   ACLs for this run's topics, and the topics;
2. publish a few thousand simulated registrations (births, deaths, marriages, civil partnerships, corrections,
   voids in England-and-Wales proportions) through the idempotent publisher;
3. load each department's simulated customer register (tax, pensions, DVLA, electoral register, passports: the
   same people, as they stood before the registrations, with strangers and near-duplicates);
4. run the router (``civreg route``): each department's agreed events, projected to its agreed fields, onto its own
   topic, with one disclosure per delivery in the ledger, in Kafka transactions; then all six services (the five
   departments and the letter-suppression service) side by side, each reading only its own topic, until each has
   caught up;
5. filter a simulated mailing list through the suppression service, and run each department's scheduled letters
   for the first four weeks; check both against the simulation's answer key (nobody dead is written to);
6. trace one death through the acknowledgement topic: which services received it and what each did; read every
   group's lag as the operator; decode one message of one department's topic (as that department) beside its
   agreement;
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

from confluent_kafka import ConsumerGroupTopicPartitions, IsolationLevel, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec
from rich.console import Console, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from civreg.kafka_config import admin_config, quiet_admin_config
from civreg.settings import Settings
from consumers.departments import CORRESPONDENCE, DEPARTMENTS
from consumers.kit.customer_records import load_customer_records
from consumers.kit.letters import run_letters
from consumers.operations.acknowledgements import AcknowledgementPublisher, EventTrace, trace_event
from consumers.operations.agreement_sample import sample_department_topic
from consumers.operations.running import open_store
from consumers.routing.router import Router, RouterReport, lane_group
from consumers.runtime import BatchReport, Department, DepartmentConsumer
from consumers.runtime.agreements import agreement_for
from consumers.suppression import Action, department, filter_mailing
from deploy.acls import OPERATOR, REGISTER_OFFICE, ROUTER, agreement_departments, secure_local_broker
from deploy.local.agreement_view import sample_table
from deploy.local.kafka import LocalKafka, LocalKafkaError
from deploy.local.registry import LocalRegistry, own_registry_url
from deploy.topics import DEFAULT_DEPARTMENTS, apply_topics
from producers.customer_records import simulate_customer_records
from producers.mailing_list import RecipientStatus, simulate_mailing_list, write_mailing_list
from producers.publisher import Publisher
from producers.simulation import SimulatedPopulation, simulate_population
from schemas.models import DeathRegistered
from schemas.registry import redact_url

__all__ = ["DemoSummary", "Principals", "run_demo", "settings_to_keep_using"]

ADMIN = "admin"


@dataclass(frozen=True)
class Principals:
    """Who each step runs as. On a secure broker: one login per role, looked up by name in the credentials file
    (``Settings.as_principal``); otherwise every step uses the settings as given."""

    settings: Settings
    """The super user's settings (topics and ACLs), or everyone's without security."""
    secure: bool

    def of(self, principal: str) -> Settings:
        """The settings of ``principal`` (a role or a department)."""
        return self.settings.as_principal(principal) if self.secure else self.settings

    def name(self, principal: str) -> str:
        """What the summary says ran a step."""
        return principal if self.secure else "(no login: plaintext)"


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
    routed: dict[str, Counter[str]] = field(default_factory=dict)
    """What the router did per department: delivered ('routed'), withheld (per reason)."""
    routed_dead_letters: int = 0
    trace: EventTrace | None = None
    """One death's acknowledgements: which services received it and what each did."""
    security: str = "PLAINTEXT"
    """How clients reached the broker: PLAINTEXT, or SASL_SSL with one login per role and ACLs."""
    ran_as: dict[str, str] = field(default_factory=dict)
    """Step -> the principal it ran as."""
    lag: dict[str, int] = field(default_factory=dict)
    """Consumer group -> messages behind the end of its topics, as the operator reads it."""
    sample: RenderableType | None = None
    """One department's message decoded beside its agreement (field names and shapes, never values)."""
    sample_outside_agreement: int = 0
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
    secure: bool = True,
    sample_department: str = "dvla",
    console: Console | None = None,
) -> DemoSummary:
    """Run the demo; returns its summary (also printed to ``console``).

    ``secure``: the local broker runs with TLS, SASL/SCRAM and ACLs and every step as its own principal (a broker
    already set up secure stays so either way). Your own cluster (``CIVREG_BOOTSTRAP_SERVERS``) is used with the
    settings as given.
    """
    console = console or Console()
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    prefix = f"{settings.topic_prefix}-demo-{stamp}"
    workdir = settings.state_path("demo", stamp)
    settings = settings.model_copy(update={"topic_prefix": prefix, "database_dir": workdir})
    if secure and settings.uses_local_broker:
        settings = settings.model_copy(update={"local_secure": True})
    summary = DemoSummary(prefix, workdir)
    broker = LocalKafka(settings) if settings.uses_local_broker else None
    registry = LocalRegistry(settings) if settings.uses_local_broker and not own_registry_url(settings) else None
    started_here: list[LocalKafka | LocalRegistry] = []
    try:
        started = time.monotonic()
        if broker is not None:
            settings = _start_broker(broker, console, started_here)
        if registry is not None:
            with console.status("starting the local schema registry (first run downloads it with Maven)"):
                registry.ensure_installed()
                if not registry.is_running():
                    started_here.append(registry)
                registry.start()
            settings = settings.model_copy(update={"registry_url": registry.url})  # every service below uses it
        principals = Principals(settings, secure=broker is not None and broker.security is not None)
        summary.ran_as["topics and ACLs"] = principals.name(ADMIN)
        apply_topics(settings, DEFAULT_DEPARTMENTS, profile=_topic_profile(settings))
        summary.seconds["broker, registry and topics"] = time.monotonic() - started
        summary.schema_ids = f"registry {settings.registry_url}" if settings.registry_url else "local schema catalogue"
        summary.security = (
            f"{settings.security_protocol} (TLS, SASL/{settings.sasl_mechanism}, one login per principal, ACLs from "
            "the agreements)"
            if principals.secure
            else settings.security_protocol
        )
        console.print(
            f"[bold]Kafka[/] {settings.effective_bootstrap_servers} over {summary.security}, topics prefixed "
            f"[bold]{prefix}[/]; schema ids from the {summary.schema_ids}"
        )

        population = _publish(principals, count, seed, console, summary)
        truth = _load_registers(settings, population, seed, summary)
        _route(principals, console, summary, population)
        _consume(principals, console, summary, population)
        _mail(settings, population, mailing_size, seed, summary)
        _letters(settings, population, truth, summary)
        _trace(principals, population, summary)
        _lag(principals, summary)
        _sample(principals, sample_department, summary)
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


def _start_broker(broker: LocalKafka, console: Console, started_here: list[LocalKafka | LocalRegistry]) -> Settings:
    """Start the local broker (unless it runs); when secure, a login per principal and this run's ACLs.

    Returns the settings of its super user (or the plain settings without security).
    """
    with console.status("starting the local Kafka broker (first run downloads it with Maven)"):
        broker.ensure_jars()
        running = broker.status().running
        made_plain = running or (broker.data_dir / "meta.properties").is_file()
        if broker.security is not None and not broker.security.exists() and made_plain:
            raise LocalKafkaError(
                f"the local broker under {broker.base_dir} was set up without TLS, SASL or ACLs (plain 'civreg dev "
                "up'): run 'civreg demo --plaintext', or for the secure demo another CIVREG_HOME (or 'civreg dev "
                "down' and delete that directory)"
            )
        if not running:
            started_here.append(broker)
        broker.start(timeout=120)
    if broker.security is None:
        return broker.settings
    with console.status("one login per principal, ACLs from the agreements for this run's topics"):
        secure_local_broker(broker, agreement_departments(broker.settings.config_files.agreements_dir))
    return broker.client_settings()  # the super user: topics and ACLs only


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
    secured = settings.security_protocol != "PLAINTEXT"
    values = {
        "CIVREG_TOPIC_PREFIX": settings.topic_prefix,
        "CIVREG_DATABASE_DIR": str(settings.database_dir),
        "CIVREG_HOME": str(settings.home),
        "CIVREG_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "CIVREG_REGISTRY_URL": redact_url(settings.registry_url) if settings.registry_url else None,
        "CIVREG_SECURITY_PROTOCOL": settings.security_protocol if secured else None,
        "CIVREG_SSL_CA_LOCATION": str(settings.ssl_ca_location) if settings.ssl_ca_location else None,
        "CIVREG_SASL_USERNAME": settings.sasl_username,
        # the file's path, never a password: pick another principal by CIVREG_SASL_USERNAME
        "CIVREG_SASL_PASSWORD_FILE": str(settings.sasl_password_file) if settings.sasl_password_file else None,
    }
    return [f"export {name}={shlex.quote(value)}" for name, value in values.items() if value]


def _publish(
    principals: Principals, count: int, seed: int, console: Console, summary: DemoSummary
) -> SimulatedPopulation:
    settings = principals.of(REGISTER_OFFICE)
    summary.ran_as["publish registrations"] = principals.name(REGISTER_OFFICE)
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


def _route(principals: Principals, console: Console, summary: DemoSummary, population: SimulatedPopulation) -> None:
    """The router until it has caught up: the departments read only what it writes to their topics."""
    started = time.monotonic()
    summary.ran_as["route (six lanes)"] = principals.name(ROUTER)
    router = Router(principals.of(ROUTER))
    with _progress(console) as progress:
        read = sum(1 for a in router.agreements.values() for e in population.events if e.family in a.registers)
        task = progress.add_task("router (six lanes)", total=read)

        def advance(_department: str, report: RouterReport, _seconds: float) -> None:
            withheld = sum(report.withheld.values())
            progress.advance(task, sum(report.routed.values()) + withheld + sum(report.dead_letters.values()))

        router.on_batch(advance)
        report = router.run(until_caught_up=True)
    for lane in sorted({a.department for a in router.agreements.values()}):
        counts: Counter[str] = Counter(routed=report.routed[lane])
        for (receiver, reason), n in report.withheld.items():
            if receiver == lane:
                counts[f"withheld: {reason}"] += n
        summary.routed[lane] = counts
    summary.routed_dead_letters = sum(report.dead_letters.values())
    summary.seconds["route (one lane per department)"] = time.monotonic() - started


def _consume(principals: Principals, console: Console, summary: DemoSummary, population: SimulatedPopulation) -> None:
    """All six services side by side, each until it has caught up (one progress bar each), each as itself."""
    started = time.monotonic()
    for name in DEPARTMENTS:
        summary.ran_as[f"{name} consumer"] = principals.name(name)
    with _progress(console) as progress, ThreadPoolExecutor(max_workers=len(DEPARTMENTS)) as pool:

        def run(service: Department[Any]) -> BatchReport:
            expected = summary.routed.get(service.name, Counter())["routed"]
            task = progress.add_task(f"{service.name} catching up", total=expected)
            settings = principals.of(service.name)
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
        routed = summary.routed.get(name, Counter())
        counts["withheld"] += sum(n for key, n in routed.items() if key.startswith("withheld"))
        summary.department_outcomes[name] = counts
    summary.outcomes.update(reports[department.name].outcomes)
    summary.seconds["consume (six services, own topics)"] = time.monotonic() - started


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


def _trace(principals: Principals, population: SimulatedPopulation, summary: DemoSummary) -> None:
    """Follow the first registered death through the acknowledgement topic (what ``civreg trace`` shows)."""
    started = time.monotonic()
    summary.ran_as["trace one death"] = principals.name(OPERATOR)
    death = next((event for event in population.events if isinstance(event, DeathRegistered)), None)
    if death is not None:
        summary.trace = trace_event(principals.of(OPERATOR), str(death.event_id))
    summary.seconds["trace one death"] = time.monotonic() - started


def _lag(principals: Principals, summary: DemoSummary) -> None:
    """Every router lane's and department's group lag, read as the operator (describe only: no personal data)."""
    started = time.monotonic()
    summary.ran_as["lag of every group"] = principals.name(OPERATOR)
    settings = principals.of(OPERATOR)
    prefix = settings.topic_prefix
    groups = {f"router lane {name}": lane_group(name, prefix) for name in sorted(DEPARTMENTS)}
    groups |= {f"{name} consumer": service.group_id(prefix) for name, service in DEPARTMENTS.items()}
    admin = AdminClient(admin_config(settings, role="operator-lag"))
    latest: OffsetSpec = OffsetSpec.latest()  # type: ignore[no-untyped-call]
    for label, group in groups.items():
        futures = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], request_timeout=15)
        committed = [tp for tp in futures[group].result().topic_partitions or [] if tp.offset >= 0]
        if not committed:
            continue
        ends = admin.list_offsets(
            {TopicPartition(tp.topic, tp.partition): latest for tp in committed},
            isolation_level=IsolationLevel.READ_COMMITTED,
            request_timeout=15,
        )
        summary.lag[label] = sum(
            max(0, int(ends[TopicPartition(tp.topic, tp.partition)].result().offset) - tp.offset) for tp in committed
        )
    summary.seconds["lag as the operator"] = time.monotonic() - started


def _sample(principals: Principals, department_name: str, summary: DemoSummary) -> None:
    """One message of a department's topic (a death, if it has one), read as that department, beside its
    agreement: the bytes carry its agreed fields and nothing else."""
    started = time.monotonic()
    summary.ran_as[f"{department_name} topic sampled"] = principals.name(department_name)
    settings = principals.of(department_name)
    agreement = agreement_for(department_name, settings.config_files.agreements_dir)
    samples = sample_department_topic(settings, agreement, 1, event_type=DeathRegistered.event_type)
    samples = samples or sample_department_topic(settings, agreement, 1)  # a department without deaths
    chosen = samples[0] if samples else None
    if chosen is not None:
        summary.sample = sample_table(chosen, agreement, settings.sasl_username if principals.secure else None)
        summary.sample_outside_agreement = len(chosen.outside_agreement)
    summary.seconds[f"sample {department_name}'s topic"] = time.monotonic() - started


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
    outcomes.caption = "withheld by the router: not in the service's agreement (e.g. stillbirths): never delivered"

    routing = Table(
        title="Router: each department's topic holds only its agreed events and fields (one disclosure each)",
        show_footer=True,
    )
    routing.add_column("department topic", footer="total")
    reasons = sorted({key for counts in summary.routed.values() for key in counts if key != "routed"})
    for column in ("routed", *reasons):
        total = sum(counts[column] for counts in summary.routed.values())
        routing.add_column(column, justify="right", footer=str(total))
    for name, counts in summary.routed.items():
        routing.add_row(name, *(str(counts[column]) for column in ("routed", *reasons)))
    routing.caption = (
        f"dead-lettered by the router: {summary.routed_dead_letters}; "
        "`civreg disclosures --entry ENTRY` prints what was shared about one registration"
    )

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

    for table in (published, routing, outcomes, mailing, letters, trace):
        console.print(table)
    _print_roles(console, summary)
    console.print(timings)
    console.print(f"schema ids: {summary.schema_ids}")
    console.print(
        f"files: {summary.workdir}/recipients.csv, sendable.csv, suppression-report.csv, "
        "<department>-letters.csv, <department>-letters-held.csv"
    )


def _print_roles(console: Console, summary: DemoSummary) -> None:
    """Who ran each step, the operator's view of lag, and one department's message beside its agreement."""
    ran_as = Table(title="Who ran as whom" + (": one login per role" if summary.security.startswith("SASL") else ""))
    ran_as.add_column("step")
    ran_as.add_column("principal")
    for step, principal in summary.ran_as.items():
        ran_as.add_row(step, principal)
    ran_as.caption = "passwords: the 0600 credentials file under CIVREG_HOME, never printed"

    lag = Table(title="Lag of every group, as the operator reads it (describe only)")
    lag.add_column("group")
    lag.add_column("behind", justify="right")
    for group, behind in summary.lag.items():
        lag.add_row(group, str(behind))

    console.print(ran_as)
    console.print(lag)
    if summary.sample is not None:
        console.print(summary.sample)
