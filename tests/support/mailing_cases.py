"""Awkward mailing rows and do-not-contact entries, drawn from small pools so that they collide often.

Why: the whole-file mailing filter (``decide_all``) must give exactly what ``decide`` gives row by row; the cases
that could part them are untidy spellings (accents, apostrophes, capitals, odd whitespace Python strips and Unicode
does not), dates ``date.fromisoformat`` reads in several forms, identifiers written in pairs or failing their rule,
several entries sharing a key (the first in the list's order wins), and voided entries (never matched).
"""

from __future__ import annotations

import random
from typing import Any

from consumers.kit.matching import name_key, postcode_key
from consumers.runtime import Transaction
from schemas.identifiers import nhs_check_digit

GIVEN = ["Margaret Anne", "margaret", "  Margaret ", "Márgaret", "José", "Jose", "", "   ", "\x1cAnn", "Ann\u00a0Marie"]
FAMILY = ["Morgan", "MORGAN", "O'Brien", "OBRIEN", "o brien", "Strauß", "STRAUSS", "Zoë", "李", "-", "Mc Donald", ""]
BIRTH = [
    "1941-11-03",
    "1941-11-3",
    "19411103",
    "03/11/1941",
    "",
    " 1941-11-03 ",
    "1941-02-30",
    "0000-01-01",
    "1950-01-01",
]
POSTCODE = ["LS1 4AP", "ls14ap", " LS1  4AP ", "", "M1 1AE", "m1 1ae", "LS1\u00a04AP", "not one"]
NINO = ["", "AB123456C", "ab 12 34 56 c", "AB123456", "QQ123456C", "BG123456A", "AB123456E", "CE654321A", " "]


def _nhs(first_nine: str) -> str:
    check = nhs_check_digit(first_nine)
    return first_nine + str(0 if check is None else check)


NHS = ["", _nhs("943476591"), "943 476 5919", _nhs("401023213"), "4010232130", "123", "401-023-2137"]

ENTRY_KEYS = [
    "A/1/1/1",
    "a/1/1/2",
    "B/2/1/1",
    "b-2/1/1",
    "Z/9/9/9",
    "Leeds/North/3/10",
    "leeds/north/3/9",
    "10/x",
    "9/x",
]


def recipient_rows(rng: random.Random, count: int) -> list[dict[str, str]]:
    """``count`` mailing rows with every field drawn from the pools (some columns left out of some rows)."""
    rows = []
    for index in range(count):
        row = {
            "recipient_id": f" R{index} " if rng.random() < 0.1 else f"R{index}",
            "given_names": rng.choice(GIVEN),
            "family_name": rng.choice(FAMILY),
            "date_of_birth": rng.choice(BIRTH),
            "postcode": rng.choice(POSTCODE),
            "nino": rng.choice(NINO),
            "nhs_number": rng.choice(NHS),
            "town": 'Leeds, "West" Yorkshire' if rng.random() < 0.2 else "",
        }
        rows.append(row)
    return rows


def listed_entries(rng: random.Random, count: int) -> list[dict[str, Any]]:
    """Up to ``count`` do-not-contact rows (distinct entry keys), stored as ``SuppressionList.suppress`` keys them."""
    entries = []
    for key in rng.sample(ENTRY_KEYS, min(count, len(ENTRY_KEYS))):
        birth = rng.choice(["1941-11-03", "1950-01-01", None])
        postcode = rng.choice(["LS1 4AP", "M1 1AE", None])
        nino = rng.choice([None, "AB123456C", "CE654321A"])
        nhs = rng.choice([None, NHS[1], NHS[3]])
        entries.append(
            {
                "entry_key": key,
                "status": "suppressed" if rng.random() < 0.85 else "voided",
                "name_key": name_key(rng.choice(GIVEN), rng.choice(FAMILY)),
                "date_of_birth": birth,
                "postcode": postcode_key(postcode),
                "nino": nino,
                "nhs_number": nhs,
            }
        )
    return entries


def store_entries(transaction: Transaction, entries: list[dict[str, Any]]) -> None:
    """Replace the do-not-contact list with ``entries``."""
    transaction.execute("DELETE FROM do_not_contact")
    for number, entry in enumerate(entries, start=1):
        transaction.execute(
            "INSERT INTO do_not_contact VALUES (?, 1, ?, ?, ?, ?, ?, ?, '2024-03-01', 'Leeds', 'Leeds North', ?, ?, "
            "2024, '2024-03-02T00:00:00+00:00')",
            (
                entry["entry_key"],
                entry["status"],
                entry["name_key"],
                entry["date_of_birth"],
                entry["postcode"],
                entry["nino"],
                entry["nhs_number"],
                number,
                number * 7,
            ),
        )
