"""Action-taken acknowledgements on the real broker, on both stores: every outcome is published (at least once, even
across a SIGKILL), without personal data; a reviewer's decision is published too; ``civreg trace`` and
``civreg review`` read them back."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterable
from pathlib import Path

import pytest
import typer
from confluent_kafka import Consumer, KafkaError, TopicPartition
from typer.testing import CliRunner

from civreg.commands.review import review_app
from civreg.commands.trace import trace
from civreg.kafka_config import consumer_config
from civreg.settings import Settings
from consumers.operations.acknowledgements import partition_for_key, trace_event
from consumers.operations.running import open_store
from consumers.runtime import Department
from deploy.topics import apply_topics
from producers.publisher import Publisher
from schemas.acknowledgements import AcknowledgementCodec, ActionTaken
from schemas.models import Event
from schemas.topics import acknowledgement_topic
from tests.support.departments import allow_test_departments, review_desk
from tests.support.environment import REPO, settings_env
from tests.support.factories import NINO, make_death, make_person, make_void
from tests.support.routing import route, run_department

pytestmark = pytest.mark.kafka


def publish(settings: Settings, events: Iterable[Event]) -> None:
    with Publisher(settings) as publisher:
        for event in events:
            publisher.publish(event)


def read_acknowledgements(settings: Settings) -> list[tuple[int, bytes, ActionTaken]]:
    """Every message on the acknowledgement topic: (partition, raw value, decoded)."""
    topic = acknowledgement_topic(settings.topic_prefix)
    consumer = Consumer(consumer_config(settings, f"reader-{uuid.uuid4()}", **{"enable.partition.eof": True}))
    codec = AcknowledgementCodec()
    found: list[tuple[int, bytes, ActionTaken]] = []
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        at_end: set[int] = set()
        for _ in range(200):
            for message in consumer.consume(1000, 0.5):
                error = message.error()
                if error is not None:
                    assert error.code() == KafkaError._PARTITION_EOF, error.str()
                    at_end.add(message.partition() or 0)
                    continue
                value = message.value() or b""
                found.append((message.partition() or 0, value, codec.decode(value)))
            if at_end >= set(partitions):
                break
    finally:
        consumer.close()
    return found


def consume(settings: Settings, department: str | Department[object] = "suppression") -> None:
    run_department(settings, department, until_caught_up=True, handle_signals=False)


def owed(settings: Settings, department: str | Department[object] = "suppression") -> int:
    store = open_store(settings, department)
    try:
        return int(store.read().scalar("SELECT COUNT(*) FROM civreg_unacknowledged"))
    finally:
        store.close()


def test_every_outcome_is_acknowledged_keyed_by_event_and_without_personal_data(bus_store_settings: Settings) -> None:
    death = make_death(entry_number=1, deceased=make_person(given_names="Margaret Anne", family_name="Morgan"))
    unknown_void = make_void(of=make_death(entry_number=2))
    publish(bus_store_settings, [death, make_void(of=death), unknown_void, death])
    consume(bus_store_settings)

    acks = read_acknowledgements(bus_store_settings)
    by_event = {str(ack.event_id): ack for _p, _v, ack in acks}
    assert len(acks) == 3, "the redelivered death is a duplicate: no second outcome, no second acknowledgement"
    assert by_event[str(death.event_id)].outcome == "applied"
    assert by_event[str(death.event_id)].note == "suppressed"
    assert by_event[str(unknown_void.event_id)].outcome == "no_matching_record"
    for partition, value, ack in acks:
        assert ack.department == "suppression"
        assert ack.register.value == "DEATH"
        assert not ack.reviewed
        assert partition == partition_for_key(ack.key, 6), "trace reads only the partition the producer chose"
        for personal in (b"Margaret", b"Morgan", NINO.encode(), b"LS1", b"Leeds General Infirmary"):
            assert personal not in value
    assert owed(bus_store_settings) == 0


def test_acknowledgements_owed_by_a_killed_consumer_are_published_by_the_next_run(bus_store_settings: Settings) -> None:
    deaths = [make_death(entry_number=n, deceased=make_person(given_names=f"Person{n}")) for n in range(1, 41)]
    publish(bus_store_settings, deaths)
    route(bus_store_settings)
    crashed = subprocess.run(  # a consumer with no publisher at all, killed right after its 2nd database commit
        [sys.executable, "-m", "tests.support.crashing_consumer", "2", "10"],
        check=False,
        env=settings_env(bus_store_settings),
        cwd=REPO,
        capture_output=True,
        timeout=120,
    )
    assert crashed.returncode == -9, crashed.stderr.decode()[-2000:]
    # Two batches of at most 10 (a batch takes what has arrived, without waiting to fill): every outcome is owed.
    store = open_store(bus_store_settings, "suppression")
    try:
        applied = int(store.read().scalar("SELECT COUNT(*) FROM civreg_event_outcomes"))
    finally:
        store.close()
    assert 0 < applied <= 20
    assert owed(bus_store_settings) == applied
    assert read_acknowledgements(bus_store_settings) == []

    consume(bus_store_settings)
    acknowledged = {str(ack.event_id) for _p, _v, ack in read_acknowledgements(bus_store_settings)}
    assert acknowledged == {str(death.event_id) for death in deaths}
    assert owed(bus_store_settings) == 0


# The review desk and trace, through the commands -------------------------------------------------------------


@pytest.fixture
def desk(monkeypatch: pytest.MonkeyPatch, bus_store_settings: Settings) -> Department[object]:
    """A department that holds every death for review, registered with the bus alongside the real ones."""
    from consumers import departments

    department = review_desk()
    allow_test_departments(monkeypatch, department)
    # The bus as this test sees it: the suppression service and the desk (other departments stay out of trace).
    bus = {"suppression": departments.DEPARTMENTS["suppression"], department.name: department}
    monkeypatch.setattr(departments, "DEPARTMENTS", bus)
    # ... and as the router and trace see it: agreements for exactly those two (the desk under suppression's terms).
    config = desk_config(bus_store_settings)
    monkeypatch.setenv("CIVREG_CONFIG_DIR", str(config))
    apply_topics(desk_settings(bus_store_settings), [department.name], replication_factor=1, profile="local")
    for name, value in settings_env(bus_store_settings).items():
        if name.startswith("CIVREG_"):
            monkeypatch.setenv(name, value)
    if bus_store_settings.postgres_dsn is None:
        monkeypatch.delenv("CIVREG_POSTGRES_DSN", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    for module in ("civreg.commands.review", "civreg.commands.trace"):  # keep CliRunner's stderr unbound
        monkeypatch.setattr(f"{module}.configure_logging", lambda *args, **kwargs: None)
    return department  # type: ignore[return-value]


def desk_config(settings: Settings) -> Path:
    """A config directory beside the test's databases whose agreements are suppression's and the desk's."""
    config = Path(settings.database_dir or settings.home) / "desk-config"
    if not config.exists():
        shutil.copytree(settings.config_dir, config)
        agreements = config / "agreements"
        for path in agreements.glob("*.yaml"):
            if path.stem != "suppression":
                path.unlink()
        agree_like_suppression(agreements, "deskcheck")
    return config


def agree_like_suppression(agreements: Path, name: str) -> None:
    text = (agreements / "suppression.yaml").read_text()
    (agreements / f"{name}.yaml").write_text(text.replace("department: suppression\n", f"department: {name}\n"))


def desk_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"config_dir": desk_config(settings)})


def cli() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(review_app, name="review")
    app.command("trace")(trace)
    return app


def test_a_reviewers_decision_is_applied_acknowledged_and_traced(
    bus_store_settings: Settings, desk: Department[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    from consumers import departments

    first = make_death(entry_number=1, deceased=make_person(given_names="Margaret Anne", family_name="Morgan"))
    second = make_death(entry_number=2, deceased=make_person(given_names="Ada", family_name="Lovelace"))
    settings = desk_settings(bus_store_settings)  # the router gives the desk a lane
    publish(settings, [first, second])
    consume(settings)
    consume(settings, desk)
    runner = CliRunner()

    listed = runner.invoke(cli(), ["review", "list", "--department", "deskcheck"])
    assert listed.exit_code == 0, listed.output
    for expected in (str(first.event_id), str(second.event_id), "R-1, R-2", first.entry.key, "DeathRegistered"):
        assert expected in listed.output
    assert "Margaret" not in listed.output and "Lovelace" not in listed.output

    resolved = runner.invoke(
        cli(), ["review", "resolve", str(first.event_id), "-d", "deskcheck", "--record", "R-2", "--by", "alice"]
    )
    assert resolved.exit_code == 0, resolved.output
    assert "applied" in resolved.output and "acknowledgement published" in resolved.output
    no_match = runner.invoke(cli(), ["review", "resolve", str(second.event_id), "-d", "deskcheck", "--no-match"])
    assert no_match.exit_code == 0, no_match.output
    assert "no_matching_record" in no_match.output

    again = runner.invoke(cli(), ["review", "resolve", str(first.event_id), "-d", "deskcheck", "--no-match"])
    assert again.exit_code == 1 and "already resolved" in again.output
    both = ["review", "resolve", str(first.event_id), "-d", "deskcheck", "--no-match", "--record", "R-1"]
    assert runner.invoke(cli(), both).exit_code == 2
    missing = runner.invoke(cli(), ["review", "resolve", str(uuid.uuid4()), "-d", "deskcheck", "--no-match"])
    assert missing.exit_code == 1 and "no review item" in missing.output
    assert "(0)" in runner.invoke(cli(), ["review", "list", "-d", "deskcheck"]).output

    store = open_store(settings, desk)
    try:
        assert store.read().execute("SELECT record_id, event_id FROM desk_records") == [("R-2", str(first.event_id))]
        outcome = "SELECT outcome, note FROM civreg_event_outcomes WHERE event_id = ?"
        assert store.read().one(outcome, (str(second.event_id),)) == (
            "no_matching_record",
            "reviewed: reviewer: no record matches",
        )
    finally:
        store.close()

    traced = trace_event(settings, str(first.event_id))
    held = traced.departments["deskcheck"]
    assert held.acknowledgements == 2, "needs_review when consumed, then the reviewer's decision"
    assert (held.latest.outcome, held.latest.reviewed) == ("applied", True)
    assert held.latest.note == "reviewed: record R-2 marked deceased"
    assert traced.departments["suppression"].latest.outcome == "applied"
    assert traced.awaiting == ()
    assert traced.scanned < 8, "only the event's partition is read"

    # A third agreement on file: trace expects its acknowledgement (entitled = the agreements' allow-lists).
    monkeypatch.setitem(departments.DEPARTMENTS, "neverruns", review_desk("neverruns"))
    agree_like_suppression(settings.config_files.agreements_dir, "neverruns")
    shown = runner.invoke(cli(), ["trace", str(first.event_id)])
    assert shown.exit_code == 2, shown.output  # an entitled department has not acknowledged
    for expected in (
        "deskcheck",
        "suppression",
        "reviewed: record R-2 marked deceased",
        "not acknowledged yet: neverruns",
    ):
        assert expected in shown.output
    assert "Margaret" not in shown.output and "alice" not in shown.output
    monkeypatch.delitem(departments.DEPARTMENTS, "neverruns")
    (settings.config_files.agreements_dir / "neverruns.yaml").unlink()
    complete = runner.invoke(cli(), ["trace", str(first.event_id)])
    assert complete.exit_code == 0, complete.output
    assert "every entitled department has acknowledged (deskcheck, suppression)" in complete.output
    nothing = runner.invoke(cli(), ["trace", str(uuid.uuid4())])
    assert nothing.exit_code == 2 and "no department has acknowledged" in nothing.output
    assert runner.invoke(cli(), ["trace", "not-a-uuid"]).exit_code == 2


def test_trace_since_skips_what_came_before(bus_store_settings: Settings) -> None:
    from datetime import UTC, datetime, timedelta

    death = make_death()
    publish(bus_store_settings, [death])
    consume(bus_store_settings)
    assert trace_event(bus_store_settings, str(death.event_id)).departments
    later = trace_event(bus_store_settings, str(death.event_id), since=datetime.now(UTC) + timedelta(hours=1))
    assert later.departments == {} and later.scanned == 0
