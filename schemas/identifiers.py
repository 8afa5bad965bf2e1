"""Format rules for the identifiers departments match on.

Each check returns the normalised value or raises ``ValueError`` with the rule that failed. Messages never quote
the value: they can reach logs, and identifiers are personal data.
"""

from __future__ import annotations

import re

__all__ = [
    "nhs_check_digit",
    "normalise_driving_licence_number",
    "normalise_nhs_number",
    "normalise_nino",
    "normalise_passport_number",
    "normalise_postcode",
]

# Digits are spelt [0-9]: \d also matches non-ASCII digits (e.g. Arabic-Indic), which no identifier contains.

# HMRC NIM39110: neither prefix letter is D, F, I, Q, U or V; the second is not O either; these pairs are never
# issued; the suffix is A, B, C or D.
_NINO = re.compile(r"^([A-CEGHJ-PR-TW-Z])([A-CEGHJ-NPR-TW-Z])([0-9]{6})([A-D])$")
_NINO_UNISSUED_PREFIXES = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})

# UK postcode (BS 7666 shape): outward code, one space, inward code; plus GIR 0AA.
_POSTCODE = re.compile(
    r"^(GIR 0AA|[A-PR-UWYZ]([0-9]{1,2}|[A-HK-Y][0-9]{1,2}|[0-9][A-HJKPSTUW]|[A-HK-Y][0-9][ABEHMNPRVWXY]) "
    r"[0-9][ABD-HJLNP-UW-Z]{2})$"
)

# DVLA: 5 characters of surname (padded with 9), 6 digits from the date of birth, 2 initials (padded with 9),
# an arbitrary digit, 2 check characters.
_DRIVING_LICENCE = re.compile(r"^[A-Z9]{5}[0-9]{6}[A-Z9]{2}[0-9][A-Z0-9]{2}$")
_PASSPORT = re.compile(r"^[0-9]{9}$")


_SPACES = re.compile(r"\s+")
_NINO_SHAPE = re.compile(r"[A-Z]{2}[0-9]{6}[A-Z]")


def _compact(value: str) -> str:
    return _SPACES.sub("", value).upper()


def normalise_nino(value: str) -> str:
    """A National Insurance number, upper case without spaces (e.g. ``QQ123456C``)."""
    nino = _compact(value)
    if len(nino) != 9:
        raise ValueError("NINO must be 2 letters, 6 digits and a suffix letter (9 characters)")
    if not _NINO_SHAPE.fullmatch(nino):
        raise ValueError("NINO must be 2 letters, 6 digits and a suffix letter")
    if not _NINO.fullmatch(nino):
        if nino[8] not in "ABCD":
            raise ValueError("NINO suffix must be A, B, C or D")
        raise ValueError("NINO prefix letters are not allowed (D, F, I, Q, U, V never; O not second)")
    if nino[:2] in _NINO_UNISSUED_PREFIXES:
        raise ValueError("NINO prefix is one never issued (BG, GB, KN, NK, NT, TN, ZZ)")
    return nino


def nhs_check_digit(first_nine: str) -> int | None:
    """The modulus 11 check digit for nine NHS number digits, or None when no valid number has them."""
    total = sum(int(digit) * weight for digit, weight in zip(first_nine, range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        return 0
    if check == 10:
        return None
    return check


def normalise_nhs_number(value: str) -> str:
    """An NHS number as 10 digits (spaces and hyphens removed), with a valid modulus 11 check digit."""
    digits = re.sub(r"[\s-]", "", value)
    if not re.fullmatch(r"[0-9]{10}", digits):
        raise ValueError("NHS number must be 10 digits")
    if nhs_check_digit(digits[:9]) != int(digits[9]):
        raise ValueError("NHS number check digit (modulus 11) does not match")
    return digits


def normalise_postcode(value: str) -> str:
    """A UK postcode in upper case with exactly one space before the inward code (e.g. ``SW1A 2AA``)."""
    compact = _compact(value)
    if not 5 <= len(compact) <= 7:
        raise ValueError("postcode must be 5 to 7 characters without the space")
    postcode = f"{compact[:-3]} {compact[-3:]}"
    if not _POSTCODE.fullmatch(postcode):
        raise ValueError("postcode is not in the UK postcode format (outward code, space, inward code)")
    return postcode


def normalise_driving_licence_number(value: str) -> str:
    """A DVLA driving licence number: 16 characters in the DVLA layout."""
    number = _compact(value)
    if len(number) != 16:
        raise ValueError("driving licence number must be 16 characters")
    if not _DRIVING_LICENCE.fullmatch(number):
        raise ValueError("driving licence number is not in the DVLA layout (5 surname, 6 digits, 2 initials, ...)")
    month_digits = int(number[6:8])
    if month_digits not in range(1, 13) and month_digits not in range(51, 63):
        raise ValueError("driving licence number month of birth is not 01-12 (or 51-62 for women)")
    return number


def normalise_passport_number(value: str) -> str:
    """A UK passport number: 9 digits."""
    number = _compact(value)
    if not _PASSPORT.fullmatch(number):
        raise ValueError("passport number must be 9 digits")
    return number
