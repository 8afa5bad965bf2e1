"""Read and validate files of events (JSONL or CSV) row by row; errors name line, field and rule, never values.

Rows are validated by the pydantic models, so a file is held to exactly the contract the bus carries. Error text
is built from the field path and the rule only (pydantic's ``loc`` and ``msg``, never its ``input``): the errors
reach terminals and logs, and the values are names, identifiers and dates of birth. Field paths come from the
file's structure (JSON keys, CSV column names), never from its cells.

JSONL layout
    One event per line: a JSON object with ``event_type`` plus the event's fields, nested as in the model (what
    ``event.model_dump_json()`` gives, plus ``event_type``; ``corrected`` holds the details object itself).
    Blank lines are skipped. A key repeated within one object is an error.

CSV layout
    - Line 1 is the header. It must have an ``event_type`` column; every other column is the dotted path of a
      leaf field, e.g. ``event_id``, ``entry.registration_district``, ``death.deceased.given_names``,
      ``death.deceased.identifiers.nino``, ``death.deceased.address.postcode``. Unknown, repeated or empty
      column names reject the file (a typo would otherwise drop data silently). The entry takes six columns, all
      required: ``entry.registration_district``, ``entry.sub_district``, ``entry.register``,
      ``entry.register_number``, ``entry.entry_number``, ``entry.year_of_registration``.
    - One event per row. An empty cell means absent (null); so one file can mix event types, each row filling
      the columns of its own type. A nested object whose cells are all empty is absent. Cells are trimmed.
    - List fields (``...address.lines``) hold their items separated by ``|`` (so an item cannot contain ``|``).
    - Dates are ``YYYY-MM-DD``; ``recorded_at`` is ISO 8601 with a zone (``2024-03-01T09:30:00Z``); booleans
      ``true``/``false``; enums by name (``DEATH``, ``CLERICAL_ERROR``).
    - Corrections (``RegistrationCorrected``): the corrected details use the same columns as the registration
      event of the entry's register, prefixed with ``corrected.``: ``corrected.death.deceased.given_names``,
      ``corrected.birth.child.date_of_birth``, ``corrected.civil_partnership.partner_1.person.family_name``. The
      segment after ``corrected`` names the details kind (``birth``, ``death``, ``marriage``,
      ``civil_partnership``); it must be the entry's register, and a row may fill only one kind.
    - Blank rows and rows whose cells are all empty are skipped.

Line numbers are physical lines of the file (the CSV header is line 1); a CSV row spanning lines (a quoted
newline) is reported at the line where it starts.

A file is also invalid when one ``event_id`` appears twice: consumers de-duplicate by it, so the second event
would be silently ignored; the error names the line that used it first. The duplicate check keeps every id seen
with its line (about 150 bytes each), the only state that grows with the file; rows themselves are streamed.

Hostile input never stops the reader with a traceback: a line longer than ``MAX_LINE_BYTES``, bytes that are not
UTF-8, arrays nested thousands deep, ``NaN`` or numbers too large for their field are each reported by line and
rule. A CSV file that cannot be parsed further (an unclosed quote, an overlong line) is reported where that
happens and reading stops there. A required column missing from a CSV header is reported once, on line 1, not
in every row that needs it. Rules are in this project's words (``schemas.rules``), never the validation library's.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
import types
import typing
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Annotated, Any, BinaryIO, TextIO
from uuid import UUID

import orjson
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from producers.stage_times import StageTimes
from schemas.models import EVENT_MODELS, Event, RegistrationCorrected, RegistrationEvent
from schemas.rules import RULE_TEXTS, UNKNOWN_RULE, rule_text
from schemas.topics import Register

__all__ = [
    "LIST_SEPARATOR",
    "MAX_LINE_BYTES",
    "RULE_TEXTS",
    "UNKNOWN_RULE",
    "EventFileReader",
    "FileFormat",
    "Row",
    "RowError",
    "ValidationReport",
    "csv_columns",
    "detect_format",
    "event_record",
    "event_to_csv_row",
    "event_to_json_line",
    "jsonl_raw",
    "validate_file",
    "with_duplicate_check",
    "write_event_file",
    "write_json_lines",
]

LIST_SEPARATOR = "|"
MAX_LINE_BYTES = 1024 * 1024
"""Longest line read (a CSV line in characters): an event is a few KiB, so anything near this is not one."""
_EVENT_TYPE = "event_type"
_CORRECTED = "corrected"
_NOT_UTF8 = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8, kept as surrogates by surrogateescape
_KNOWN_TYPES = ", ".join(EVENT_MODELS)


class FileFormat(StrEnum):
    """Supported event file formats."""

    JSONL = "jsonl"
    CSV = "csv"


def detect_format(path: Path) -> FileFormat:
    """The format named by the file's suffix (.jsonl/.ndjson or .csv); ValueError when it says neither."""
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".ndjson"}:
        return FileFormat.JSONL
    if suffix == ".csv":
        return FileFormat.CSV
    raise ValueError(f"cannot tell the format of {path.name!r} from its suffix: say jsonl or csv")


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem in one row: where (line, field) and which rule, without the value."""

    line: int
    field: str
    rule: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.rule}"


@dataclass(frozen=True, slots=True)
class Row:
    """One row of a file: its event when valid, otherwise its errors."""

    line: int
    event: Event | None
    errors: tuple[RowError, ...] = ()

    @property
    def valid(self) -> bool:
        """True when the row is an event that may be published."""
        return self.event is not None


# ---- the shape of the models, for CSV columns ---------------------------------------------------------------


def _details_fields() -> dict[Register, tuple[str, type[BaseModel]]]:
    """Register -> (field name on its registration event, details model), read from the models themselves."""
    found: dict[Register, tuple[str, type[BaseModel]]] = {}
    for model in EVENT_MODELS.values():
        if issubclass(model, RegistrationEvent):
            (name,) = (n for n in model.model_fields if n not in Event.model_fields)
            annotation = model.model_fields[name].annotation
            assert isinstance(annotation, type) and issubclass(annotation, BaseModel)
            found[model.register_of_type] = (name, annotation)
    return found


_DETAILS = _details_fields()
_KIND_REGISTER = {name: register for register, (name, _) in _DETAILS.items()}


def _unwrap(annotation: Any) -> tuple[list[Any], bool]:
    """The non-None types an annotation allows, and whether it is a list of them."""
    if typing.get_origin(annotation) is Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members: list[Any] = []
        is_list = False
        for arg in typing.get_args(annotation):
            if arg is not type(None):
                inner, inner_list = _unwrap(arg)
                members.extend(inner)
                is_list = is_list or inner_list
        return members, is_list
    if typing.get_origin(annotation) is list:
        return _unwrap(typing.get_args(annotation)[0])[0], True
    return [annotation], False


def _walk(model: type[BaseModel], prefix: str, out: dict[str, bool]) -> None:
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        members, is_list = _unwrap(info.annotation)
        models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
        if not models:
            out[path] = is_list
        elif len(models) == 1:
            _walk(models[0], f"{path}.", out)
        else:  # the details union of a correction: one column group per kind
            for kind, details in _DETAILS.values():
                if details in models:
                    _walk(details, f"{path}.{kind}.", out)


@cache
def _columns() -> dict[str, bool]:
    """Every CSV column path (in a stable order: common fields, then each type's own) -> is it a list."""
    out: dict[str, bool] = {_EVENT_TYPE: False}
    _walk(Event, "", out)
    for model in EVENT_MODELS.values():
        _walk(model, "", out)
    return out


def csv_columns() -> list[str]:
    """Every column a CSV event file may have, ``event_type`` first."""
    return list(_columns())


# ---- writing (for exports, fixtures and tests) ----------------------------------------------------------------


def event_record(event: Event) -> dict[str, Any]:
    """One JSONL record: ``event_type`` first, then the fields as JSON (``model_dump(mode="json")``)."""
    return {_EVENT_TYPE: event.event_type, **event.model_dump(mode="json")}


def event_to_json_line(event: Event) -> str:
    """One JSONL line (without newline) for ``event``."""
    return json.dumps(event_record(event), ensure_ascii=False)


def write_json_lines(events: Iterable[Event], out: TextIO) -> int:
    """Write one JSON object per line (the layout ``EventFileReader`` reads); returns how many."""
    count = 0
    for event in events:
        out.write(event_to_json_line(event) + "\n")
        count += 1
    return count


def _flatten(value: Any, prefix: str, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{prefix}{key}.", out)
    elif value is None:
        return
    elif isinstance(value, list):
        out[prefix[:-1]] = LIST_SEPARATOR.join(str(item) for item in value)
    elif isinstance(value, bool):
        out[prefix[:-1]] = "true" if value else "false"
    else:
        out[prefix[:-1]] = str(value)


def event_to_csv_row(event: Event) -> dict[str, str]:
    """The non-empty cells of ``event`` as a CSV row, by column."""
    record = event.model_dump(mode="json")
    if isinstance(event, RegistrationCorrected):
        record[_CORRECTED] = {_DETAILS[event.entry.register][0]: record[_CORRECTED]}
    row = {_EVENT_TYPE: event.event_type}
    _flatten(record, "", row)
    return row


def write_event_file(path: Path, events: Iterable[Event], file_format: FileFormat | None = None) -> int:
    """Write ``events`` to ``path`` in the file layout ``EventFileReader`` reads; returns how many."""
    file_format = file_format or detect_format(path)
    count = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        if file_format is FileFormat.JSONL:
            count = write_json_lines(events, out)
        else:
            writer = csv.DictWriter(out, fieldnames=csv_columns(), lineterminator="\n")
            writer.writeheader()
            for event in events:
                writer.writerow(event_to_csv_row(event))
                count += 1
    return count


# ---- reading --------------------------------------------------------------------------------------------------


class _RepeatedKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class _NotANumber(ValueError):
    """JSON has no NaN or Infinity; Python's parser accepts them unless told not to."""


def _no_constants(name: str) -> Any:
    raise _NotANumber(name)


class _LineTooLong(Exception):
    """A CSV line beyond ``MAX_LINE_BYTES`` characters: raised through the csv reader, which then cannot go on."""


def _bounded_lines(handle: BinaryIO) -> Iterator[tuple[bytes | None, int]]:
    """Each line with its size in bytes; None for a line longer than ``MAX_LINE_BYTES``, skipped without holding it."""
    while line := handle.readline(MAX_LINE_BYTES + 1):
        size = len(line)
        if size <= MAX_LINE_BYTES or line.endswith(b"\n"):
            yield line, size
            continue
        while line and not line.endswith(b"\n"):
            line = handle.readline(MAX_LINE_BYTES)
            size += len(line)
        yield None, size


def _bounded_text_lines(text: io.TextIOWrapper) -> Iterator[str]:
    """Lines for the csv reader; raises ``_LineTooLong`` instead of reading a line of unbounded length."""
    while line := text.readline(MAX_LINE_BYTES + 1):
        if len(line) > MAX_LINE_BYTES and not line.endswith(("\n", "\r")):
            raise _LineTooLong
        yield line


_TOO_LONG = f"is longer than {MAX_LINE_BYTES // 1024} KiB (one event is a few KiB)"
# Python's csv module's messages, in this project's words.
_CSV_PROBLEMS = (
    ("field larger than field limit", f"a cell is longer than {csv.field_size_limit()} characters"),
    ("',' expected after '\"'", "a quoted cell has text after its closing quote (double a quote inside a cell)"),
    ("unexpected end of data", "a quoted cell is never closed"),
    ("line contains NUL", "it contains a NUL byte"),
    ("new-line character seen in unquoted field", "a line break appears in a cell without quotes"),
)


def _csv_problem(exc: csv.Error) -> str:
    text = str(exc)
    return next((words for prefix, words in _CSV_PROBLEMS if text.startswith(prefix)), "its quoting is malformed")


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _RepeatedKey(key)
        result[key] = value
    return result


def _parse_fast(line: bytes) -> dict[str, Any] | None:
    """The line's object parsed by orjson when it certainly has no repeated key; None to take the strict path
    (Python's json with a hook per object), which also words every error.

    orjson keeps the last of repeated keys silently, so the parsed object is checked against the raw line: every
    key of the text is followed by one colon outside strings, so the line's colons equal the parsed keys plus the
    colons inside parsed strings exactly when no key was dropped. That count is the colons of the object written
    back by orjson (one per key, strings verbatim, none in numbers or literals): one C call, not a Python walk.
    A ``\\u`` escape could spell a colon the raw text does not show, so such lines take the strict path.
    """
    if b"\\u" in line:
        return None
    try:
        data = orjson.loads(line)
        if not isinstance(data, dict) or orjson.dumps(data).count(b":") != line.count(b":"):
            return None
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):  # the latter: nesting deeper than orjson writes
        return None
    return data


@dataclass(slots=True)
class _Raw:
    """A record before validation: its data, or the errors that stop it from being read at all."""

    line: int
    data: dict[str, Any] | None
    errors: list[RowError]
    kind: str | None = None  # CSV: the details kind named by corrected.<kind>.* columns


def with_duplicate_check(row: Row, event_id: bytes | None, seen: dict[bytes, int]) -> Row:
    """``row`` with the file-wide rule added: an event id used on an earlier line makes it invalid. ``seen`` maps
    each id met so far to its first line; rows must come in file order."""
    if event_id is None:
        return row
    first = seen.setdefault(event_id, row.line)
    if first == row.line:
        return row
    return Row(row.line, None, (*row.errors, RowError(row.line, "event_id", f"event id already used on line {first}")))


def jsonl_raw(number: int, line_bytes: bytes | None) -> _Raw | None:
    """One JSONL line as a record to validate, or its errors; None for a blank line (``line_bytes`` None: the
    line was longer than ``MAX_LINE_BYTES``)."""
    if line_bytes is None:
        return _Raw(number, None, [RowError(number, "(line)", _TOO_LONG)])
    if not line_bytes.strip():
        return None
    fast = _parse_fast(line_bytes)
    if fast is not None:
        return _Raw(number, fast, [])
    try:
        text = line_bytes.decode("utf-8")
    except UnicodeDecodeError:
        return _Raw(number, None, [RowError(number, "(line)", "is not valid UTF-8 text")])
    if number == 1:
        text = text.removeprefix("\ufeff")
    try:
        data = json.loads(text, object_pairs_hook=_no_repeated_keys, parse_constant=_no_constants)
    except _RepeatedKey as exc:
        return _Raw(number, None, [RowError(number, _field_name(exc.key), "appears twice in one JSON object")])
    except json.JSONDecodeError as exc:
        rule = f"is not valid JSON: {exc.msg} (column {exc.colno})"
        return _Raw(number, None, [RowError(number, "(line)", rule)])
    except _NotANumber:
        rule = "is not valid JSON: NaN and Infinity are not JSON numbers"
        return _Raw(number, None, [RowError(number, "(line)", rule)])
    except RecursionError:
        rule = "is not valid JSON for an event: arrays or objects nested too deeply"
        return _Raw(number, None, [RowError(number, "(line)", rule)])
    except ValueError:  # e.g. an integer of more digits than Python converts
        return _Raw(number, None, [RowError(number, "(line)", "is not valid JSON: a number is too long")])
    if not isinstance(data, dict):
        return _Raw(number, None, [RowError(number, "(line)", "must be a JSON object (one event per line)")])
    return _Raw(number, data, [])


class EventFileReader:
    """Iterate a file's rows, each validated; every iteration reads the file afresh (rows are never held).

    ``bytes_read`` tells how far the current iteration has got, for progress bars; ``timings``, when given, gathers
    the time spent parsing and validating (``civreg bench``'s per-event profile).
    """

    def __init__(self, path: Path, file_format: FileFormat | None = None, *, timings: StageTimes | None = None) -> None:
        self.path = path
        self.file_format = file_format or detect_format(path)
        self.timings = timings
        self.bytes_read = 0
        self._header: frozenset[str] = frozenset()  # CSV: the header's columns and every dotted prefix of them
        self._missing_columns: set[str] = set()  # CSV: required columns the header lacks, already reported

    @property
    def size(self) -> int:
        """The file's size in bytes."""
        return self.path.stat().st_size

    def __iter__(self) -> Iterator[Row]:
        seen: dict[bytes, int] = {}
        self._header = frozenset()
        self._missing_columns = set()
        self.bytes_read = 0
        with self.path.open("rb") as handle:
            raws = self._jsonl(handle) if self.file_format is FileFormat.JSONL else self._csv(handle)
            if self.timings is not None:
                yield from self._timed(raws, seen, self.timings)
                return
            for raw in raws:
                yield self._validate(raw, seen)

    def _timed(self, raws: Iterator[_Raw], seen: dict[bytes, int], timings: StageTimes) -> Iterator[Row]:
        """The rows, with reading and parsing and validation timed apart (what the caller does between rows,
        such as encoding, is not counted here)."""
        clock = time.perf_counter
        started = clock()
        for raw in raws:
            parsed = clock()
            row = self._validate(raw, seen)
            validated = clock()
            timings.parse += parsed - started
            timings.validate += validated - parsed
            yield row
            started = clock()

    # -- JSONL --

    def _jsonl(self, handle: BinaryIO) -> Iterator[_Raw]:
        for number, (line_bytes, size) in enumerate(_bounded_lines(handle), start=1):
            self.bytes_read += size
            raw = jsonl_raw(number, line_bytes)
            if raw is not None:
                yield raw

    # -- CSV --

    def _csv(self, handle: BinaryIO) -> Iterator[_Raw]:
        text = io.TextIOWrapper(handle, encoding="utf-8-sig", errors="surrogateescape", newline="")
        reader = csv.reader(_bounded_text_lines(text), strict=True)
        try:
            header = next(reader, None)
        except csv.Error as exc:
            yield _Raw(1, None, [RowError(1, "(header)", f"is not readable as CSV: {_csv_problem(exc)}")])
            return
        except _LineTooLong:
            yield _Raw(1, None, [RowError(1, "(header)", _TOO_LONG)])
            return
        if header is None:
            yield _Raw(1, None, [RowError(1, "(header)", "the file is empty: line 1 must be the header")])
            return
        columns = [name.strip() for name in header]
        header_errors = _header_errors(columns)
        if header_errors:
            yield _Raw(1, None, header_errors)
            return
        lists = _columns()
        self._header = frozenset(
            ".".join(parts[:end]) for parts in (c.split(".") for c in columns) for end in range(1, len(parts) + 1)
        )
        end = reader.line_num
        while True:
            start = end + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                line = reader.line_num
                rule = f"is not readable as CSV, reading stopped: {_csv_problem(exc)}"
                yield _Raw(line, None, [RowError(line, "(row)", rule)])
                return
            except _LineTooLong:
                line = reader.line_num + 1
                yield _Raw(line, None, [RowError(line, "(line)", f"{_TOO_LONG}; reading stopped")])
                return
            finally:
                self.bytes_read = handle.tell()
            end = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) != len(columns):
                rule = f"has {len(cells)} cells but the header has {len(columns)} columns"
                yield _Raw(start, None, [RowError(start, "(row)", rule)])
                continue
            yield _csv_record(start, columns, cells, lists)

    # -- validation --

    def _validate(self, raw: _Raw, seen: dict[bytes, int]) -> Row:
        row, event_id = self.check(raw)
        return with_duplicate_check(row, event_id, seen)

    def check(self, raw: _Raw) -> tuple[Row, bytes | None]:
        """The row validated on its own (every rule but the file-wide duplicate check), and its event id when it
        has a readable one (for ``with_duplicate_check``)."""
        if raw.data is None:
            return Row(raw.line, None, tuple(raw.errors)), None
        errors = list(raw.errors)
        event: Event | None = None
        event_type = raw.data.pop(_EVENT_TYPE, None)
        model = EVENT_MODELS.get(event_type) if isinstance(event_type, str) else None
        if event_type is None or event_type == "":
            errors.append(RowError(raw.line, _EVENT_TYPE, f"is required (one of {_KNOWN_TYPES})"))
        elif model is None:
            errors.append(RowError(raw.line, _EVENT_TYPE, f"is not a known event type (one of {_KNOWN_TYPES})"))
        else:
            try:
                event = model.model_validate(raw.data)
            except ValidationError as exc:
                details = exc.errors(include_url=False, include_context=True, include_input=False)
                if model is RegistrationCorrected:
                    details = _one_details_kind(details, raw)
                for detail in details:
                    error = self._row_error(raw.line, detail, raw.kind)
                    if error is not None:
                        errors.append(error)
            except RecursionError:
                errors.append(RowError(raw.line, "(event)", "nests arrays or objects too deeply"))
        event_id = event.event_id if event is not None else _uuid_or_none(raw.data.get("event_id"))
        id_bytes = event_id.bytes if event_id is not None else None
        if errors:
            return Row(raw.line, None, tuple(errors)), id_bytes
        return Row(raw.line, event), id_bytes

    def _row_error(self, line: int, detail: ErrorDetails, kind: str | None) -> RowError | None:
        """The row's error for one validation detail; None when a file-level error already covers it."""
        parts: list[str | int] = list(detail["loc"])
        rule = rule_text(detail)
        if self.file_format is FileFormat.CSV:
            if parts[:1] == [_CORRECTED] and kind is not None:
                parts.insert(1, kind)
            items = [p for p in parts if isinstance(p, int)]
            if items:
                rule = f"item {items[0] + 1} of the {LIST_SEPARATOR}-separated list: {rule}"
            name = ".".join(str(p) for p in parts if not isinstance(p, int))
            if detail["type"] == "missing" and name and name not in self._header:
                return self._missing_column(name)
        else:
            name = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")
        return RowError(line, _field_name(name) if name else "(event)", rule)

    def _missing_column(self, name: str) -> RowError | None:
        """A required field no column of the header can fill: reported once, on the header's line."""
        if name in self._missing_columns:
            return None
        self._missing_columns.add(name)
        columns = f"{name} column" if name in _columns() else f"{name}.* columns"
        return RowError(1, name, f"is required, but the header has no {columns} (every row of this type needs it)")


def _field_name(name: str) -> str:
    """A key or column name from the file, quoted back only when it looks like a field path (not data)."""
    return name if _FIELD_PATH.fullmatch(name) else "(a key that is not a field name)"


_FIELD_PATH = re.compile(r"[a-z_][a-z0-9_]{0,63}(\.[a-z_][a-z0-9_]{0,63}|\[[0-9]{1,3}\]){0,15}")


def _header_errors(columns: list[str]) -> list[RowError]:
    """Problems with the header: column names are the file's structure, so naming them is safe and useful.

    A name that does not even look like a field path (bytes that are not UTF-8, spaces, a value) is named by its
    position instead.
    """
    if _EVENT_TYPE not in columns:
        # Without it line 1 is probably data, so its cells are not quoted back as column names.
        return [RowError(1, "(header)", "has no event_type column (line 1 must be the header)")]
    known = _columns()
    errors: list[RowError] = []
    counts = Counter(columns)
    for position, name in enumerate(columns, start=1):
        if not name:
            errors.append(RowError(1, f"(column {position})", "has no name"))
        elif not _FIELD_PATH.fullmatch(name):
            errors.append(RowError(1, f"(column {position})", "is not a field of any event type (see the CSV layout)"))
        elif name not in known:
            errors.append(RowError(1, name, "is not a field of any event type (see the CSV layout)"))
        elif counts[name] > 1 and columns.index(name) == position - 1:
            errors.append(RowError(1, name, "appears more than once in the header"))
    return errors


def _csv_record(line: int, columns: list[str], cells: list[str], lists: dict[str, bool]) -> _Raw:
    data: dict[str, Any] = {}
    errors: list[RowError] = []
    for column, cell in zip(columns, cells, strict=True):
        value = cell.strip()
        if not value:
            continue
        if _NOT_UTF8.search(value):
            errors.append(RowError(line, column, "is not valid UTF-8 text"))
            continue
        node = data
        *parents, leaf = column.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = [item.strip() for item in value.split(LIST_SEPARATOR)] if lists[column] else value
    if errors:
        return _Raw(line, None, errors)
    kind: str | None = None
    corrected = data.get(_CORRECTED)
    if isinstance(corrected, dict):
        kinds = list(corrected)
        if len(kinds) > 1:
            rule = "fills more than one details kind (" + ", ".join(f"corrected.{k}.*" for k in kinds) + ")"
            return _Raw(line, None, [RowError(line, _CORRECTED, rule)])
        kind = kinds[0]
        data[_CORRECTED] = corrected[kind]
        register = _register_or_none(data)
        if register is not None and _KIND_REGISTER[kind] is not register:
            rule = f"the corrected.{kind}.* columns must match entry.register (use corrected.{_DETAILS[register][0]}.*)"
            return _Raw(line, None, [RowError(line, _CORRECTED, rule)])
    return _Raw(line, data, [], kind)


def _register_or_none(data: dict[str, Any]) -> Register | None:
    entry = data.get("entry")
    value = entry.get("register") if isinstance(entry, dict) else None
    try:
        return Register(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _uuid_or_none(value: Any) -> UUID | None:
    try:
        return UUID(value) if isinstance(value, str) and len(value) <= 64 else None
    except ValueError:
        return None


def _one_details_kind(details: list[ErrorDetails], raw: _Raw) -> list[ErrorDetails]:
    """Errors of the details kind the row meant, named by plain field paths, whatever the union reported.

    Pydantic reports a union's errors under a member tag (``corrected.DeathDetails.deceased``), for every
    member or for the one its discriminator guessed; when no member is guessed, only that it is none of them.

    CSV rows name the kind in their columns (``corrected.death.*``). In JSONL the kind is the one the details
    come closest to (fewest errors; the entry's register wins a tie); when that is not the entry's register, the
    mismatch is reported too, since it is the likelier mistake.
    """
    in_union = [d["loc"][:1] == (_CORRECTED,) and (len(d["loc"]) > 1 or d["type"] != "missing") for d in details]
    if not any(in_union):
        return details
    others = [d for d, union in zip(details, in_union, strict=True) if not union]
    assert raw.data is not None
    value = raw.data.get(_CORRECTED)
    register = _register_or_none(raw.data)
    kinds = [_DETAILS[_KIND_REGISTER[raw.kind]]] if raw.kind is not None else list(_DETAILS.values())
    found: list[tuple[int, bool, str, list[ErrorDetails]]] = []
    for kind, model in kinds:
        try:
            model.model_validate(value)
            errors: list[ErrorDetails] = []
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_context=True, include_input=False)
        matches_register = register is not None and _KIND_REGISTER[kind] is register
        found.append((len(errors), not matches_register, kind, errors))
    _, mismatch, kind, best = min(found, key=lambda item: item[:2])
    result = others + [_error((_CORRECTED, *d["loc"]), d["msg"], d["type"], d.get("ctx")) for d in best]
    if mismatch and register is not None and raw.kind is None:
        result.append(_error((_CORRECTED,), f"holds {kind} details, not those of entry.register's kind"))
    return result


def _error(
    loc: tuple[str | int, ...], rule: str, error_type: str = "value_error", ctx: dict[str, Any] | None = None
) -> ErrorDetails:
    error: ErrorDetails = {"type": error_type, "loc": loc, "msg": rule, "input": None}
    if ctx is not None:
        error["ctx"] = ctx
    return error


# ---- a whole file ---------------------------------------------------------------------------------------------


@dataclass
class ValidationReport:
    """What a validation pass found: counts, valid events by type and register, and the first errors."""

    path: Path
    file_format: FileFormat
    max_errors: int | None = 1000
    rows: int = 0
    valid: int = 0
    invalid: int = 0
    error_count: int = 0
    errors: list[RowError] = field(default_factory=list)
    valid_by_type: Counter[str] = field(default_factory=Counter)
    valid_by_register: Counter[Register] = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        """True when every row is valid and there is at least one."""
        return self.invalid == 0 and self.valid > 0

    def add_valid(self, event_type: str, register: Register) -> None:
        """Count one valid row (when it was validated elsewhere, and only its type and register came back)."""
        self.rows += 1
        self.valid += 1
        self.valid_by_type[event_type] += 1
        self.valid_by_register[register] += 1

    @property
    def errors_not_kept(self) -> int:
        """Errors counted but not kept (beyond ``max_errors``)."""
        return self.error_count - len(self.errors)

    def add(self, row: Row) -> None:
        """Count one row."""
        if row.event is not None:
            self.add_valid(row.event.event_type, row.event.family)
            return
        self.rows += 1
        self.invalid += 1
        self.error_count += len(row.errors)
        room = len(row.errors) if self.max_errors is None else max(0, self.max_errors - len(self.errors))
        self.errors.extend(row.errors[:room])


def validate_file(
    path: Path,
    file_format: FileFormat | None = None,
    *,
    max_errors: int | None = 1000,
    on_progress: Callable[[int], None] | None = None,
    reader: EventFileReader | None = None,
    on_row: Callable[[Row], None] | None = None,
) -> ValidationReport:
    """Validate every row of ``path``, keeping counts and the first ``max_errors`` errors (None: all).

    ``on_progress`` receives the bytes read so far, every few hundred rows and at the end; ``on_row`` each row
    (``civreg publish`` encodes the valid ones then, so no row is validated twice).
    """
    reader = reader or EventFileReader(path, file_format)
    report = ValidationReport(path, reader.file_format, max_errors)
    for row in reader:
        report.add(row)
        if on_row is not None:
            on_row(row)
        if on_progress is not None and report.rows % 512 == 0:
            on_progress(reader.bytes_read)
    if on_progress is not None:
        on_progress(reader.bytes_read)
    return report
