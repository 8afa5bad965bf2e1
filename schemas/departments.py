"""The departments on the bus, by name, and the columns of each one's customer records file.

Why here: a department's name is part of the contract (its dead-letter topic, consumer group, data-sharing
agreement), and a customer records file (the CSV extract a department joins the bus with) is written by
``producers.customer_records`` and read by ``consumers.kit.customer_records``: both sides read its layout from this
one place. ``consumers.departments`` holds each department's rules under these names.
"""

from __future__ import annotations

__all__ = ["DEPARTMENT_NAMES", "PERSON_COLUMNS", "REGISTER_DEPARTMENTS", "record_columns"]

DEPARTMENT_NAMES: tuple[str, ...] = ("suppression", "tax", "pensions", "dvla", "electoral", "passports")
"""Every department consuming the bus (each has a dead-letter topic and a consumer group)."""

PERSON_COLUMNS = (
    "record_id",
    "given_names",
    "family_name",
    "date_of_birth",
    "address_line_1",
    "address_line_2",
    "town",
    "postcode",
)
"""The columns every customer records file starts with."""

_DEPARTMENT_COLUMNS: dict[str, tuple[str, ...]] = {
    "tax": ("nino", "marital_status", "self_assessment", "next_reminder_on"),
    "pensions": (
        "nino",
        "marital_status",
        "weekly_amount_pence",
        "paid_every_days",
        "payment_anchor_on",
        "paid_in",
        "next_statement_on",
    ),
    "dvla": ("driving_licence_number", "licence_valid_to", "vehicles"),
    "electoral": ("poll_card_on",),
    "passports": ("passport_number", "expires_on"),
}

REGISTER_DEPARTMENTS: tuple[str, ...] = tuple(_DEPARTMENT_COLUMNS)
"""The departments that keep customer records (the suppression service keeps none)."""


def record_columns(department: str) -> tuple[str, ...]:
    """The columns of ``department``'s customer records file, in order; ValueError names the known ones."""
    try:
        return (*PERSON_COLUMNS, *_DEPARTMENT_COLUMNS[department])
    except KeyError:
        known = ", ".join(REGISTER_DEPARTMENTS)
        raise ValueError(f"department {department!r} keeps no customer records; known: {known}") from None
