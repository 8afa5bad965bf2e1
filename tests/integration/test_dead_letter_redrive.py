"""Dead letters can be inspected and re-driven: once the cause is fixed, the department applies the event."""

from __future__ import annotations

import pytest

from civreg.settings import Settings
from consumers.operations.redrive import list_dead_letters, redrive
from consumers.operations.running import open_store, run_department
from consumers.runtime import PermanentError, Result
from consumers.suppression import department as suppression
from producers.publisher import Publisher
from schemas.models import DeathRegistered
from tests.support.factories import make_death, make_person

pytestmark = pytest.mark.kafka


def _outcome(settings: Settings, event_id: str) -> str | None:
    store = open_store(settings, "suppression")
    try:
        return store.read().outcome_of(event_id)
    finally:
        store.close()


def test_a_dead_lettered_event_is_applied_when_re_driven_after_the_fix(
    bus_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    death = make_death(deceased=make_person(given_names="Rosalind"))
    event_id = str(death.event_id)
    with Publisher(bus_settings) as publisher:
        publisher.publish(death)

    def broken_rule(event: DeathRegistered, records: object) -> Result:
        raise PermanentError("deceased.identifiers.nino: rule under repair")

    fixed_rule = suppression.handlers["DeathRegistered"]
    monkeypatch.setitem(suppression.handlers, "DeathRegistered", broken_rule)
    report = run_department(bus_settings, "suppression", until_caught_up=True, handle_signals=False)
    assert report.dead_letters == 1
    assert _outcome(bus_settings, event_id) == "dead_lettered"

    letters = list_dead_letters(bus_settings, "suppression")
    assert [(letter.event_id, letter.reason) for letter in letters] == [(event_id, "handler-rejected")]
    assert letters[0].error_message == "deceased.identifiers.nino: rule under repair"
    assert letters[0].original_topic.endswith(".registrations.deaths")

    monkeypatch.setitem(suppression.handlers, "DeathRegistered", fixed_rule)
    assert [letter.event_id for letter in redrive(bus_settings, "suppression")] == [event_id]
    report = run_department(bus_settings, "suppression", until_caught_up=True, handle_signals=False)
    assert report.outcomes == {("DeathRegistered", "applied"): 1}
    assert report.duplicates == 0
    assert _outcome(bus_settings, event_id) == "applied"

    # A second run sees nothing new, and re-driving an applied event again changes nothing.
    redrive(bus_settings, "suppression")
    report = run_department(bus_settings, "suppression", until_caught_up=True, handle_signals=False)
    assert report.duplicates == 1 and not report.outcomes
