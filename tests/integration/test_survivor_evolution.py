"""Adding the surviving spouse or civil partner to deaths, on the real registry and broker: the worked example of a
compatible change (schemas/EVOLUTION.md).

The death schema as it was before the field (this checkout's schema with ``surviving_partner`` taken out) is
version 1 of the subject; this checkout's schema becomes version 2. Both are FULL_TRANSITIVE compatible, a
department on this checkout applies version-1 events and version-2 events (the survivor with them), and a consumer
still on version 1 reads version-2 events (the survivor skipped).
"""

from __future__ import annotations

import copy
import io
import json
from datetime import date
from typing import Any

import fastavro
import pytest

from civreg.settings import Settings
from consumers.kit.customer_records import RecordTable
from consumers.operations.running import open_store, run_department
from deploy.schema_evolution import check_against_registry
from schemas.catalogue import event_schema
from schemas.codec import to_avro
from schemas.models import DeathRegistered, MaritalStatus, Sex, SurvivingPartner, SurvivorRelationship
from tests.integration.test_departments import load
from tests.integration.test_schema_registry import (
    death_subject,
    deaths_topic,
    frame,
    produce_raw,
    publish,
    read_all,
    resolver_for,
)
from tests.support.customer_rows import row
from tests.support.factories import make_death, make_identifiers, make_person

pytestmark = [pytest.mark.kafka, pytest.mark.registry]

DEATH = "DeathRegistered"
JOHN_NINO = "CE654321A"


def death_before_survivors() -> dict[str, Any]:
    """The standalone death schema as it was before ``surviving_partner`` (its types go with it)."""
    schema = copy.deepcopy(event_schema(DEATH).schema)
    details = next(field for field in schema["fields"] if field["name"] == "death")["type"]
    details["fields"] = [field for field in details["fields"] if field["name"] != "surviving_partner"]
    return schema


def death_survived_by_john(entry_number: int) -> DeathRegistered:
    """A death of someone the tax register does not hold, survived by John Morgan, whom it does."""
    death = make_death(
        entry_number=entry_number,
        deceased=make_person("Alice", "Morgan", date(1940, 2, 2), identifiers=make_identifiers(nino=None)),
        marital_status=MaritalStatus.MARRIED,
    )
    john = make_person(
        "John",
        "Morgan",
        date(1939, 6, 21),
        Sex.MALE,
        identifiers=make_identifiers(
            nino=JOHN_NINO, nhs_number=None, driving_licence_number=None, passport_number=None
        ),
    )
    survivor = SurvivingPartner(person=john, relationship=SurvivorRelationship.SPOUSE)
    return death.model_copy(update={"death": death.death.model_copy(update={"surviving_partner": survivor})})


def test_deaths_with_a_surviving_partner_are_full_transitive_with_deaths_without_and_both_read_each_other(
    registry_settings: Settings,
) -> None:
    from confluent_kafka.schema_registry import (
        Schema,  # after tests.integration.test_schema_registry loaded the client library
    )

    settings = registry_settings
    resolver = resolver_for(settings)
    subject, topic = death_subject(settings), deaths_topic(settings)
    before = death_before_survivors()
    assert "SurvivingPartner" not in json.dumps(before)

    # Version 1: the schema before the change, with the bus's rule, and a register office still writing it.
    resolver.client.set_compatibility(subject, "FULL_TRANSITIVE")
    v1_id = resolver.client.register_schema(subject, Schema(json.dumps(before), "AVRO"))
    old_death = make_death(entry_number=1)  # Margaret Morgan, whom the tax register holds
    old_record = to_avro(old_death)
    del old_record["death"]["surviving_partner"]
    produce_raw(settings, topic, [(old_death.entry.key.encode(), frame(v1_id, before, old_record))])

    # The change passes the project's check and the registry's own, against every version (FULL_TRANSITIVE).
    report = check_against_registry(resolver, settings.topic_prefix)
    assert report.ok, report.problems()
    assert next(c for c in report.checks if c.subject.subject == subject).compared_with == ("version 1",)
    assert resolver.client.test_compatibility(subject, Schema(event_schema(DEATH).schema_str, "AVRO")) is True

    # Version 2: this checkout's producer registers it on first use and writes the survivor.
    new_death = death_survived_by_john(entry_number=2)
    publish(settings, [new_death])
    assert resolver.client.get_versions(subject) == [1, 2]
    v2_id = resolver.subject_schema_id(DEATH, topic)
    assert v2_id != v1_id
    assert resolver.client.get_compatibility(subject) == "FULL_TRANSITIVE"

    # A department on version 2 (this checkout) applies both: the old death, and the new one with its survivor.
    load(
        settings,
        "tax",
        [
            row("tax", "T1", marital_status="MARRIED"),
            row("tax", "T2", given_names="John", date_of_birth="1939-06-21", nino=JOHN_NINO, marital_status="MARRIED"),
        ],
    )
    report_tax = run_department(settings, "tax", until_caught_up=True, handle_signals=False)
    assert report_tax.outcomes == {(DEATH, "applied"): 2}
    assert report_tax.dead_letters == 0
    store = open_store(settings, "tax")
    try:
        taxpayers = RecordTable(store.read(), "taxpayers", "taxpayer_id")
        assert taxpayers.fields("T1", "status")["status"] == "deceased"  # from the version-1 event
        assert taxpayers.fields("T2", "marital_status")["marital_status"] == "WIDOWED"  # from the version-2 event
    finally:
        store.close()

    # A consumer still on version 1 reads every event, the version-2 one included (the survivor skipped); one on
    # version 2 reads the version-1 event with the field's default.
    old_reader = fastavro.parse_schema(before, named_schemas={})
    new_reader = fastavro.parse_schema(event_schema(DEATH).schema, named_schemas={})
    by_old: dict[str, Any] = {}
    by_new: dict[str, Any] = {}
    for message in read_all(settings, [topic], 2):
        data = message.value()
        assert data is not None
        writer = resolver.writer_schema(int.from_bytes(data[1:5], "big"))
        for reader, seen in ((old_reader, by_old), (new_reader, by_new)):
            record = fastavro.schemaless_reader(io.BytesIO(data[5:]), writer, reader)
            assert isinstance(record, dict)
            seen[str(record["event_id"])] = record["death"]
    old_id, new_id = str(old_death.event_id), str(new_death.event_id)
    assert "surviving_partner" not in by_old[new_id]
    assert by_old[new_id]["deceased"]["given_names"] == "Alice"
    assert by_new[old_id]["surviving_partner"] is None
    assert by_new[new_id]["surviving_partner"]["person"]["given_names"] == "John"
    assert by_new[new_id]["surviving_partner"]["relationship"] == "SPOUSE"
