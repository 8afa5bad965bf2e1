"""Department stores for rule tests: the open_department fixture (a plugin of tests/conftest.py), and reading
a record's fields and an event's outcome."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from civreg.settings import Settings
from consumers.kit.customer_records import RecordTable
from consumers.operations.running import open_store
from consumers.runtime import Department, Outcome, Store
from tests.support.delivery import deliver, load_rows

TABLES = {
    "tax": ("taxpayers", "taxpayer_id"),
    "pensions": ("pensioners", "pensioner_id"),
    "dvla": ("drivers", "driver_id"),
    "electoral": ("electors", "elector_id"),
    "passports": ("passports", "passport_id"),
}


Opener = Callable[..., Store]


@pytest.fixture
def open_department(store_backend: Settings) -> Iterator[Opener]:
    """Open a department's store on the test's engine and load register rows into it."""
    opened: list[Store] = []

    def open_(department: Department[Any], *rows: dict[str, str]) -> Store:
        store = open_store(store_backend, department)
        opened.append(store)
        if rows:
            load_rows(store, department, rows)
        return store

    yield open_
    for store in opened:
        store.close()


def fields(store: Store, department: str, record_id: str, *columns: str) -> dict[str, Any]:
    table, key = TABLES[department]
    return RecordTable(store.read(), table, key).fields(record_id, *columns)


def outcome(store: Store, department: Department[Any], event: Any) -> Outcome:
    result = deliver(store, department, event)
    assert result is not None, "withheld by the agreement"
    return result.outcome
