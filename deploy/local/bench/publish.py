"""The publish suite of ``civreg bench``: four ways to put the same simulated events on one broker, in one run.

- **raw produce (ceiling)**: the events' wire bytes, encoded before timing, produced from Python by an
  idempotent, acks=all ``Producer`` with this project's producer settings, a counter as delivery callback and
  ``poll(0)`` every 256 messages. Nothing in Python can publish faster with the same guarantees.
- **Publisher.publish**: this project's library, from events already validated in memory.
- **civreg publish FILE**: the command's whole path from a JSONL file: parse, validate every row, Avro, registry
  framing, produce, wait for every acknowledgement.
- **stock confluent-kafka**: what a careful user writes with the stock client for the same file: ``json.loads``,
  pydantic ``model_validate`` and ``model_dump``, ``AvroSerializer`` in a ``SerializingProducer`` with the same
  producer settings, ``poll(0)`` per message, a delivery counter.

Every pass creates its producer, sends every event and waits for every acknowledgement (idempotence and
acks=all on in all four); each returns how many the broker confirmed, and a pass that loses one fails the run.
The stage table (parse, validation, encode, Kafka produce, acknowledgements, other; µs per event) is timed inside
``civreg publish``'s own passes (``producers.stage_times``), and the fastest pass's profile is printed beside the
figures with the bound it sets.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from rich.console import Console
from rich.table import Table

from civreg.codec_from_settings import open_registry_resolver
from civreg.kafka_config import admin_config, producer_config
from civreg.settings import Settings
from deploy.local.bench.codec import _registry
from deploy.local.bench.consumer import _broker
from deploy.local.bench.harness import BenchCase, BenchOptions, SuiteResult, Target, fixtures_out_of_gc, run_cases
from deploy.topics import apply_topics
from producers.event_files import write_event_file
from producers.file_publishing import publish_file
from producers.publisher import CONTENT_TYPE, Publisher
from producers.simulation import simulate_registrations
from producers.stage_times import StageTimes
from schemas.catalogue import EVENT_TYPES, event_schema
from schemas.codec import Codec, to_avro
from schemas.models import EVENT_MODELS, Event
from schemas.registry import load_client_library, registry_client
from schemas.topics import registration_topics

__all__ = ["run_publish_suite"]

_POLL_EVERY = 256
PUBLISH_CEILING_SHARE = 0.25
"""Target: ``civreg publish`` at least this share of the raw produce rate."""
PUBLISH_OVER_STOCK = 1.3
"""Target: ``civreg publish`` at least this many times the stock path's rate."""


class _Counter:
    """A delivery callback that only counts: the cheapest a careful user can make it."""

    def __init__(self) -> None:
        self.delivered = 0
        self.failed = 0

    def __call__(self, error: Any, _message: Any) -> None:
        if error is None:
            self.delivered += 1
        else:
            self.failed += 1


def _confirmed(counter: _Counter, expected: int, what: str) -> int:
    if counter.delivered != expected or counter.failed:
        raise RuntimeError(f"{what}: {counter.delivered} of {expected} delivered, {counter.failed} failed")
    return counter.delivered


def run_publish_suite(settings: Settings, options: BenchOptions, console: Console) -> SuiteResult:  # noqa: PLR0915
    """Publish ``options.publish_events`` simulated events four ways; returns the timed cases and the targets."""
    load_client_library()
    from confluent_kafka import SerializingProducer
    from confluent_kafka.schema_registry import topic_record_subject_name_strategy
    from confluent_kafka.schema_registry.avro import AvroSerializer
    from confluent_kafka.serialization import StringSerializer

    rounds = max(1, min(options.rounds, 3))
    workdir = Path(tempfile.mkdtemp(prefix="civreg-bench-publish-"))
    try:
        with _broker(settings, console) as (broker_settings, broker), _registry(settings, console) as (url, registry):
            bench = broker_settings.model_copy(
                update={
                    "registry_url": url,
                    "topic_prefix": f"bench-{uuid.uuid4().hex[:8]}",
                    "registry_auto_register": True,
                }
            )
            apply_topics(bench, (), replication_factor=1, profile="local")
            resolver = open_registry_resolver(bench, url)
            assert resolver is not None
            codec = Codec(resolver, topic_prefix=bench.topic_prefix)
            topics = registration_topics(bench.topic_prefix)
            events = list(simulate_registrations(options.publish_events, options.seed))
            path = workdir / "events.jsonl"
            write_event_file(path, events)
            encoded = [(topics[e.family], e.entry.key, codec.encode(e, topics[e.family]), _headers(e)) for e in events]
            config = producer_config(bench, role="bench")

            def raw() -> int:
                counter = _Counter()
                producer = Producer(config)
                for count, (topic, key, value, headers) in enumerate(encoded, start=1):
                    _produce(producer, topic, key, value, headers, counter=counter)
                    if count % _POLL_EVERY == 0:
                        producer.poll(0)
                producer.flush(120)
                return _confirmed(counter, len(encoded), "raw produce")

            def library() -> int:
                with Publisher(bench, codec=codec) as publisher:
                    for event in events:
                        publisher.publish(event)
                return publisher.delivered

            profiles: list[StageTimes] = []

            def command() -> int:
                timings = StageTimes()
                started = time.perf_counter()
                result = publish_file(path, bench, codec=codec, timings=timings)
                timings.total = time.perf_counter() - started
                if result.delivered != len(events):
                    raise RuntimeError(f"civreg publish: {result.delivered} of {len(events)} delivered")
                profiles.append(timings)
                return result.delivered

            password = bench.registry_password.get_secret_value() if bench.registry_password else None
            client = registry_client(url, username=bench.registry_username, password=password)
            strategy = {"subject.name.strategy": topic_record_subject_name_strategy, "auto.register.schemas": True}
            serializers = {t: AvroSerializer(client, event_schema(t).schema_str, conf=strategy) for t in EVENT_TYPES}

            def stock() -> int:
                counter = _Counter()
                producers = {
                    t: SerializingProducer({**config, "key.serializer": StringSerializer(), "value.serializer": s})
                    for t, s in serializers.items()
                }
                with path.open("rb") as handle:
                    for line in handle:
                        data = json.loads(line)
                        model = EVENT_MODELS[data.pop("event_type")]
                        event = model.model_validate(data)
                        producer = producers[event.event_type]
                        producer.produce(
                            topics[event.family],
                            key=event.entry.key,
                            value=to_avro(event),
                            headers=_headers(event),
                            on_delivery=counter,
                        )
                        producer.poll(0)
                for producer in producers.values():
                    producer.flush(120)
                return _confirmed(counter, len(events), "stock confluent-kafka")

            cases = [
                BenchCase("raw produce of encoded bytes (ceiling)", raw, None, "idempotent, acks=all, batched poll"),
                BenchCase("Publisher.publish (validated events)", library, stock, "baseline: stock path from file"),
                BenchCase("civreg publish FILE", command, stock, "parse, validate, Avro, registry framing, produce"),
            ]
            console.print(f"publish benchmark: {len(events)} events, {rounds} timed passes each, {broker}, {registry}")
            # The fixtures held for every pass (the events as models, their encoded bytes) are frozen out of the
            # garbage collector (``fixtures_out_of_gc``); every pass below runs under the same condition.
            try:
                with fixtures_out_of_gc():
                    results = run_cases(cases, rounds)
            finally:
                AdminClient(admin_config(bench)).delete_topics(list(topics.values()))  # a shared broker stays small
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    ceiling, library_case, command_case = results
    fastest = min(profiles, key=lambda timings: timings.total)  # the pass closest to the best figure reported
    stages = fastest.per_event_us(len(events))
    _print_profile(stages, ceiling.ours_us, fastest.workers, console)
    targets = [
        Target("civreg publish ÷ raw produce ceiling", ceiling.ours_us / command_case.ours_us, PUBLISH_CEILING_SHARE),
        Target("civreg publish ÷ stock confluent-kafka", (command_case.ratio or 0.0), PUBLISH_OVER_STOCK),
    ]
    context: dict[str, Any] = {
        "events": len(events),
        "rounds": rounds,
        "broker": broker,
        "registry": registry,
        "events per second": {
            "raw produce (ceiling)": round(1e6 / ceiling.ours_us),
            "Publisher.publish": round(1e6 / library_case.ours_us),
            "civreg publish": round(1e6 / command_case.ours_us),
            "stock confluent-kafka": round(1e6 / (command_case.baseline_us or float("inf"))),
        },
        "civreg publish stages, µs per event": stages,  # timed inside its fastest pass
        "validating workers": fastest.workers,
        "bound: ceiling ÷ (validating pass + ceiling)": round(
            ceiling.ours_us / (_validating_pass(stages) + ceiling.ours_us), 3
        ),
    }
    return SuiteResult(
        "publish",
        f"Publishing {len(events)} events, µs per event (best of the passes; real broker, acks=all, idempotent)",
        "civreg",
        "stock confluent-kafka",
        results,
        context,
        targets,
    )


def _headers(event: Event) -> list[tuple[str, str | bytes | None]]:
    return [
        ("event_type", event.event_type.encode()),
        ("event_id", str(event.event_id).encode()),
        ("content-type", CONTENT_TYPE.encode()),
    ]


def _produce(producer: Any, topic: str, key: str, value: bytes, headers: Any, *, counter: _Counter) -> None:
    while True:
        try:
            producer.produce(topic, value=value, key=key, headers=headers, on_delivery=counter)
            return
        except BufferError:
            producer.poll(0.1)


_SUMMED = ("parse (read + orjson)", "validation (pydantic)", "encode (Avro)")
"""Stages that, with several validating workers, are summed over the workers (CPU-like, not wall clock)."""


def _validating_pass(stages: dict[str, float]) -> float:
    """µs per event of the validating pass (parse, validation, encode): Python work before anything is sent."""
    return stages["validating pass (wall clock)"]


def _print_profile(stages: dict[str, float], ceiling_us: float, workers: int, console: Console) -> None:
    """Where ``civreg publish``'s time went, per event, in the pass timed; and what that bounds."""
    title = "civreg publish: where the time goes (µs per event, timed in its fastest pass"
    title += f"; {workers} validating workers)" if workers > 1 else ")"
    table = Table(title=title)
    table.add_column("stage")
    table.add_column("µs/event", justify="right")
    table.add_column("share of total", justify="right")
    total = stages["total"] or 1.0
    for name, value in stages.items():
        summed = workers > 1 and name in _SUMMED
        share = "" if name == "total" or summed else f"{value / total:.0%}"
        table.add_row(f"  {name} (summed over workers)" if summed else name, f"{value:.1f}", share)
    console.print(table)
    validating = _validating_pass(stages)
    console.print(
        f"[dim]Every row is validated before any is sent (a file with a bad row publishes nothing), so the rate is "
        f"at most 1 ÷ (validating pass {validating:.1f} µs + raw produce {ceiling_us:.1f} µs): "
        f"{ceiling_us / (validating + ceiling_us):.0%} of the raw ceiling.[/]",
        highlight=False,
    )
