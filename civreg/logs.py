"""structlog set-up: JSON lines to stderr, bound context (event id, department, topic, partition, offset).

Never log names, identifiers, dates of birth or addresses: bind ids and positions only. And because a slip will
happen one day (an event passed whole to a debug line, an exception whose text quotes a record), every line goes
through ``redact_personal_data`` before it is rendered: personal fields are masked whatever a call passes in
(models, dicts, JSON, reprs, exception text), and strings that look like identifiers are masked wherever they are.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog
from pydantic import BaseModel

from schemas.identifiers import nhs_check_digit

__all__ = [
    "KAFKA_CLIENT_LOGGER",
    "PERSONAL_KEYS",
    "REDACTED",
    "configure_logging",
    "get_logger",
    "is_personal_key",
    "redact_personal_data",
    "redact_text",
    "redact_value",
]

KAFKA_CLIENT_LOGGER = "civreg.kafka"
"""librdkafka's own messages arrive on this stdlib logger (see ``civreg.kafka_config``)."""


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is now (test runners swap it), not the stream at configuration time."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _ToStructlog(logging.Handler):
    """Forward stdlib records (librdkafka's) into structlog, so every line has one format."""

    def emit(self, record: logging.LogRecord) -> None:
        get_logger(record.name).log(record.levelno, record.getMessage())


def configure_logging(level: str = "INFO", *, json: bool = True, client_level: str | None = None) -> None:
    """Route structlog (and the stdlib root logger) to stderr as JSON, or as readable text with ``json=False``."""
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            redact_personal_data,  # last before rendering: sees the message, the values and the exception text
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    client = logging.getLogger(KAFKA_CLIENT_LOGGER)
    client.handlers[:] = [_ToStructlog()]
    client.propagate = False
    client.setLevel(logging.getLevelNamesMapping()[(client_level or level).upper()])


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """A logger carrying ``component=name``."""
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(component=name)
    return logger


# Redaction ------------------------------------------------------------------------------------------------------

REDACTED = "[redacted]"

PERSONAL_KEYS = frozenset(
    {
        "given_names",
        "given_name",
        "forenames",
        "family_name",
        "surname",
        "surname_after",
        "previous_family_names",
        "maiden_name",
        "date_of_birth",
        "dob",
        "birth_date",
        "date_of_death",
        "sex",
        "nino",
        "nhs_number",
        "driving_licence_number",
        "passport_number",
        "identifiers",
        "address",
        "lines",
        "postcode",
        "town",
        "occupation",
        "cause_of_death",
        "mother",
        "child",
        "deceased",
        "second_parent",
        "surviving_partner",
        "person",
        "people",
        "recipient",
        "customer",
        "row",
        "rows",
    }
)
"""Keys whose values are personal data whatever they hold (a leaf is masked; so is a whole sub-tree)."""

_PERSONAL_PREFIXES = ("name", "surname", "given_name", "family_name", "party_", "partner", "date_of_", "place_of_")
_NOT_PERSONAL = frozenset({"date_of_registration"})  # the day the office registered it, as public as recorded_at


def is_personal_key(key: object) -> bool:
    """True for a key whose value is personal: ``PERSONAL_KEYS``, ``name*``, ``surname*``, ``party_*``,
    ``partner*``, ``date_of_*`` (birth, death, marriage; not registration), ``place_of_*`` (a place of death may be
    a home). Ids, topics and counts are not."""
    if not isinstance(key, str):
        return False
    lowered = key.lower()
    return lowered not in _NOT_PERSONAL and (lowered in PERSONAL_KEYS or lowered.startswith(_PERSONAL_PREFIXES))


# Identifiers as schemas.identifiers defines them, found anywhere in a text (not anchored, spaces allowed).
_NINO_IN_TEXT = re.compile(
    r"(?<![A-Za-z0-9])[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D](?![A-Za-z0-9])",
    re.IGNORECASE,
)
_DRIVING_LICENCE_IN_TEXT = re.compile(
    r"(?<![A-Za-z0-9])[A-Z9]{5}[0-9]{6}[A-Z9]{2}[0-9][A-Z0-9]{2}(?![A-Za-z0-9])", re.IGNORECASE
)
_POSTCODE_IN_TEXT = re.compile(
    r"(?<![A-Za-z0-9])(?:GIR ?0AA|[A-PR-UWYZ](?:[0-9]{1,2}|[A-HK-Y][0-9]{1,2}|[0-9][A-HJKPSTUW]|[A-HK-Y][0-9]"
    r"[ABEHMNPRVWXY]) ?[0-9][ABD-HJLNP-UW-Z]{2})(?![A-Za-z0-9])"
)
_NHS_IN_TEXT = re.compile(r"(?<![0-9])([0-9]{3})[ -]?([0-9]{3})[ -]?([0-9]{4})(?![0-9])")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# A key followed by = or : in text: ``given_names='Ann'``, ``"postcode": "LS1 4AP"``, ``\"nino\": \"...\"``.
_KEY_IN_TEXT = re.compile(r"""\\?["']?([A-Za-z_][A-Za-z0-9_]*)\\?["']?[ \t]*[:=][ \t]*""")
_OPENERS = {"(": ")", "[": "]", "{": "}"}


def _quoted_end(text: str, start: int) -> int:
    """The index after the string literal opening at ``start`` (``"``, ``'`` or an escaped ``\\"``)."""
    if text.startswith('\\"', start):
        close = text.find('\\"', start + 2)
        return len(text) if close < 0 else close + 2
    quote = text[start]
    index = start + 1
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] == quote:
            return index + 1
        index += 1
    return len(text)


def _value_end(text: str, start: int) -> int:
    """The index after the value starting at ``start``: a string, a bracketed group (``Person(...)`` too), or a
    bare word running to the next separator. Unbalanced text masks to its end (better too much than too little)."""
    if start >= len(text):
        return start
    if text[start] in "\"'" or text.startswith('\\"', start):
        return _quoted_end(text, start)
    constructor = re.match(r"[A-Za-z_][A-Za-z0-9_.]*\(", text[start:])
    index = start + (constructor.end() - 1 if constructor else 0)
    if text[index] not in _OPENERS:
        match = re.compile(r"[^,;)}\]\n]*").match(text, start)
        return match.end() if match else start
    depth: list[str] = []
    while index < len(text):
        char = text[index]
        if char in "\"'":
            index = _quoted_end(text, index)
            continue
        if char in _OPENERS:
            depth.append(_OPENERS[char])
        elif depth and char == depth[-1]:
            depth.pop()
            if not depth:
                return index + 1
        index += 1
    return len(text)


def _mask_keyed_values(text: str) -> str:
    """Mask the value after every personal key written in ``text`` (JSON, a dict or model repr, key=value)."""
    out: list[str] = []
    position = 0
    for match in _KEY_IN_TEXT.finditer(text):
        if match.start() < position or not is_personal_key(match.group(1)):
            continue
        end = _value_end(text, match.end())
        out += [text[position : match.end()], REDACTED]
        position = end
    return "".join(out) + text[position:] if out else text


def _mask_identifiers(text: str) -> str:
    text = _NINO_IN_TEXT.sub(REDACTED, text)
    text = _DRIVING_LICENCE_IN_TEXT.sub(REDACTED, text)
    text = _POSTCODE_IN_TEXT.sub(REDACTED, text)

    def nhs(match: re.Match[str]) -> str:
        digits = "".join(match.groups())
        return REDACTED if nhs_check_digit(digits[:9]) == int(digits[9]) else match.group(0)

    return _NHS_IN_TEXT.sub(nhs, text)


def redact_text(text: str) -> str:
    """``text`` with personal values after personal keys, and identifier-shaped strings, masked; UUIDs (event
    ids) are kept whole so an identifier pattern never bites into one."""
    text = _mask_keyed_values(text)
    pieces = _UUID.split(text)
    if len(pieces) == 1:
        return _mask_identifiers(text)
    ids = _UUID.findall(text)
    return "".join(_mask_identifiers(piece) + (ids[i] if i < len(ids) else "") for i, piece in enumerate(pieces))


def redact_value(value: Any) -> Any:
    """``value`` with personal data masked: models and dataclasses as their fields, mappings and sequences walked
    (a personal key's value masked whole), text scanned; numbers, booleans and None kept as they are."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, BaseModel):
        return redact_value(value.model_dump(mode="json"))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return redact_value({field.name: getattr(value, field.name) for field in dataclasses.fields(value)})
    if isinstance(value, Mapping):
        return {
            key: (REDACTED if is_personal_key(key) and item is not None else redact_value(item))
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(item) for item in value]
    text = str(value)  # dates, UUIDs, paths, exceptions: kept as themselves unless their text needs masking
    masked = redact_text(text)
    return value if masked == text else masked


def redact_personal_data(
    _logger: object, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask personal data in every key, value, message and exception text of a line.

    It never raises (a log call must not fail): if masking itself fails, the line keeps only its level, time and
    component, with a note.
    """
    try:
        return {
            key: (REDACTED if is_personal_key(key) and value is not None else redact_value(value))
            for key, value in event_dict.items()
        }
    except Exception as exc:  # a log line must never crash its caller
        kept = {key: event_dict[key] for key in ("level", "timestamp", "component") if key in event_dict}
        return {**kept, "event": REDACTED, "redaction_failed": type(exc).__name__}
