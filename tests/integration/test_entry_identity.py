"""Entry identity on the real broker, on both stores: entry numbers restart every year, so two years' entries with
the same (district, register, entry number) are two entries, and both deaths are acted on."""

from __future__ import annotations

from datetime import date

import pytest

from civreg.settings import Settings
from consumers.operations.running import open_store, run_department
from consumers.suppression import Action, SuppressionList, decide
from consumers.suppression.mailing import Recipient
from producers.publisher import Publisher
from tests.support.factories import make_address, make_death, make_person

pytestmark = pytest.mark.kafka


def test_two_years_entries_with_the_same_district_register_and_number_are_both_applied(
    bus_store_settings: Settings,
) -> None:
    settings = bus_store_settings
    earlier = make_death(
        entry_number=1,
        deceased=make_person("Margaret Anne", "Morgan", date(1941, 11, 3), address=make_address(postcode="LS1 4AP")),
        date_of_death=date(2024, 3, 10),
        date_of_registration=date(2024, 3, 14),
    )
    later = make_death(
        entry_number=1,
        deceased=make_person(
            "Harold", "Beck", date(1938, 6, 21), nino="JH112233B", address=make_address(postcode="LS6 2QT")
        ),
        date_of_death=date(2025, 1, 2),
        date_of_registration=date(2025, 1, 6),
    )
    old_identity = ("registration_district", "sub_district", "register", "register_number", "entry_number")
    assert [getattr(earlier.entry, part) for part in old_identity] == [
        getattr(later.entry, part) for part in old_identity
    ]
    assert earlier.entry.key != later.entry.key

    with Publisher(settings) as publisher:
        publisher.publish(earlier)
        publisher.publish(later)
    report = run_department(settings, "suppression", until_caught_up=True, handle_signals=False)

    assert report.duplicates == 0
    assert report.outcomes == {("DeathRegistered", "applied"): 2}
    store = open_store(settings, "suppression")
    try:
        outcomes = store.read().execute("SELECT entry_key, outcome, note FROM civreg_event_outcomes")
        assert {tuple(row) for row in outcomes} == {
            (earlier.entry.key, "applied", "suppressed"),
            (later.entry.key, "applied", "suppressed"),
        }
        rows = store.read().execute(
            "SELECT year_of_registration, entry_number, status FROM do_not_contact ORDER BY year_of_registration"
        )
        assert [tuple(row) for row in rows] == [(2024, 1, "suppressed"), (2025, 1, "suppressed")]
        suppression = SuppressionList(store.read())
        for who, year in (
            (Recipient("r1", "Margaret Anne", "Morgan", date(1941, 11, 3), "LS1 4AP"), 2024),
            (Recipient("r2", "Harold", "Beck", date(1938, 6, 21), "LS6 2QT", nino="JH112233B"), 2025),
        ):
            decision = decide(suppression, who)
            assert decision.action is Action.SUPPRESS
            assert f"death registered in {year} in Leeds (Leeds North), register 1, entry 1" in decision.reason
    finally:
        store.close()
