"""The router's fast projection (``Projection.encode``: the decoded event written with the projection's compiled
writer, nothing validated again) gives exactly the bytes and disclosed paths of the model path it replaces
(``Agreement.minimise``, then fastavro writing ``Projection.record``), for every department and event type."""

from __future__ import annotations

import copy
import io

import fastavro
import pytest

from consumers.departments import DEPARTMENTS
from consumers.runtime.agreements import agreement_for
from consumers.runtime.projection import projection
from producers.simulation import simulate_registrations
from schemas.catalogue import EVENT_TYPES
from schemas.codec import to_avro
from tests.support.factories import all_event_examples, projected_events

EVENTS = list(simulate_registrations(3000, 11)) + all_event_examples()


@pytest.mark.parametrize("name", sorted(DEPARTMENTS))
def test_fast_projection_equals_minimise_then_write(name: str) -> None:
    agreement = agreement_for(name)
    compared: set[str] = set()
    for event in projected_events(agreement, EVENTS):
        projected = projection(agreement, event.event_type)
        minimised = agreement.minimise(event)
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, projected.parsed, projected.record(minimised))
        body, disclosed = projected.encode(event)
        assert body == buffer.getvalue(), event.event_type
        assert disclosed == agreement.disclosed(minimised), event.event_type
        compared.add(event.event_type)
    assert compared == set(agreement.event_types) & set(EVENT_TYPES)


def test_the_fast_projection_leaves_the_decoded_event_as_it_was() -> None:
    agreement = agreement_for("dvla")
    event = next(
        e for e in EVENTS if e.event_type == "RegistrationCorrected" and agreement.receives(e.family, e.event_type)
    )
    before = event.model_dump()
    projection(agreement, event.event_type).encode(event)
    assert event.model_dump() == before


def test_one_avro_record_shared_by_every_lane_gives_each_the_same_bytes_and_stays_as_it_was() -> None:
    """The router makes an event's Avro record once and hands it to every lane's projection: each must give what
    its own record gives, and none may change the shared one (a correction's branch is renamed per projection)."""
    corrections = [e for e in EVENTS if e.event_type == "RegistrationCorrected"]
    for event in [*EVENTS[:300], *corrections]:
        shared = to_avro(event)
        before = copy.deepcopy(shared)
        for name in sorted(DEPARTMENTS):
            agreement = agreement_for(name)
            if agreement.withheld_because(event) is not None or agreement.withdraws(event):
                continue
            projected = projection(agreement, event.event_type)
            assert projected.encode(event, shared) == projected.encode(event), (name, event.event_type)
        assert shared == before, event.event_type
