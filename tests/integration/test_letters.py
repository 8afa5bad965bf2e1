"""Letters runs: the letters due, and never one to a person known to have died (department records, review queue,
suppression service), on both store engines."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from civreg.commands.letters import letters_app
from civreg.settings import Settings
from consumers import dvla, tax
from consumers.kit.letters import REPORT_COLUMNS, run_letters
from consumers.operations.running import open_store
from consumers.runtime import Store
from consumers.suppression import department as suppression
from tests.support.customer_rows import row
from tests.support.delivery import deliver, load_rows
from tests.support.factories import make_address, make_death, make_person, make_void


@pytest.fixture
def stores(store_backend: Settings) -> Iterator[tuple[Store, Store]]:
    """HMRC's store and the suppression service's, on the test's engine."""
    own, shared = open_store(store_backend, tax.department), open_store(store_backend, suppression)
    yield own, shared
    own.close()
    shared.close()


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_a_letters_run_holds_back_every_letter_to_someone_known_dead_and_says_why(
    stores: tuple[Store, Store], tmp_path: Path
) -> None:
    own, shared = stores
    load_rows(
        own,
        tax.department,
        [
            row("tax", "T1"),  # Margaret: her death reaches HMRC
            row("tax", "T2", given_names="Brenda", nino="", date_of_birth="1950-02-02"),  # listed twice:
            row("tax", "T3", given_names="Brenda", nino="", date_of_birth="1950-02-02"),  # her death is ambiguous
            row("tax", "T4", given_names="Cyril", nino="", date_of_birth="1930-03-03"),  # HMRC not told yet
            row("tax", "T5", given_names="Doris", nino="EE112233A", date_of_birth="1960-04-04"),  # alive
            row("tax", "T6", given_names="Edna", nino="", date_of_birth="1945-05-05"),  # death voided: alive
            row("tax", "T7", given_names="Fred", nino="", next_reminder_on="2024-06-01"),  # outside the run
        ],
    )
    brenda = make_death(entry_number=2, deceased=make_person("Brenda", "Morgan", date(1950, 2, 2), nino=None))
    cyril = make_death(entry_number=3, deceased=make_person("Cyril", "Morgan", date(1930, 3, 3), nino=None))
    edna = make_death(entry_number=4, deceased=make_person("Edna", "Morgan", date(1945, 5, 5), nino=None))
    for event in (make_death(), brenda, edna, make_void(of=edna)):
        deliver(own, tax.department, event)
    for event in (make_death(), brenda, cyril, edna, make_void(of=edna)):
        deliver(shared, suppression, event)

    out, report = tmp_path / "letters.csv", tmp_path / "held.csv"
    run = run_letters(
        tax.department, tax.letters_due, own, shared, first_day=date(2024, 4, 1), days=28, out=out, report=report
    )

    assert run.due == 6
    assert sorted(r["record_id"] for r in _rows(out)) == ["T5", "T6"]
    held = {r["record_id"]: (r["held_by"], r["reason"]) for r in _rows(report)}
    assert held == {
        "T1": ("department records", "taxpayer deceased"),
        "T2": ("review queue", "a registered death may be about this record; awaiting review"),
        "T3": ("review queue", "a registered death may be about this record; awaiting review"),
        "T4": ("suppression service", "death registered (matched by name_dob_postcode)"),
    }
    report_text = report.read_text(encoding="utf-8")
    assert list(_rows(report)[0]) == list(REPORT_COLUMNS)
    for name in ("Margaret", "Brenda", "Cyril", "Morgan", "Park Row", "LS1"):
        assert name not in report_text  # the report names records, never people


def test_a_possible_match_in_the_suppression_service_holds_the_letter(
    stores: tuple[Store, Store], tmp_path: Path
) -> None:
    own, shared = stores
    load_rows(own, tax.department, [row("tax", "T1", nino="")])
    moved = make_death(deceased=make_person(nino=None, address=make_address(postcode="M1 1AE")))
    deliver(shared, suppression, moved)  # HMRC has not consumed it
    run = run_letters(
        tax.department,
        tax.letters_due,
        own,
        shared,
        first_day=date(2024, 4, 6),
        days=1,
        out=tmp_path / "l.csv",
        report=tmp_path / "h.csv",
    )
    assert [(h.held_by, h.reason) for h in run.held] == [
        ("suppression service", "possible match to a registered death (name_dob)")
    ]


def test_dvla_vehicle_tax_reminders_to_a_deceased_keeper_are_held(store_backend: Settings, tmp_path: Path) -> None:
    own, shared = open_store(store_backend, dvla.department), open_store(store_backend, suppression)
    try:
        load_rows(own, dvla.department, [row("dvla", "D1", licence_valid_to="2025-01-01")])
        deliver(own, dvla.department, make_death())
        run = run_letters(
            dvla.department,
            dvla.letters_due,
            own,
            shared,
            first_day=date(2024, 4, 1),
            days=31,
            out=tmp_path / "l.csv",
            report=tmp_path / "h.csv",
        )
    finally:
        own.close()
        shared.close()
    assert [(h.kind, h.reason) for h in run.held] == [("vehicle-tax-reminder", "registered keeper died")]
    assert not run.sent


def test_letters_run_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIVREG_DATABASE_DIR", str(tmp_path))
    monkeypatch.delenv("CIVREG_POSTGRES_DSN", raising=False)
    settings = Settings(database_dir=tmp_path, postgres_dsn=None)
    own, shared = open_store(settings, tax.department), open_store(settings, suppression)
    load_rows(own, tax.department, [row("tax", "T1"), row("tax", "T2", nino="CE654321A", given_names="Ann")])
    deliver(own, tax.department, make_death())
    own.close()
    shared.close()
    out, report = tmp_path / "letters.csv", tmp_path / "held.csv"
    args = ["-d", "tax", "--date", "2024-04-01", "--days", "28", "--out", str(out)]
    result = CliRunner().invoke(letters_app, [*args, "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert "2 letters due 2024-04-01..2024-04-28; 1 to send" in result.output
    assert "held by department records: taxpayer deceased: 1" in result.output
    assert [r["record_id"] for r in _rows(out)] == ["T2"]

    missing = CliRunner().invoke(
        letters_app, [*args, "--suppression-database", str(tmp_path / "nope.sqlite3")], env={"COLUMNS": "300"}
    )
    assert missing.exit_code != 0
    assert "letters are never sent unchecked" in missing.output
