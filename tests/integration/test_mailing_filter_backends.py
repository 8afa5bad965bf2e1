"""The whole-file mailing filter on both engines decides as ``decide`` does row by row (PostgreSQL's collation
orders ``entry_key`` its own way: the first listing of several is the one its ``ORDER BY`` gives)."""

from __future__ import annotations

import random

from civreg.settings import Settings
from consumers.kit.frames import frame_from_rows
from consumers.operations.running import open_store
from consumers.suppression import SuppressionList, decide
from consumers.suppression.mailing import decide_all, recipient_from_row
from tests.support.mailing_cases import listed_entries, recipient_rows, store_entries

COLUMNS = ("recipient_id", "given_names", "family_name", "date_of_birth", "postcode", "nino", "nhs_number", "town")


def test_whole_file_decisions_equal_row_by_row_on_each_engine(store_backend: Settings) -> None:
    store = open_store(store_backend, "suppression")
    try:
        for seed in range(6):
            rng = random.Random(seed)
            with store.transaction() as transaction:
                store_entries(transaction, listed_entries(rng, 9))
            rows = recipient_rows(rng, 400)
            records = SuppressionList(store.read())
            expected = [decide(records, recipient_from_row(r)) for r in rows]
            decided = decide_all(store.read(), frame_from_rows(rows, COLUMNS))
            assert [tuple(d) for d in decided.iter_rows()] == [
                (d.action.value, d.matched_by, d.reason) for d in expected
            ]
    finally:
        store.close()
