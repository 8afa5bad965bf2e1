"""Reading and validating event files (pure: no Kafka).

Valid files must parse to exactly the models a register office meant; every invalid row must be reported with its
line, field and rule, and never with the value (the errors reach terminals and logs).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import typer
from typer.testing import CliRunner

from civreg.commands.publish import publish
from civreg.settings import Settings
from producers.event_files import (
    EventFileReader,
    FileFormat,
    RowError,
    csv_columns,
    detect_format,
    event_to_csv_row,
    event_to_json_line,
    validate_file,
    write_event_file,
)
from producers.file_publishing import ExitCode, publish_file
from schemas.models import (
    Address,
    BirthDetails,
    BirthRegistered,
    CorrectionKind,
    DeathDetails,
    DeathRegistered,
    EntryReference,
    Event,
    Identifiers,
    MaritalStatus,
    Person,
    Register,
    RegistrationCorrected,
    RegistrationVoided,
    Sex,
    VoidReason,
)
from tests.support.factories import all_event_examples, make_birth, make_correction, make_death

DATA = Path(__file__).resolve().parents[1] / "data"
EVENT_ID = "3f1c2a9e-6b7d-4c1e-9a51-2d0f4e8b7c1"
NOWHERE = Settings(bootstrap_servers="127.0.0.1:1")  # nothing listens: a test that reaches Kafka fails loudly


# ---- the sample files, built by hand ---------------------------------------------------------------------------


def _expected_sample() -> list[Event]:
    entry = EntryReference(
        registration_district="Leeds",
        sub_district="Leeds North",
        register=Register.DEATH,
        register_number=1,
        entry_number=1201,
        year_of_registration=2024,
    )
    deceased = Person(
        given_names="Margaret Anne",
        family_name="Morgan",
        date_of_birth=date(1941, 11, 3),
        sex=Sex.FEMALE,
        identifiers=Identifiers(nino="AB123456C", nhs_number="9434765919"),
        address=Address(lines=["Flat 2", "1 Park Row"], town="Leeds", postcode="LS1 4AP"),
    )
    death = DeathDetails(
        date_of_registration=date(2024, 3, 14),
        deceased=deceased,
        date_of_death=date(2024, 3, 10),
        place_of_death="Leeds General Infirmary",
        marital_status=MaritalStatus.WIDOWED,
    )
    office = "Leeds Register Office"
    return [
        DeathRegistered(
            event_id=UUID(EVENT_ID + "0"),
            entry=entry,
            version=1,
            recorded_at=datetime(2024, 3, 14, 9, 30, tzinfo=UTC),
            register_office=office,
            death=death,
        ),
        RegistrationCorrected(
            event_id=UUID(EVENT_ID + "1"),
            entry=entry,
            version=2,
            recorded_at=datetime(2024, 3, 15, 10, 0, tzinfo=UTC),
            register_office=office,
            kind=CorrectionKind.CLERICAL_ERROR,
            corrected=death.model_copy(update={"place_of_death": "St James's University Hospital, Leeds"}),
        ),
        RegistrationVoided(
            event_id=UUID(EVENT_ID + "2"),
            entry=entry,
            version=3,
            recorded_at=datetime(2024, 3, 16, 11, 15, tzinfo=UTC),
            register_office=office,
            reason=VoidReason.ENTERED_IN_ERROR,
        ),
        BirthRegistered(
            event_id=UUID(EVENT_ID + "3"),
            entry=EntryReference(
                registration_district="Leeds",
                sub_district="Leeds North",
                register=Register.BIRTH,
                register_number=1,
                entry_number=877,
                year_of_registration=2024,
            ),
            version=1,
            recorded_at=datetime(2024, 3, 14, 9, 45, tzinfo=UTC),
            register_office=office,
            birth=BirthDetails(
                date_of_registration=date(2024, 3, 14),
                child=Person(
                    given_names="Olivia Rose", family_name="Morgan", date_of_birth=date(2024, 2, 20), sex=Sex.FEMALE
                ),
                place_of_birth="St James's University Hospital, Leeds",
                mother=Person(given_names="Sarah Jane", family_name="Morgan"),
            ),
        ),
    ]


@pytest.mark.parametrize("name", ["deaths.jsonl", "deaths.csv"])
def test_sample_files_parse_to_the_events_they_describe(name: str) -> None:
    rows = list(EventFileReader(DATA / name))
    assert [row.errors for row in rows] == [()] * 4
    assert [row.event for row in rows] == _expected_sample()


def test_line_numbers_are_physical_lines() -> None:
    assert [row.line for row in EventFileReader(DATA / "deaths.jsonl")] == [1, 2, 4, 5]  # line 3 is blank
    assert [row.line for row in EventFileReader(DATA / "deaths.csv")] == [2, 3, 4, 5]  # line 1 is the header


@pytest.mark.parametrize("file_format", list(FileFormat))
def test_events_of_every_type_round_trip_through_both_formats(tmp_path: Path, file_format: FileFormat) -> None:
    events = all_event_examples()
    assert {event.event_type for event in events} == {
        "BirthRegistered",
        "DeathRegistered",
        "MarriageRegistered",
        "CivilPartnershipRegistered",
        "RegistrationCorrected",
        "RegistrationVoided",
    }
    path = tmp_path / f"events.{file_format.value}"
    assert write_event_file(path, events) == len(events)
    assert [row.event for row in EventFileReader(path)] == events
    report = validate_file(path)
    assert report.ok
    assert report.valid == len(events)
    assert sum(report.valid_by_type.values()) == len(events)


def test_format_comes_from_the_suffix_or_is_asked_for(tmp_path: Path) -> None:
    assert detect_format(Path("a.JSONL")) is FileFormat.JSONL
    assert detect_format(Path("a.ndjson")) is FileFormat.JSONL
    assert detect_format(Path("a.csv")) is FileFormat.CSV
    with pytest.raises(ValueError, match="say jsonl or csv"):
        detect_format(Path("a.txt"))
    path = tmp_path / "events.txt"
    path.write_text(event_to_json_line(make_death()) + "\n")
    assert validate_file(path, FileFormat.JSONL).ok


def test_csv_cells_are_trimmed_and_empty_objects_are_absent(tmp_path: Path) -> None:
    death = make_death(deceased=Person(given_names="John", family_name="Smith"), marital_status=None)
    row = {column: f"  {value} " for column, value in event_to_csv_row(death).items()}
    path = _csv(tmp_path, [row])
    assert [r.event for r in EventFileReader(path)] == [death]
    assert "death.deceased.address.town" in csv_columns()  # the column exists, but every cell of it is empty


# ---- invalid rows -------------------------------------------------------------------------------------------


def _json(event: Event, change: Callable[[dict[str, Any]], object] | None = None) -> str:
    record: dict[str, Any] = json.loads(event_to_json_line(event))
    if change is not None:
        change(record)
    return json.dumps(record)


def _at(*path: str | int) -> Callable[[Any], dict[str, Any]]:
    def walk(record: Any) -> Any:
        for part in path:
            record = record[part]
        return record

    return walk


def _set(path: tuple[str, ...], value: object) -> Callable[[dict[str, Any]], object]:
    return lambda record: _at(*path[:-1])(record).__setitem__(path[-1], value)


DEATH = make_death()
CORRECTION = make_correction(of=DEATH, place_of_death="Leeds General Infirmary, Ward 7")
IDENTIFIERS = ("death", "deceased", "identifiers")
CORRECTED_IDS = ("corrected", "deceased", "identifiers")

# (name, JSONL line, the value that must not be echoed, expected field, part of the expected rule)
JSONL_CASES: list[tuple[str, str, str, str, str]] = [
    (
        "bad NINO",
        _json(DEATH, _set((*IDENTIFIERS, "nino"), "QQ123456C")),
        "QQ123456C",
        "death.deceased.identifiers.nino",
        "NINO prefix",
    ),
    (
        "bad NHS check digit",
        _json(DEATH, _set((*IDENTIFIERS, "nhs_number"), "9434765918")),
        "9434765918",
        "death.deceased.identifiers.nhs_number",
        "modulus 11",
    ),
    (
        "bad postcode",
        _json(DEATH, _set(("death", "deceased", "address", "postcode"), "QX1 1ZZ")),
        "QX1 1ZZ",
        "death.deceased.address.postcode",
        "UK postcode",
    ),
    (
        "impossible date",
        _json(DEATH, _set(("death", "deceased", "date_of_birth"), "1941-13-03")),
        "1941-13-03",
        "death.deceased.date_of_birth",
        "must be a date, YYYY-MM-DD",
    ),
    (
        "bad uuid",
        _json(DEATH, _set(("event_id",), "Morgan-Margaret")),
        "Morgan",
        "event_id",
        "must be a UUID",
    ),
    (
        "empty address line",
        _json(DEATH, _set(("death", "deceased", "address", "lines"), ["1 Park Row", " "])),
        "1 Park Row",
        "death.deceased.address.lines[1]",
        "must not be empty",
    ),
    (
        "field not in the contract",
        _json(DEATH, _set(("death", "cause_of_death"), "Pneumonia")),
        "Pneumonia",
        "death.cause_of_death",
        "not a field here",
    ),
    (
        "dates out of order",
        _json(DEATH, _set(("death", "date_of_death"), "1930-01-01")),
        "1930-01-01",
        "death",
        "date_of_death is before date_of_birth",
    ),
    (
        "missing required field",
        _json(DEATH, lambda r: r["death"]["deceased"].pop("family_name")),
        "Morgan",
        "death.deceased.family_name",
        "is required",
    ),
    (
        "register does not match the event type",
        _json(DEATH, _set(("entry", "register"), "BIRTH")),
        "Margaret",
        "(event)",
        "entry.register must be DEATH",
    ),
    (
        "missing event_type",
        _json(DEATH, lambda r: r.pop("event_type")),
        "Margaret",
        "event_type",
        "is required",
    ),
    (
        "unknown event_type",
        _json(DEATH, _set(("event_type",), "MargaretRegistered")),
        "MargaretRegistered",
        "event_type",
        "not a known event type",
    ),
    (
        "not JSON",
        '{"event_type": "DeathRegistered", "death": {"given_names": "Margaret',
        "Margaret",
        "(line)",
        "not valid JSON",
    ),
    ("not an object", '["Margaret", "Morgan"]', "Margaret", "(line)", "must be a JSON object"),
    (
        "repeated key",
        '{"event_type": "DeathRegistered", "event_type": "Margaret"}',
        "Margaret",
        "event_type",
        "appears twice",
    ),
    (
        "correction with a bad identifier: one error, not one per details kind",
        _json(CORRECTION, _set((*CORRECTED_IDS, "nino"), "AB12345")),
        "AB12345",
        "corrected.deceased.identifiers.nino",
        "9 characters",
    ),
    (
        "correction whose details are of another register",
        _json(CORRECTION, _set(("entry", "register"), "BIRTH")),
        "Margaret",
        "(event)",
        "corrected details must be of the same kind as entry.register",
    ),
    (
        "correction whose invalid details look like another register's",
        _json(
            CORRECTION,
            lambda r: (_set(("entry", "register"), "BIRTH")(r), _set((*CORRECTED_IDS, "nino"), "AB12345")(r)),
        ),
        "AB12345",
        "corrected",
        "holds death details, not those of entry.register's kind",
    ),
    (
        "correction numbered as a registration",
        _json(CORRECTION, _set(("version",), 1)),
        "Margaret",
        "(event)",
        "version must be 2 or more",
    ),
]


@pytest.mark.parametrize(
    ("line", "secret", "field", "rule"), [case[1:] for case in JSONL_CASES], ids=[case[0] for case in JSONL_CASES]
)
def test_each_invalid_jsonl_row_is_reported_by_line_field_and_rule(
    tmp_path: Path, line: str, secret: str, field: str, rule: str
) -> None:
    good = make_birth(entry_number=9)
    path = tmp_path / "events.jsonl"
    path.write_text(f"{event_to_json_line(good)}\n\n{line}\n", encoding="utf-8")
    report = validate_file(path)
    assert (report.rows, report.valid, report.invalid) == (2, 1, 1)
    assert all(error.line == 3 for error in report.errors)
    assert any(error.field == field and rule in error.rule for error in report.errors), report.errors
    _assert_not_quoted(report.errors, secret)


def test_a_correction_error_is_reported_once_for_its_own_kind(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(_json(CORRECTION, _set((*CORRECTED_IDS, "nhs_number"), "123")) + "\n")
    assert [str(e) for e in validate_file(path).errors] == [
        "line 1: corrected.deceased.identifiers.nhs_number: NHS number must be 10 digits"
    ]


def test_invalid_utf8_is_reported_without_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(event_to_json_line(DEATH).encode() + b"\n" + b'{"name": "Marg\xe9ret"}\n')
    assert [str(e) for e in validate_file(path).errors] == ["line 2: (line): is not valid UTF-8 text"]


def test_a_repeated_event_id_is_invalid_wherever_it_repeats(tmp_path: Path) -> None:
    other = make_death(entry_number=2, event_id=DEATH.event_id)
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(event_to_json_line(e) for e in (DEATH, make_birth(), other, DEATH)) + "\n")
    report = validate_file(path)
    assert (report.valid, report.invalid) == (2, 2)
    assert [str(e) for e in report.errors] == [
        "line 3: event_id: event id already used on line 1",
        "line 4: event_id: event id already used on line 1",
    ]


# ---- CSV specifics -------------------------------------------------------------------------------------------


def _csv(tmp_path: Path, rows: list[dict[str, str]], columns: list[str] | None = None) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns or csv_columns(), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path = tmp_path / "events.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def _row(event: Event, **cells: str) -> dict[str, str]:
    return {**event_to_csv_row(event), **{column.replace("__", "."): value for column, value in cells.items()}}


CSV_CASES: list[tuple[str, dict[str, str], str, str, str]] = [
    (
        "bad NINO",
        _row(DEATH, death__deceased__identifiers__nino="QQ123456C"),
        "QQ123456C",
        "death.deceased.identifiers.nino",
        "NINO prefix",
    ),
    (
        "empty item in a list cell",
        _row(DEATH, death__deceased__address__lines="1 Park Row||Leeds"),
        "Park Row",
        "death.deceased.address.lines",
        "item 2 of the |-separated list: must not be empty",
    ),
    (
        "bad integer",
        _row(DEATH, entry__entry_number="twelve"),
        "twelve",
        "entry.entry_number",
        "must be a whole number",
    ),
    (
        "bad boolean",
        _row(make_birth(), birth__stillbirth="perhaps"),
        "perhaps",
        "birth.stillbirth",
        "must be true or false",
    ),
    (
        "another type's columns filled",
        _row(make_birth(), death__place_of_death="Leeds General Infirmary"),
        "Infirmary",
        "death",
        "not a field here",
    ),
    (
        "correction's nested field, named by its column",
        _row(CORRECTION, corrected__death__deceased__identifiers__nino="AB12345"),
        "AB12345",
        "corrected.death.deceased.identifiers.nino",
        "9 characters",
    ),
    (
        "correction filling two details kinds",
        _row(CORRECTION, corrected__birth__place_of_birth="Leeds"),
        "Margaret",
        "corrected",
        "fills more than one details kind (corrected.birth.*, corrected.death.*)",
    ),
    (
        "correction kind does not match the register",
        _row(CORRECTION, entry__register="BIRTH"),
        "Margaret",
        "corrected",
        "must match entry.register (use corrected.birth.*)",
    ),
    (
        "correction without the field that tells its kind",
        {k: v for k, v in _row(CORRECTION).items() if not k.startswith("corrected.death.deceased.")},
        "Margaret",
        "corrected.death.deceased",
        "is required",
    ),
    (
        "missing event_type",
        _row(DEATH, event_type=""),
        "Margaret",
        "event_type",
        "is required",
    ),
]


@pytest.mark.parametrize(
    ("row", "secret", "field", "rule"), [case[1:] for case in CSV_CASES], ids=[case[0] for case in CSV_CASES]
)
def test_each_invalid_csv_row_is_reported_by_line_field_and_rule(
    tmp_path: Path, row: dict[str, str], secret: str, field: str, rule: str
) -> None:
    path = _csv(tmp_path, [event_to_csv_row(make_birth(entry_number=9)), row])
    report = validate_file(path)
    assert (report.rows, report.valid, report.invalid) == (2, 1, 1)
    assert all(error.line == 3 for error in report.errors)
    assert any(error.field == field and rule in error.rule for error in report.errors), report.errors
    _assert_not_quoted(report.errors, secret)


def test_a_csv_row_spanning_lines_is_reported_where_it_starts(tmp_path: Path) -> None:
    rows = [
        _row(DEATH, death__place_of_death="Ward 7\nLeeds General Infirmary"),  # a quoted newline: one row, 2 lines
        _row(make_death(entry_number=2), death__deceased__identifiers__nino="AB123456E"),
    ]
    errors = validate_file(_csv(tmp_path, rows)).errors
    assert [(e.line, e.field, e.rule) for e in errors] == [
        (2, "death.place_of_death", "must be one line of text without control characters"),
        (4, "death.deceased.identifiers.nino", "NINO suffix must be A, B, C or D"),
    ]


def test_csv_row_with_the_wrong_number_of_cells(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("event_type,event_id\nDeathRegistered,Margaret,Morgan\n\n,\n")
    assert [str(e) for e in validate_file(path).errors] == ["line 2: (row): has 3 cells but the header has 2 columns"]


def test_csv_header_errors_reject_the_file(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("event_type,event_id,death.deceased.givn_names,event_id,\nDeathRegistered,a,b,c,d\n")
    report = validate_file(path)
    assert report.valid == 0
    assert [str(e) for e in report.errors] == [
        "line 1: event_id: appears more than once in the header",
        "line 1: death.deceased.givn_names: is not a field of any event type (see the CSV layout)",
        "line 1: (column 5): has no name",
    ]


def test_a_csv_without_header_is_not_quoted_back(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("Margaret,Morgan,AB123456C\n")
    errors = validate_file(path).errors
    assert [str(e) for e in errors] == ["line 1: (header): has no event_type column (line 1 must be the header)"]


def test_invalid_utf8_in_a_csv_cell_is_reported_by_column(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_bytes(b"event_type,event_id\nDeathRegistered,Marg\xe9ret\n")
    assert [str(e) for e in validate_file(path).errors] == ["line 2: event_id: is not valid UTF-8 text"]


# ---- whole files, all or nothing ----------------------------------------------------------------------------------


def _mixed_file(tmp_path: Path) -> Path:
    lines = [
        event_to_json_line(DEATH),
        _json(make_death(entry_number=2), _set((*IDENTIFIERS, "nino"), "QQ123456C")),
        event_to_json_line(make_birth()),
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_report_counts_everything_but_keeps_only_max_errors(tmp_path: Path) -> None:
    bad = _json(DEATH, _set((*IDENTIFIERS, "nino"), "QQ123456C"))
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join([bad] * 5) + "\n")
    report = validate_file(path, max_errors=3)
    assert (report.rows, report.invalid, report.error_count, len(report.errors)) == (5, 5, 9, 3)
    assert report.errors_not_kept == 6  # 5 bad NINOs and 4 repeated ids


def test_a_file_with_an_invalid_row_publishes_nothing(tmp_path: Path) -> None:
    # NOWHERE has no broker: reaching for Kafka would show up as a "cannot reach Kafka" problem.
    result = publish_file(_mixed_file(tmp_path), NOWHERE)
    assert result.exit_code is ExitCode.INVALID
    assert not result.published
    assert result.problem is None
    assert (result.report.valid, result.report.invalid) == (2, 1)
    assert [(e.line, e.field) for e in result.report.errors] == [(2, "death.deceased.identifiers.nino")]


def test_allow_partial_goes_on_to_publish_the_valid_rows(tmp_path: Path) -> None:
    result = publish_file(_mixed_file(tmp_path), NOWHERE, allow_partial=True, connect_timeout=2)
    assert result.problem is not None and result.problem.startswith("cannot reach Kafka at 127.0.0.1:1")
    assert result.delivered == 0
    assert result.exit_code is ExitCode.NOT_PUBLISHED


def test_dry_run_reports_what_would_happen_without_kafka(tmp_path: Path) -> None:
    path = _mixed_file(tmp_path)
    assert publish_file(path, NOWHERE, dry_run=True).exit_code is ExitCode.INVALID
    partial = publish_file(path, NOWHERE, dry_run=True, allow_partial=True)
    assert (partial.exit_code, partial.published) == (ExitCode.PARTIAL, False)
    assert publish_file(DATA / "deaths.csv", NOWHERE, dry_run=True).exit_code is ExitCode.OK


def test_an_empty_file_is_not_a_success(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text("\n\n")
    assert publish_file(path, NOWHERE).exit_code is ExitCode.INVALID


def _command(monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    """The command alone; logging is left alone (configuring it would bind CliRunner's soon-closed stderr)."""
    monkeypatch.setattr("civreg.commands.publish.configure_logging", lambda *args, **kwargs: None)
    app = typer.Typer()
    app.command()(publish)
    return app


def test_the_command_prints_the_error_table_without_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIVREG_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(_command(monkeypatch), [str(_mixed_file(tmp_path))])
    assert result.exit_code == ExitCode.INVALID
    assert "death.deceased.identifiers.nino" in result.output
    assert "NINO prefix letters are not allowed" in result.output
    assert "Nothing was published: 1 invalid row(s)" in result.output
    assert "QQ123456C" not in result.output
    assert "Margaret" not in result.output


def test_the_command_refuses_an_unknown_suffix_without_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "events.txt"
    path.write_text(event_to_json_line(DEATH) + "\n")
    app = _command(monkeypatch)
    result = CliRunner().invoke(app, [str(path), "--dry-run"])
    assert result.exit_code == 2
    assert CliRunner().invoke(app, [str(path), "--dry-run", "--format", "jsonl"]).exit_code == 0


def _assert_not_quoted(errors: list[RowError], secret: str) -> None:
    text = "\n".join(str(error) for error in errors)
    assert secret not in text
    assert "`" not in text  # pydantic quotes input fragments in backticks


def test_a_repeated_key_is_found_on_the_fast_path_even_beside_colons_in_values(tmp_path: Path) -> None:
    """orjson keeps the last of repeated keys; the colon count must still catch them (recorded_at has colons)."""
    record = json.loads(event_to_json_line(make_death()))
    line = json.dumps(record)[:-1] + ', "version": 1}'
    path = tmp_path / "events.jsonl"
    path.write_text(event_to_json_line(make_death(entry_number=2)) + "\n" + line + "\n")
    report = validate_file(path)
    assert [(e.line, e.field, e.rule) for e in report.errors] == [(2, "version", "appears twice in one JSON object")]


def test_a_unicode_escape_takes_the_strict_path_and_reads_the_same() -> None:
    from producers.event_files import _parse_fast

    line = event_to_json_line(make_death()).encode()
    assert _parse_fast(line) == json.loads(line)
    escaped = line.replace(b'"DeathRegistered"', b'"\\u0044eathRegistered"')
    assert _parse_fast(escaped) is None
    assert _parse_fast(b'{"a": 1, "a": 2}') is None
    assert _parse_fast(b'{"a": "x:y", "b": {"c:d": 1}}') == {"a": "x:y", "b": {"c:d": 1}}
