"""Publishing numbered deaths to the real broker, for tests that count what a consumer did with them."""

from __future__ import annotations

from civreg.settings import Settings
from producers.publisher import Publisher
from tests.support.factories import make_death, make_person


def publish_deaths(settings: Settings, count: int, first: int = 1) -> None:
    with Publisher(settings) as publisher:
        for number in range(first, first + count):
            publisher.publish(make_death(entry_number=number, deceased=make_person(given_names=f"Person{number}")))
