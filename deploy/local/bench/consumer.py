"""Consumer suite: the department runtime against the consumer people usually write by hand.

Both sides read the same deaths from a real broker, decode them with the same codec and apply the same
letter-suppression rule to a fresh SQLite database. They differ only in how they make the work durable:

- **civreg**: one database transaction per batch holding the effects, every event's outcome (de-duplication by
  event id) and the offsets; the Kafka commit after it. A crash at any instant applies nothing twice.
- **hand-written**: the usual "safe" loop: poll one message, apply it in its own transaction, commit the offset
  synchronously. It pays a database commit and a broker round trip per event, and it is still not safe: a crash
  between its database commit and its offset commit applies that event again on restart.

Each pass starts from an empty database and reads the whole topic, so group join time is included on both sides.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from confluent_kafka import Consumer
from rich.console import Console

from civreg.kafka_config import consumer_config
from civreg.settings import Settings
from consumers.runtime import DepartmentConsumer, SqliteStore
from consumers.suppression import department as suppression
from deploy.local.bench.harness import BenchCase, BenchOptions, SuiteResult, run_cases
from deploy.local.kafka import LocalKafka
from deploy.topics import apply_topics
from producers.publisher import Publisher
from producers.simulate import simulate_registrations
from schemas.codec import Codec, LocalSchemaCatalogue
from schemas.models import DeathRegistered
from schemas.topics import Register, registration_topic

__all__ = ["run_consumer_suite"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def _broker(settings: Settings, console: Console) -> Iterator[tuple[Settings, str]]:
    """Settings for a broker to measure on: yours, the dev stack's, or a temporary local one."""
    if not settings.uses_local_broker:
        yield settings, "your cluster"
        return
    if LocalKafka(settings).status().running:
        yield settings, "the dev stack's local broker"
        return
    home = Path(tempfile.mkdtemp(prefix="civreg-bench-kafka-"))
    temporary = settings.model_copy(
        update={"home": home, "local_port": _free_port(), "local_controller_port": _free_port()}
    )
    broker = LocalKafka(temporary)
    try:
        with console.status("starting a temporary local Kafka broker for the benchmark"):
            broker.ensure_jars()
            broker.start(timeout=120)
        yield temporary, "a temporary local broker"
    finally:
        broker.stop()
        shutil.rmtree(home, ignore_errors=True)


def run_consumer_suite(settings: Settings, options: BenchOptions, console: Console) -> SuiteResult:
    """Publish ``options.events`` deaths once, then time both consumers reading and applying all of them."""
    with _broker(settings, console) as (broker_settings, description):
        workdir = Path(tempfile.mkdtemp(prefix="civreg-bench-consumer-"))
        bench = broker_settings.model_copy(
            update={"topic_prefix": f"bench-{uuid.uuid4().hex[:8]}", "database_dir": workdir}
        )
        try:
            apply_topics(bench, (suppression.name,), replication_factor=1, profile="local")
            codec = Codec(LocalSchemaCatalogue())
            deaths = [
                e for e in simulate_registrations(options.events * 3, options.seed) if isinstance(e, DeathRegistered)
            ]
            deaths = deaths[: options.events]
            with console.status(f"publishing {len(deaths)} deaths"), Publisher(bench, codec=codec) as publisher:
                for death in deaths:
                    publisher.publish(death)
            topic = registration_topic(Register.DEATH, bench.topic_prefix)

            def ours() -> int:
                path = workdir / f"ours-{uuid.uuid4().hex}.sqlite3"
                store = SqliteStore(path, suppression.schema)
                try:
                    return DepartmentConsumer(suppression, bench, store, codec=codec).run(until_caught_up=True).messages
                finally:
                    store.close()

            def hand_written() -> int:
                return _hand_written_consumer(bench, topic, codec, workdir, len(deaths))

            with console.status("timing both consumers"):
                cases = run_cases(
                    [
                        BenchCase(
                            "apply deaths to the suppression list",
                            ours,
                            hand_written,
                            "same decode and rule; civreg: batch transaction with offsets, exactly-once effect",
                        )
                    ],
                    max(1, min(options.rounds, 3)),
                )
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    return SuiteResult(
        suite="consumer",
        title=f"Department consumer: {len(deaths)} deaths read and applied (SQLite, real broker)",
        ours_label="civreg runtime",
        baseline_label="hand-written loop",
        cases=cases,
        context={"events": len(deaths), "broker": description, "database": "SQLite (WAL, synchronous=FULL)"},
    )


def _hand_written_consumer(settings: Settings, topic: str, codec: Codec, workdir: Path, expected: int) -> int:
    """Poll one message, apply it in its own transaction, commit its offset synchronously: the common pattern."""
    store = SqliteStore(workdir / f"hand-{uuid.uuid4().hex}.sqlite3", suppression.schema)
    consumer = Consumer(consumer_config(settings, f"bench-hand-{uuid.uuid4().hex}"))
    consumer.subscribe([topic])
    applied = 0
    try:
        while applied < expected:
            message = consumer.poll(1.0)
            if message is None or message.error() is not None:
                continue
            event = codec.decode(message.value())
            with store.transaction() as tx:
                suppression.apply(event, tx)
            consumer.commit(message=message, asynchronous=False)
            applied += 1
    finally:
        consumer.close()
        store.close()
    return applied
