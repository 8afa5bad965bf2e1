"""Validation errors in this project's words: the rule a field broke, never the value and never pydantic's phrasing.

Why: the words reach register-office staff (``civreg publish``), dead-letter reasons and logs. Pydantic's own
messages are written for programmers ("Input should be a valid dictionary or instance of Person"), and some quote
part of the input (``uuid_parsing``), which may be personal data.
"""

from __future__ import annotations

from pydantic_core import ErrorDetails

__all__ = ["RULE_TEXTS", "UNKNOWN_RULE", "rule_text"]

_DATE = "must be a date, YYYY-MM-DD"
_DATETIME = "must be a date and time with its time zone, e.g. 2024-03-01T09:30:00Z"
_WHOLE_NUMBER = "must be a whole number"
_UUID = "must be a UUID (32 hexadecimal digits in groups of 8-4-4-4-12)"
RULE_TEXTS: dict[str, str] = {
    # Every pydantic error type the event models can raise, in this project's words. Placeholders are filled
    # from the error's context (limits and allowed values from the models, never the input).
    "missing": "is required",
    "extra_forbidden": "is not a field here (for this event type or object)",
    "string_type": "must be text",
    "string_unicode": "must be text (it holds an unpaired surrogate, which is not a character)",
    "string_too_short": "must not be empty",
    "string_too_long": "must be at most {max_length} characters",
    "int_type": _WHOLE_NUMBER,
    "int_parsing": _WHOLE_NUMBER,
    "int_parsing_size": f"{_WHOLE_NUMBER} of sensible size",
    "int_from_float": f"{_WHOLE_NUMBER} (no fraction)",
    "finite_number": f"{_WHOLE_NUMBER} (a number this large is infinite to JSON readers)",
    "greater_than_equal": "must be at least {ge}",
    "less_than_equal": "must be at most {le}",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "date_type": _DATE,
    "date_parsing": _DATE,
    "date_from_datetime_parsing": _DATE,
    "date_from_datetime_inexact": f"{_DATE} (without a time of day)",
    "datetime_type": _DATETIME,
    "datetime_parsing": _DATETIME,
    "datetime_from_date_parsing": _DATETIME,
    "datetime_object_invalid": _DATETIME,
    "timezone_aware": f"{_DATETIME} (the time zone is missing)",
    "uuid_type": _UUID,
    "uuid_parsing": _UUID,
    "enum": "must be one of {expected}",
    "model_type": "must be an object of fields",
    "model_attributes_type": "must be an object of fields",
    "dict_type": "must be an object of fields",
    "list_type": "must be a list",
    "too_short": "must have at least {min_length} item(s)",
    "too_long": "must have at most {max_length} items",
}
_OWN_WORDS = frozenset({"value_error", "details_kind"})
"""Error types whose message is already this project's (the models' own validators)."""
UNKNOWN_RULE = "is not valid here"
"""For an error type missing from ``RULE_TEXTS``: vaguer than it should be, but never the library's words."""


def rule_text(detail: ErrorDetails) -> str:
    """The rule a detail broke, in this project's words."""
    if detail["type"] in _OWN_WORDS:
        return detail["msg"].removeprefix("Value error, ")
    template = RULE_TEXTS.get(detail["type"])
    if template is None:
        return UNKNOWN_RULE
    context = {key: str(value).replace("'", "") for key, value in detail.get("ctx", {}).items()}
    try:
        return template.format(**context)
    except (KeyError, IndexError):
        return template.split(" {", 1)[0]
