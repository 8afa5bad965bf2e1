"""Customer-record rows as a department's file holds them: Margaret Morgan (the factories' default person) in each
department's columns, for tests that load a department's customer records."""

from __future__ import annotations

from tests.support.factories import DRIVING_LICENCE_NUMBER, NINO, PASSPORT_NUMBER

MARGARET = {
    "given_names": "Margaret Anne",
    "family_name": "Morgan",
    "date_of_birth": "1941-11-03",
    "address_line_1": "1 Park Row",
    "address_line_2": "",
    "town": "Leeds",
    "postcode": "LS1 3AD",
}
SPECIFIC: dict[str, dict[str, str]] = {
    "tax": {"nino": NINO, "marital_status": "WIDOWED", "self_assessment": "yes", "next_reminder_on": "2024-04-06"},
    "pensions": {
        "nino": NINO,
        "marital_status": "WIDOWED",
        "weekly_amount_pence": "22120",
        "paid_every_days": "28",
        "payment_anchor_on": "2024-03-12",
        "paid_in": "arrears",
        "next_statement_on": "2024-04-10",
    },
    "dvla": {
        "driving_licence_number": DRIVING_LICENCE_NUMBER,
        "licence_valid_to": "2024-06-01",
        "vehicles": "AB12CDE:2024-05-01;XY70ABC:2024-08-01",
    },
    "electoral": {"poll_card_on": "2024-04-08"},
    "passports": {"passport_number": PASSPORT_NUMBER, "expires_on": "2024-07-01"},
}


def row(department: str, record_id: str, **changes: str) -> dict[str, str]:
    """Margaret Morgan (the factories' default person) as ``department`` holds her, with ``changes``."""
    return {"record_id": record_id, **MARGARET, **SPECIFIC[department], **changes}
