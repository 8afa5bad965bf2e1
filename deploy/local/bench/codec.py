"""The codec suite of ``civreg bench``: our wire codec against confluent-kafka's stock Avro serializers.

Both sides use the same real registry (yours, the dev stack's, or a temporary local Apicurio started for the run),
the same topic-record subjects and the same simulated events (England-and-Wales mix of every event type), and
the suite checks that both write identical bytes and read identical records before timing anything. Why ours is
faster at decoding: the stock deserializer does per-message work (subject name, rule and migration look-ups,
schema cache under a lock, reader schema comparison); ours resolves each schema id once and then costs a dict
lookup and one fastavro read.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import fastavro
from rich.console import Console

from civreg.codec_from_settings import open_registry_resolver
from civreg.settings import Settings
from deploy.local.bench.harness import BenchCase, BenchOptions, SuiteResult, run_cases
from deploy.local.jvm import free_port
from deploy.local.registry import LocalRegistry
from producers.simulation import simulate_registrations
from schemas.catalogue import EVENT_TYPES, event_schema
from schemas.codec import Codec, to_avro
from schemas.models import EVENT_MODELS
from schemas.registry import load_client_library, redact_url, registry_client
from schemas.topics import registration_topics

__all__ = ["run_codec_suite"]


@contextlib.contextmanager
def _registry(settings: Settings, console: Console) -> Iterator[tuple[str, str]]:
    """(url, description) of the registry to measure against; a temporary local one if none is configured."""
    url = settings.registry_url
    if url:
        kind = "the dev stack's local Apicurio" if url == settings.local_registry_url else "your registry"
        yield url, f"{kind} at {redact_url(url)}"
        return
    home = Path(tempfile.mkdtemp(prefix="civreg-bench-"))
    local = LocalRegistry(
        settings.model_copy(
            update={"home": home, "local_registry_port": free_port(), "local_registry_health_port": free_port()}
        )
    )
    try:
        with console.status(f"starting a temporary Apicurio Registry {local.version} for the benchmark"):
            local.start()
        yield local.url, f"a temporary local Apicurio Registry {local.version}"
    finally:
        local.stop()
        shutil.rmtree(home, ignore_errors=True)


def run_codec_suite(settings: Settings, options: BenchOptions, console: Console) -> SuiteResult:
    """Encode and decode ``options.events`` simulated events both ways; returns the timed cases."""
    load_client_library()
    from confluent_kafka.schema_registry import topic_record_subject_name_strategy
    from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    with _registry(settings, console) as (url, description):
        prefix = f"bench{uuid.uuid4().hex[:10]}"
        local = settings.model_copy(
            update={"registry_url": url, "topic_prefix": prefix, "registry_auto_register": True}
        )
        resolver = open_registry_resolver(local, url)
        assert resolver is not None
        codec = Codec(resolver, topic_prefix=prefix)
        topics = registration_topics(prefix)
        events = list(simulate_registrations(options.events, options.seed))
        work = [(event, topics[event.family]) for event in events]

        password = settings.registry_password.get_secret_value() if settings.registry_password else None
        client = registry_client(url, username=settings.registry_username, password=password)
        strategy = {"subject.name.strategy": topic_record_subject_name_strategy}
        serializers = {
            t: AvroSerializer(client, event_schema(t).schema_str, conf={"auto.register.schemas": True, **strategy})
            for t in EVENT_TYPES
        }
        deserializer = AvroDeserializer(client, conf=strategy)
        typed = {t: AvroDeserializer(client, event_schema(t).schema_str, conf=strategy) for t in EVENT_TYPES}
        contexts = {topic: SerializationContext(topic, MessageField.VALUE) for topic in topics.values()}

        ours = [codec.encode(event, topic) for event, topic in work]
        stock = [serializers[event.event_type](to_avro(event), contexts[topic]) for event, topic in work]
        framed = [(event.event_type, contexts[topic], data) for (event, topic), data in zip(work, ours, strict=True)]
        same_records = all(codec.decode_record(data) == deserializer(data, ctx) for _, ctx, data in framed)
        bodies = [(io.BytesIO(data), codec.resolver.writer_schema(int.from_bytes(data[1:5], "big"))) for data in ours]

        def encode_ours() -> int:
            for event, topic in work:
                codec.encode(event, topic)
            return len(work)

        def encode_stock() -> int:
            for event, topic in work:
                serializers[event.event_type](to_avro(event), contexts[topic])
            return len(work)

        def records_ours() -> int:
            for _, _, data in framed:
                codec.decode_record(data)
            return len(framed)

        def records_stock() -> int:
            for _, ctx, data in framed:
                deserializer(data, ctx)
            return len(framed)

        def events_ours() -> int:
            for _, _, data in framed:
                codec.decode(data)
            return len(framed)

        def events_stock() -> int:
            for event_type, ctx, data in framed:
                EVENT_MODELS[event_type].model_validate(typed[event_type](data, ctx))
            return len(framed)

        def fastavro_alone() -> int:
            for body, writer in bodies:
                body.seek(5)
                fastavro.schemaless_reader(body, writer, None)
            return len(bodies)

        cases = [
            BenchCase("encode: event → bytes", encode_ours, encode_stock, "stock: AvroSerializer"),
            BenchCase("decode: bytes → record", records_ours, records_stock, "stock: AvroDeserializer"),
            BenchCase(
                "decode: bytes → event",
                events_ours,
                events_stock,
                "both pydantic-validated",
            ),
            BenchCase("fastavro alone: body → record", fastavro_alone, None, "floor for any decoder"),
        ]
        console.print(f"codec benchmark: {len(work)} events, {options.rounds} timed passes each, against {description}")
        results = run_cases(cases, options.rounds)
    context: dict[str, Any] = {
        "events": len(work),
        "rounds": options.rounds,
        "registry": description,
        "subject strategy": "TopicRecordNameStrategy (<topic>-<record full name>) on both sides",
        "same bytes": ours == stock,
        "same records": same_records,
        "fastavro": version("fastavro"),
        "confluent-kafka": version("confluent-kafka"),
    }
    return SuiteResult(
        "codec",
        "Wire codec, µs per event (best of the passes)",
        "civreg",
        "stock confluent-kafka",
        results,
        context,
    )
