"""The router's dead letters (``<prefix>.dead-letter.router``): listed, and re-driven once to the registration topic.

On the real broker: a death the router cannot decode (its schema id unknown, as when a producer wrote with a schema
the registry does not hold) is dead-lettered by every lane of the death register, in the lanes' transactions.
``civreg dead-letters list -d router`` shows each lane's letter; once the cause is fixed, ``redrive -d router
--include-undecodable`` puts the registration back on its topic ONCE, and every lane routes it.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from civreg.settings import Settings
from consumers.operations.redrive import list_dead_letters, redrive
from consumers.routing.router import Router
from consumers.runtime.agreements import load_agreements
from producers.publisher import Publisher
from schemas.codec import Codec, LocalSchemaCatalogue, UnknownSchemaId
from schemas.topics import Register, registration_topic
from tests.support.environment import REPO, settings_env
from tests.support.factories import make_death
from tests.support.routing import route

pytestmark = pytest.mark.kafka


class _Forgetful:
    """The local schema catalogue, except for one id it has never heard of (the cause the operator fixes)."""

    def __init__(self, forgotten: int) -> None:
        self._catalogue = LocalSchemaCatalogue()
        self._forgotten = forgotten

    def schema_id(self, event_type: str) -> int:
        return self._catalogue.schema_id(event_type)

    def writer_schema(self, schema_id: int) -> dict[str, Any]:
        if schema_id == self._forgotten:
            raise UnknownSchemaId(f"schema id {schema_id} is not in the registry")
        return self._catalogue.writer_schema(schema_id)


def _civreg(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "civreg", *args],
        env={**settings_env(settings), "COLUMNS": "250", "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        timeout=120,
    )


def test_the_routers_dead_letters_are_listed_per_lane_and_re_driven_once_to_their_registration_topic(
    bus_settings: Settings,
) -> None:
    settings = bus_settings
    deaths = registration_topic(Register.DEATH, settings.topic_prefix)
    lanes = sorted(
        name
        for name, agreement in load_agreements(settings.config_files.agreements_dir).items()
        if Register.DEATH in agreement.registers
    )
    death = make_death()
    with Publisher(settings) as publisher:
        publisher.publish(death)

    forgetful = Codec(
        _Forgetful(LocalSchemaCatalogue().schema_id("DeathRegistered")), topic_prefix=settings.topic_prefix
    )
    report = Router(settings, codec=forgetful, poll_timeout=0.1, check_interval=0.2).run(until_caught_up=True)
    assert report.dead_letters == {"unknown-schema-id": len(lanes)}
    assert not report.routed

    letters = list_dead_letters(settings, "router")
    assert sorted(letter.department for letter in letters) == lanes  # one per lane of the death register
    assert len({letter.original for letter in letters}) == 1
    assert all(letter.original_topic == deaths for letter in letters)
    assert all(letter.reason == "unknown-schema-id" and letter.event_id is None for letter in letters)
    assert all(letter.dead_lettered_at for letter in letters)

    listed = _civreg(settings, "dead-letters", "list", "-d", "router")
    assert listed.returncode == 0, listed.stderr
    assert "lane" in listed.stdout and "unknown-schema-id" in listed.stdout
    assert all(lane in listed.stdout for lane in lanes)
    assert "1 registration(s) the router could not decode" in listed.stdout

    assert redrive(settings, "router") == []  # undecodable letters go back only when asked for

    # The fix is in (the schema is known again): re-drive once, and every lane routes the registration.
    redriven = _civreg(settings, "dead-letters", "redrive", "-d", "router", "--include-undecodable")
    assert redriven.returncode == 0, redriven.stderr
    assert f"re-drove 1 dead letter(s) of router to {deaths}" in redriven.stdout
    after = route(settings)
    assert after.routed == dict.fromkeys(lanes, 1)
    assert not after.dead_letters
    # nothing new dead-lettered (and reading the transactional topic to its end stops at its commit marker)
    assert len(list_dead_letters(settings, "router")) == len(lanes)
