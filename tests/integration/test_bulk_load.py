"""Register loads on both engines: replacing what is stored, the last of a record given twice, DVLA's vehicles,
and a large load's indexes built again as they were (the whole file stored set-based: executemany or COPY)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import consumers.kit.customer_records as customer_records
from civreg.commands.registers import registers_app
from civreg.settings import Settings
from consumers.departments import DEPARTMENTS
from consumers.kit.customer_records import load_customer_records
from consumers.operations.running import open_store
from schemas.departments import record_columns
from tests.support.customer_rows import row


def test_a_reload_replaces_records_and_a_record_given_twice_keeps_its_last_row(store_backend: Settings) -> None:
    store = open_store(store_backend, "tax")
    try:
        load_customer_records(store, DEPARTMENTS["tax"], [row("tax", "T1"), row("tax", "T2", family_name="Jones")])
        rows = [row("tax", "T2", family_name="Smith"), row("tax", "T3"), row("tax", "T2", family_name="Evans")]
        assert load_customer_records(store, DEPARTMENTS["tax"], rows) == 3
        names = store.read().execute("SELECT taxpayer_id, family_name, name_key FROM taxpayers ORDER BY taxpayer_id")
        assert [tuple(r) for r in names] == [
            ("T1", "Morgan", "morgan|margaret"),
            ("T2", "Evans", "evans|margaret"),
            ("T3", "Morgan", "morgan|margaret"),
        ]
    finally:
        store.close()


def test_dvla_vehicles_follow_their_keepers_rows(store_backend: Settings) -> None:
    store = open_store(store_backend, "dvla")
    try:
        first = [row("dvla", "D1", vehicles="AB12CDE:2024-05-01;XY70ABC:2024-08-01"), row("dvla", "D2", vehicles="")]
        load_customer_records(store, DEPARTMENTS["dvla"], first)
        # D1 sold XY70ABC to D2 and bought a new one; a mark written untidily is stored as its rule gives it.
        again = [
            row("dvla", "D1", vehicles="ab12 cde:2024-05-01 ; NEW1:2025-01-31"),
            row("dvla", "D2", vehicles="XY70ABC:2024-09-01"),
        ]
        load_customer_records(store, DEPARTMENTS["dvla"], again)
        vehicles = store.read().execute("SELECT registration_mark, keeper_id, tax_due_on FROM vehicles ORDER BY 1")
        assert [tuple(v) for v in vehicles] == [
            ("AB12CDE", "D1", "2024-05-01"),
            ("NEW1", "D1", "2025-01-31"),
            ("XY70ABC", "D2", "2024-09-01"),
        ]
    finally:
        store.close()


@pytest.mark.parametrize("name", ["passports", "dvla"])
def test_a_large_load_builds_the_indexes_again_as_they_were(
    name: str, store_backend: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(customer_records, "_REBUILD_FROM", 10)
    store = open_store(store_backend, name)
    table = DEPARTMENTS[name].records.register.table
    try:
        with store.transaction() as transaction:
            before = sorted(transaction.secondary_indexes(table))
        assert len(before) >= 4  # matching's three, the identifier's, the letters'
        rows = [row(name, f"R{n:03d}") for n in range(40)]
        assert load_customer_records(store, DEPARTMENTS[name], rows) == 40
        with store.transaction() as transaction:
            assert sorted(transaction.secondary_indexes(table)) == before
        assert int(store.read().scalar(f"SELECT COUNT(*) FROM {table}")) == 40
    finally:
        store.close()


def test_registers_load_command_reads_the_file_and_names_a_bad_line_without_its_value(tmp_path: Path) -> None:
    app = typer.Typer()
    app.add_typer(registers_app, name="registers")
    good = tmp_path / "tax.csv"
    rows = [row("tax", f"T{n}") for n in range(5)]
    with good.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=record_columns("tax"))
        writer.writeheader()
        writer.writerows(rows)
    database = tmp_path / "tax.sqlite3"
    loaded = CliRunner().invoke(app, ["registers", "load", str(good), "-d", "tax", "--database", str(database)])
    assert loaded.exit_code == 0, loaded.output
    assert "tax: loaded 5 records" in loaded.output
    bad = tmp_path / "bad.csv"
    rows[3]["nino"] = "ZZ999999Z"
    with bad.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=record_columns("tax"))
        writer.writeheader()
        writer.writerows(rows)
    refused = CliRunner().invoke(app, ["registers", "load", str(bad), "-d", "tax", "--database", str(database)])
    assert refused.exit_code != 0
    assert "line 5: nino: NINO" in refused.output and "ZZ999999Z" not in refused.output


def test_a_value_every_row_shares_is_stored_as_given(store_backend: Settings) -> None:
    store = open_store(store_backend, "tax")
    try:
        rows = [row("tax", f"T{n}", family_name="O'Brien; DROP TABLE taxpayers --") for n in range(3)]
        load_customer_records(store, DEPARTMENTS["tax"], rows)
        stored = store.read().execute(
            "SELECT family_name, status, sa_reminders, date_of_death, self_assessment FROM taxpayers"
        )
        assert [tuple(r) for r in stored] == [("O'Brien; DROP TABLE taxpayers --", "live", "on", None, 1)] * 3
    finally:
        store.close()
