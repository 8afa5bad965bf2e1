"""Hostile event files (pure: no Kafka): whatever a file holds, every bad line gets a line/field/rule error in this
project's words, nothing crashes, and no value is quoted back.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from producers.event_files import (
    MAX_LINE_BYTES,
    RULE_TEXTS,
    UNKNOWN_RULE,
    EventFileReader,
    RowError,
    csv_columns,
    event_to_csv_row,
    event_to_json_line,
    validate_file,
)
from schemas.models import EVENT_MODELS
from tests.support.factories import make_birth, make_correction, make_death

REPO = Path(__file__).resolve().parents[2]
DEATH = make_death()
GOOD = event_to_json_line(make_birth(entry_number=9))
NESTED = "[" * 200_000
# Phrases of pydantic's own messages; none may reach a report.
LIBRARY_WORDS = ("Input should", "should have", "Field required", "Value error", "valid dictionary", "`", "Unable to")


def _record(event: Any = DEATH) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(event_to_json_line(event))
    return record


def _with(path: tuple[str | int, ...], value: object, event: Any = DEATH) -> dict[str, Any]:
    record = _record(event)
    node: Any = record
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return record


def _jsonl(tmp_path: Path, *lines: str | bytes) -> Path:
    """A file of one good event on line 1 and then ``lines``."""
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(line if isinstance(line, bytes) else line.encode() for line in (GOOD, *lines)) + b"\n")
    return path


def _assert_clean(errors: list[RowError], *secrets: str) -> None:
    text = "\n".join(str(error) for error in errors)
    for secret in secrets:
        assert secret not in text
    for words in LIBRARY_WORDS:
        assert words not in text, text
    assert UNKNOWN_RULE not in [error.rule for error in errors], text


# ---- JSONL --------------------------------------------------------------------------------------------------------

# (name, line, expected field, part of the expected rule)
HOSTILE_LINES: list[tuple[str, str | bytes, str, str]] = [
    ("200,000 nested [", NESTED, "(line)", "nested too deeply"),
    ("deep nesting inside an object", '{"event_type": "DeathRegistered", "death": ' + NESTED, "(line)", "too deeply"),
    ("NaN is not JSON", json.dumps(_with(("version",), float("nan"))), "(line)", "NaN and Infinity"),
    (
        "a number beyond a float",
        json.dumps(_with(("version",), 1)).replace('"version": 1', '"version": 1e999'),
        "version",
        "must be a whole number",
    ),
    (
        "1e999 as a date",
        json.dumps(_with(("death", "date_of_death"), 0)).replace('"date_of_death": 0', '"date_of_death": 1e999'),
        "death.date_of_death",
        "must be a date",
    ),
    (
        "an integer of 5000 digits (more than Python converts)",
        json.dumps(_with(("entry", "entry_number"), 0)).replace('"entry_number": 0', '"entry_number": ' + "9" * 5000),
        "(line)",
        "a number is too long",
    ),
    (
        "an integer of 4000 digits",
        json.dumps(_with(("entry", "entry_number"), 0)).replace('"entry_number": 0', '"entry_number": ' + "9" * 4000),
        "entry.entry_number",
        "must be at most 2147483647",
    ),
    ("a raw NUL byte", json.dumps(_record()).replace("Margaret", "Marg\x00aret"), "(line)", "not valid JSON"),
    (
        "an escaped NUL in a name",
        json.dumps(_with(("death", "deceased", "given_names"), "Marg\x00aret")),
        "death.deceased.given_names",
        "without control characters",
    ),
    (
        "a newline in a name",
        json.dumps(_with(("death", "deceased", "family_name"), "Mor\ngan")),
        "death.deceased.family_name",
        "one line of text",
    ),
    (
        "an unpaired surrogate",
        json.dumps(_with(("death", "place_of_death"), "Leeds \ud800")),
        "death.place_of_death",
        "must be text",
    ),
    ("a top-level array", json.dumps([_record()]), "(line)", "must be a JSON object"),
    ("a top-level string", '"Margaret Morgan"', "(line)", "must be a JSON object"),
    ("a top-level null", "null", "(line)", "must be a JSON object"),
    ("a BOM after line 1", "\ufeff" + json.dumps(_record()), "(line)", "not valid JSON"),
    (
        "event_type not a string",
        json.dumps({**_record(), "event_type": ["DeathRegistered"]}),
        "event_type",
        "not a known event type",
    ),
    (
        "event_id nested 900 deep",
        json.dumps(_record())
        .replace('"event_id": "', '"event_id": ' + "[" * 900 + '"', 1)
        .replace(f'"{DEATH.event_id}"', f'"{DEATH.event_id}"' + "]" * 900, 1),
        "event_id",
        "must be a UUID",
    ),
    (
        "a key holding a value",
        json.dumps({**_record(), "Margaret Morgan": 1}),
        "(a key that is not a field name)",
        "not a field here",
    ),
    (
        "a repeated key holding a value",
        '{"event_type": "DeathRegistered", "Margaret": 1, "Margaret": 2}',
        "(a key that is not a field name)",
        "appears twice",
    ),
    ("not UTF-8", b'{"event_type": "DeathRegistered", "x": "Marg\xe9ret"}', "(line)", "not valid UTF-8"),
]


@pytest.mark.parametrize(("line", "field", "rule"), [c[1:] for c in HOSTILE_LINES], ids=[c[0] for c in HOSTILE_LINES])
def test_each_hostile_jsonl_line_is_reported_by_line_field_and_rule(
    tmp_path: Path, line: str | bytes, field: str, rule: str
) -> None:
    report = validate_file(_jsonl(tmp_path, line))
    assert (report.rows, report.valid, report.invalid) == (2, 1, 1)
    assert {error.line for error in report.errors} == {2}
    assert any(error.field == field and rule in error.rule for error in report.errors), report.errors
    _assert_clean(report.errors, "Margaret", "Morgan")


def test_an_overlong_line_is_skipped_unread_and_the_next_line_is_read(tmp_path: Path) -> None:
    overlong = '{"given_names": "' + "Margaret " * (MAX_LINE_BYTES // 9) + '"}'
    path = _jsonl(tmp_path, overlong, event_to_json_line(make_birth(entry_number=11)))
    report = validate_file(path)
    assert (report.rows, report.valid, report.invalid) == (3, 2, 1)
    assert [str(e) for e in report.errors] == ["line 2: (line): is longer than 1024 KiB (one event is a few KiB)"]
    reader = EventFileReader(path)
    assert len(list(reader)) == 3
    assert reader.bytes_read == reader.size  # progress counts the skipped line too


def test_an_overlong_last_line_without_newline(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(GOOD + "\n" + "[" * (MAX_LINE_BYTES + 1))
    assert [(e.line, e.field) for e in validate_file(path).errors] == [(2, "(line)")]


def test_a_line_of_exactly_the_limit_is_read(tmp_path: Path) -> None:
    other = event_to_json_line(make_birth(entry_number=10))
    line = other[:-1] + " " * (MAX_LINE_BYTES - len(other)) + "}"
    assert len(line.encode()) == MAX_LINE_BYTES
    report = validate_file(_jsonl(tmp_path, line))
    assert (report.valid, report.invalid) == (2, 0)


def test_bom_and_crlf_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + event_to_json_line(DEATH).encode() + b"\r\n" + GOOD.encode() + b"\r\n\r\n")
    report = validate_file(path)
    assert (report.valid, report.invalid) == (2, 0)


def test_publish_dry_run_reports_the_nested_brackets_line_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "nested.jsonl"
    path.write_text(NESTED + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "civreg", "publish", str(path), "--dry-run"],
        env={**os.environ, "COLUMNS": "200", "CIVREG_BOOTSTRAP_SERVERS": "127.0.0.1:1"},
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stdout + done.stderr
    rows = [line for line in done.stdout.splitlines() if "(line)" in line]
    assert len(rows) == 1, done.stdout
    assert "1" in rows[0].split("│")[1] and "nested too deeply" in rows[0]
    assert "Nothing was published: 1 invalid row(s)" in done.stdout


# ---- every error type in this project's words ----------------------------------------------------------------

HOSTILE_VALUES: dict[tuple[str | int, ...], list[object]] = {
    ("event_id",): [1, "Margaret", None, [], "1" * 5000],
    ("version",): [1e999, "x", 1.5, None, [], {}, -1, 2**40, "9" * 5000],
    ("recorded_at",): [1e999, "x", "2024-01-01", "2024-01-01T00:00:00", [], "99999-01-01T00:00:00Z"],
    ("register_office",): ["", " ", "x" * 201, 7, None],
    ("entry",): [1, "x", []],
    ("entry", "register"): ["X", 1],
    ("entry", "entry_number"): [0, "x", 1e999],
    ("death",): [None, "x"],
    ("death", "date_of_death"): [1e999, 10**20, "x", "2024-01-01T10:00:00", [], "2024-02-30"],
    ("death", "place_of_death"): ["", "x" * 300, "a\x00b", "\ud800", [], None, 1e999],
    ("death", "marital_status"): ["X", 1],
    ("death", "deceased"): [1, [], "x", None],
    ("death", "deceased", "sex"): ["x"],
    ("death", "deceased", "address", "lines"): [[], ["a"] * 6, "x", {}, [1], [""]],
    ("death", "deceased", "identifiers", "nino"): [1, "x"],
    ("death", "deceased", "date_of_birth"): ["1800-01-01", "2030-01-01"],
    ("death", "date_of_registration"): ["2999-01-01", "2000-01-01"],
    ("death", "extra"): ["Margaret"],
}


def _hostile_records() -> list[tuple[str, dict[str, Any]]]:
    records = []
    for path, values in HOSTILE_VALUES.items():
        for value in values:
            records.append(("DeathRegistered", _with(path, copy.deepcopy(value))))
    correction = _record(make_correction(of=DEATH, place_of_death="Leeds"))
    for corrected in (1, "x", {}, {"child": 1}, [], {"deceased": {}}):
        records.append(("RegistrationCorrected", {**correction, "corrected": corrected}))
    birth = _record(make_birth())
    for stillbirth in ("x", 2, "perhaps"):
        records.append(("BirthRegistered", _with(("birth", "stillbirth"), stillbirth, make_birth())))
    records.append(("BirthRegistered", _with(("birth", "mother", "date_of_birth"), "1850-01-01", make_birth())))
    records.append(("BirthRegistered", {**birth, "version": 2}))
    return records


def test_every_error_type_hostile_input_raises_has_project_words() -> None:
    seen: set[str] = set()
    for event_type, record in _hostile_records():
        data = {key: value for key, value in record.items() if key != "event_type"}
        with pytest.raises(ValidationError) as caught:
            EVENT_MODELS[event_type].model_validate(data)
        seen.update(error["type"] for error in caught.value.errors())
    own_words = {"value_error", "details_kind"}
    assert seen - own_words <= set(RULE_TEXTS), sorted(seen - own_words - set(RULE_TEXTS))
    # The corpus keeps reaching the kinds of error a file can have (a shrinking corpus would prove nothing).
    assert {"missing", "extra_forbidden", "string_too_short", "enum", "uuid_parsing", "int_parsing"} <= seen
    assert {"finite_number", "date_from_datetime_parsing", "string_unicode", "too_long", "model_type"} <= seen


def test_every_hostile_record_is_reported_in_project_words(tmp_path: Path) -> None:
    lines = [json.dumps(record) for _, record in _hostile_records()]
    report = validate_file(_jsonl(tmp_path, *lines), max_errors=None)
    assert report.invalid == len(lines)
    assert {error.line for error in report.errors} == set(range(2, len(lines) + 2))  # every line has its error
    _assert_clean(report.errors, "Margaret")


# ---- CSV ----------------------------------------------------------------------------------------------------------


def _csv(tmp_path: Path, rows: list[dict[str, str]], columns: list[str] | None = None) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns or csv_columns(), lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    path = tmp_path / "events.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def _deaths(count: int) -> list[dict[str, str]]:
    return [event_to_csv_row(make_death(entry_number=n)) for n in range(1, count + 1)]


def test_a_missing_required_column_is_reported_once_on_the_header_line(tmp_path: Path) -> None:
    columns = [c for c in csv_columns() if c != "death.deceased.family_name"]
    report = validate_file(_csv(tmp_path, _deaths(3), columns))
    assert (report.valid, report.invalid) == (0, 3)
    assert [str(e) for e in report.errors] == [
        "line 1: death.deceased.family_name: is required, but the header has no death.deceased.family_name column"
        " (every row of this type needs it)"
    ]


def test_a_missing_group_of_columns_is_reported_once(tmp_path: Path) -> None:
    columns = [c for c in csv_columns() if not c.startswith("entry.")]
    report = validate_file(_csv(tmp_path, _deaths(3), columns))
    assert [(e.line, e.field) for e in report.errors] == [(1, "entry")]
    assert "the header has no entry.* columns" in report.errors[0].rule


def test_an_empty_cell_of_a_present_column_is_reported_in_its_row(tmp_path: Path) -> None:
    rows = _deaths(2)
    rows[1]["death.deceased.family_name"] = ""
    assert [(e.line, e.field, e.rule) for e in validate_file(_csv(tmp_path, rows)).errors] == [
        (3, "death.deceased.family_name", "is required")
    ]


def _raw_csv(tmp_path: Path, body: bytes) -> Path:
    path = tmp_path / "events.csv"
    path.write_bytes(",".join(csv_columns()).encode() + b"\n" + body)
    return path


def _csv_line(**cells: str) -> bytes:
    row = {**event_to_csv_row(DEATH), **cells}
    buffer = io.StringIO()
    csv.DictWriter(buffer, fieldnames=csv_columns(), lineterminator="\n").writerow(row)
    return buffer.getvalue().encode()


def test_an_unclosed_quote_stops_reading_where_it_starts(tmp_path: Path) -> None:
    body = _csv_line() + b'DeathRegistered,"Margaret Morgan\n'
    report = validate_file(_raw_csv(tmp_path, body))
    assert report.valid == 1
    assert [str(e) for e in report.errors] == [
        "line 3: (row): is not readable as CSV, reading stopped: a quoted cell is never closed"
    ]


def test_text_after_a_closing_quote(tmp_path: Path) -> None:
    report = validate_file(_raw_csv(tmp_path, b'DeathRegistered,"Margaret" Morgan\n'))
    assert [(e.line, e.field) for e in report.errors] == [(2, "(row)")]
    assert "text after its closing quote" in report.errors[0].rule
    _assert_clean(report.errors, "Margaret", "Morgan")


def test_a_nul_in_a_cell_is_refused_by_its_column(tmp_path: Path) -> None:
    report = validate_file(_raw_csv(tmp_path, _csv_line(**{"death.deceased.given_names": "Marg\x00aret"})))
    assert [(e.line, e.field) for e in report.errors] == [(2, "death.deceased.given_names")]
    _assert_clean(report.errors, "Marg")


def test_an_overlong_csv_line_stops_reading(tmp_path: Path) -> None:
    body = _csv_line() + b"DeathRegistered," + b"M" * (MAX_LINE_BYTES + 5) + b"\n" + _csv_line()
    report = validate_file(_raw_csv(tmp_path, body))
    assert report.valid == 1
    assert [(e.line, e.field) for e in report.errors] == [(3, "(line)")]
    assert "longer than" in report.errors[0].rule and "reading stopped" in report.errors[0].rule


def test_a_header_that_is_not_utf8_or_not_a_field_path_is_named_by_position(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_bytes(b"event_type,Marg\xe9ret,Margaret Morgan\nDeathRegistered,a,b\n")
    assert [str(e) for e in validate_file(path).errors] == [
        "line 1: (column 2): is not a field of any event type (see the CSV layout)",
        "line 1: (column 3): is not a field of any event type (see the CSV layout)",
    ]


def test_bom_and_crlf_csv_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    lines = [",".join(csv_columns()).encode(), _csv_line().rstrip(b"\n")]
    path.write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(lines) + b"\r\n")
    report = validate_file(path)
    assert (report.valid, report.invalid) == (1, 0)


def test_csv_hostile_rows_never_quote_values(tmp_path: Path) -> None:
    change: list[Callable[[dict[str, str]], object]] = [
        lambda r: r.update({"version": "1e999"}),
        lambda r: r.update({"entry.entry_number": "9" * 5000}),
        lambda r: r.update({"death.date_of_death": "Margaret"}),
        lambda r: r.update({"recorded_at": "2024-03-14"}),
        lambda r: r.update({"death.deceased.sex": "Margaret"}),
        lambda r: r.update({"death.deceased.address.lines": "Margaret||Morgan"}),
    ]
    rows = []
    for number, apply in enumerate(change, start=1):
        row = event_to_csv_row(make_death(entry_number=number))
        apply(row)
        rows.append(row)
    report = validate_file(_csv(tmp_path, rows), max_errors=None)
    assert report.invalid == len(rows)
    assert {error.line for error in report.errors} == set(range(2, len(rows) + 2))
    _assert_clean(report.errors, "Margaret", "Morgan")


def test_an_overlong_csv_cell_stops_reading_in_project_words(tmp_path: Path) -> None:
    body = b"DeathRegistered," + b"M" * 200_000 + b"\n" + _csv_line()
    report = validate_file(_raw_csv(tmp_path, body))
    assert [str(e) for e in report.errors] == [
        "line 2: (row): is not readable as CSV, reading stopped: a cell is longer than 131072 characters"
    ]
