"""The personal values an event carries, and where they turn up: for the tests that prove logs hold none.

Names, dates of birth, identifiers, address lines and postcodes; not a town or a register office's name, which
are not personal on their own (and appear, rightly, in entry references).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

__all__ = ["PUBLIC_KEYS", "VALUE_KEYS", "leaks", "leaks_as_words", "personal_values", "public_text"]

# Fields whose values are personal data on their own (a town or register office name is not).
VALUE_KEYS = {
    "given_names",
    "family_name",
    "surname_after",
    "date_of_birth",
    "nino",
    "nhs_number",
    "driving_licence_number",
    "passport_number",
    "postcode",
}

PUBLIC_KEYS = {"registration_district", "sub_district", "register_office", "date_of_registration"}
"""Fields that are not personal and that logs may show: a surname can be a place ("Kent", "Wells"), a child's date
of birth the day of registration."""


def personal_values(tree: Any) -> set[str]:
    """Every personal value in a JSON-like tree: names, dates of birth, identifiers, address lines, postcodes."""
    found: set[str] = set()
    if isinstance(tree, dict):
        for key, value in tree.items():
            if key in VALUE_KEYS and isinstance(value, str):
                found.add(value)
            elif key == "lines" and isinstance(value, list):
                found.update(line for line in value if isinstance(line, str))
            else:
                found |= personal_values(value)
    elif isinstance(tree, list):
        for item in tree:
            found |= personal_values(item)
    return found


def leaks(output: str, values: set[str]) -> list[str]:
    """The values found in ``output`` (raw, or as JSON escapes them)."""
    return sorted(value for value in values if value in output or json.dumps(value)[1:-1] in output)


def leaks_as_words(text: str, values: Iterable[str]) -> list[str]:
    """The values found in ``text`` as whole words (a surname such as "Hall" inside "Hallam" is not a leak)."""
    return sorted(value for value in values if re.search(rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])", text))


def public_text(tree: Any) -> str:
    """The values of ``PUBLIC_KEYS`` in a JSON-like tree, one per line: a personal value that is also one of them
    cannot be told apart from it in a log and is no leak."""
    found: list[str] = []
    if isinstance(tree, dict):
        for key, value in tree.items():
            if key in PUBLIC_KEYS and isinstance(value, str):
                found.append(value)
            else:
                found.append(public_text(value))
    elif isinstance(tree, list):
        found.extend(public_text(item) for item in tree)
    return "\n".join(part for part in found if part)
