"""The runtime's guarantees on PostgreSQL: the suppression scenarios of ``test_suppression``, unchanged.

The scenario functions are imported, not copied, and run here with ``bus_settings`` overridden to carry a fresh
PostgreSQL database: a duplicate applies once, a consumer SIGKILLed between its database commit and its offset
commit (a real process, given the DSN through its environment) loses and doubles nothing, poison goes to the
dead-letter topic, and a void restores letters. Only the SQLite-file test is left out.
"""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from civreg.settings import Settings
from tests.integration.test_suppression import (
    test_a_death_suppresses_letters_and_its_void_restores_them,
    test_poison_messages_go_to_the_dead_letter_topic_with_reasons_and_the_consumer_goes_on,
    test_sigkill_between_database_commit_and_offset_commit_loses_and_doubles_nothing,
    test_the_same_event_delivered_twice_applies_once,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

__all__ = [
    "test_a_death_suppresses_letters_and_its_void_restores_them",
    "test_poison_messages_go_to_the_dead_letter_topic_with_reasons_and_the_consumer_goes_on",
    "test_sigkill_between_database_commit_and_offset_commit_loses_and_doubles_nothing",
    "test_the_same_event_delivered_twice_applies_once",
]


@pytest.fixture
def bus_settings(bus_settings: Settings, postgres_database: str) -> Settings:
    """The conftest's ``bus_settings`` with the department store in a fresh PostgreSQL database."""
    return bus_settings.model_copy(update={"postgres_dsn": SecretStr(postgres_database)})


def test_the_scenarios_really_run_on_postgresql(bus_settings: Settings) -> None:
    """Guards the override above: if it stopped applying, the imported tests would silently test SQLite again."""
    from consumers.operations.running import open_store
    from consumers.runtime.postgres_store import PostgresStore

    store = open_store(bus_settings, "suppression")
    try:
        assert isinstance(store, PostgresStore)
        assert store.schema == "civreg_suppression"
    finally:
        store.close()
    assert not bus_settings.department_database("suppression").exists()
