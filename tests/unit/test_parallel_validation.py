"""Validating a JSONL file on several cores gives exactly what one process gives: the same report (counts, errors
with their lines, fields and rules, in order), the same duplicate-id verdicts, and the same spooled events."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from producers.event_files import MAX_LINE_BYTES, EventFileReader, FileFormat, event_record, validate_file
from producers.file_publishing import _Spool, _validate_in_parallel, _workers
from producers.simulation import simulate_registrations
from schemas.codec import Codec


class _Quiet:
    def phase(self, description: str, total: int, unit: str) -> None:
        pass

    def advance_to(self, completed: int) -> None:
        pass


def _hostile_file(path: Path) -> None:
    events = list(simulate_registrations(700, 5))
    lines = [json.dumps(event_record(e)) for e in events]
    bad = dict(event_record(events[3]))
    bad["entry"] = {**bad["entry"], "entry_number": 0}
    lines[10] = json.dumps(bad)  # a rule broken
    lines[20] = lines[5]  # a duplicate event id (valid otherwise)
    lines[30] = "{not json"
    lines[40] = ""  # blank: skipped, but still a line
    lines[50] = "[1, 2]"
    lines[60] = '{"event_type": "DeathRegistered", "event_type": "BirthRegistered"}'  # a repeated key
    lines[70] = "x" * (MAX_LINE_BYTES + 10)
    lines[80] = json.dumps({"event_type": "Nothing"})
    lines[0] = "\ufeff" + lines[0]  # a byte order mark on line 1
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.parametrize("allow_partial", [False, True])
def test_several_workers_give_the_report_and_spool_of_one(tmp_path: Path, allow_partial: bool) -> None:
    path = tmp_path / "events.jsonl"
    _hostile_file(path)
    codec = Codec()

    one = _Spool(codec, allow_partial, encode=True)
    expected = validate_file(path, max_errors=None, on_row=one.add)
    several = _Spool(codec, allow_partial, encode=True)
    reader = EventFileReader(path, FileFormat.JSONL)
    got = _validate_in_parallel(reader, several, 3, None, _Quiet())

    assert (got.rows, got.valid, got.invalid, got.error_count) == (
        expected.rows,
        expected.valid,
        expected.invalid,
        expected.error_count,
    )
    assert got.errors == expected.errors
    assert got.valid_by_type == expected.valid_by_type and got.valid_by_register == expected.valid_by_register
    assert expected.invalid == 7 and any("already used on line 6" in e.rule for e in got.errors)
    assert several.count == one.count
    assert list(several) == list(one)
    assert reader.bytes_read == path.stat().st_size


def test_small_files_and_csv_are_validated_in_this_process(tmp_path: Path) -> None:
    small = tmp_path / "small.jsonl"
    small.write_text("{}\n")
    assert _workers(EventFileReader(small), None) == 1
    assert _workers(EventFileReader(small), 2) == 2
    csv = tmp_path / "events.csv"
    csv.write_text("event_type\n")
    assert _workers(EventFileReader(csv), 4) == 1
