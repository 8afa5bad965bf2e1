"""Normalised keys for matching people across records that were typed by different hands.

Departments match on an identifier first; failing that on a name key + date of birth + postcode. The name key is
the casefolded family name and first given name with accents, punctuation and spaces removed, so "O'Brien" and
"OBRIEN", "José" and "Jose" meet.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["name_key", "postcode_key"]


def _letters(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return re.sub(r"[^a-z]", "", "".join(c for c in decomposed if not unicodedata.combining(c)).casefold())


def name_key(given_names: str, family_name: str) -> str:
    """``family|first-given-name`` in plain lower-case letters."""
    first_given = given_names.split(maxsplit=1)[0] if given_names.split() else ""
    return f"{_letters(family_name)}|{_letters(first_given)}"


def postcode_key(postcode: str | None) -> str | None:
    """Upper case without spaces (formats differ between systems)."""
    if not postcode:
        return None
    return re.sub(r"\s+", "", postcode).upper()
