"""``civreg schemas register`` publishes the departments' projection schemas too, under the router's subjects.

On the session's real registry and broker: an operator registers them ahead of the router (each subject's rule
set from the policy first), and the router then runs with auto-registration off, writing the ids registered.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer
from fastavro.schema import to_parsing_canonical_form

from civreg.kafka_config import consumer_config
from civreg.settings import Settings
from consumers.runtime.agreements import load_agreements
from consumers.runtime.projection import projection, projection_subject
from deploy.schema_evolution import register_schemas
from schemas.topics import department_topic
from tests.support.environment import REPO, settings_env
from tests.support.factories import make_death
from tests.support.registry import publish, resolver_for
from tests.support.routing import route

pytestmark = [pytest.mark.kafka, pytest.mark.registry]


def _canonical(schema: dict[str, Any]) -> str:
    """Avro's parsing canonical form: the registry may store the same schema respelt (names split into namespace)."""
    return str(to_parsing_canonical_form(schema))


def _schema_ids_on(settings: Settings, topic: str, count: int) -> list[int]:
    """The schema id in the header of the first ``count`` messages on ``topic``."""
    consumer = Consumer(consumer_config(settings, f"{settings.topic_prefix}.ids-reader", role="test"))
    try:
        consumer.subscribe([topic])
        ids: list[int] = []
        for _ in range(60):
            for message in consumer.consume(100, 1.0):
                if message.error() is None:
                    ids.append(int.from_bytes((message.value() or b"")[1:5], "big"))
            if len(ids) >= count:
                return ids
        raise AssertionError(f"read {len(ids)} of {count} messages from {topic}")
    finally:
        consumer.close()


def test_schemas_register_publishes_every_projection_and_the_router_runs_without_auto_registration(
    registry_settings: Settings,
) -> None:
    settings = registry_settings.model_copy(update={"registry_auto_register": False})
    agreements = load_agreements(settings.config_files.agreements_dir)
    resolver = resolver_for(settings)

    report = register_schemas(resolver, settings.topic_prefix, agreements=agreements)
    assert report.ok
    by_subject = {item.subject.subject: item for item in report.subjects}
    expected = {
        projection_subject(name, event_type, settings.topic_prefix): (agreement, event_type)
        for name, agreement in agreements.items()
        for event_type in agreement.event_types
    }
    assert set(expected) <= set(by_subject)
    for subject, (agreement, event_type) in expected.items():
        item = by_subject[subject]
        assert item.status == "registered", subject
        assert item.subject.topic == department_topic(agreement.department, settings.topic_prefix)
        assert resolver.client.get_compatibility(subject) == "FULL_TRANSITIVE", subject
        registered = json.loads(resolver.client.get_schema(item.schema_id).schema_str)
        assert _canonical(registered) == _canonical(projection(agreement, event_type).schema), subject
    again = register_schemas(resolver, settings.topic_prefix, agreements=agreements)
    assert {item.status for item in again.subjects} == {"unchanged"}

    # With every subject published, publisher and router run with auto-registration off and write those ids.
    publish(settings, [make_death()])
    assert route(settings).routed["dvla"] == 1
    dvla_death = by_subject[projection_subject("dvla", "DeathRegistered", settings.topic_prefix)]
    assert _schema_ids_on(settings, department_topic("dvla", settings.topic_prefix), 1) == [dvla_death.schema_id]


def test_cli_schemas_register_lists_the_projection_subjects(registry_settings: Settings) -> None:
    run = subprocess.run(
        [str(Path(sys.executable).parent / "civreg"), "schemas", "register"],
        env={**settings_env(registry_settings), "COLUMNS": "250"},
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    prefix = registry_settings.topic_prefix
    for name in ("dvla", "tax", "suppression"):
        subject = projection_subject(name, "DeathRegistered", prefix)
        line = next((line for line in run.stdout.splitlines() if subject in line), None)
        assert line is not None and "FULL_TRANSITIVE" in line and "registered" in line, subject
