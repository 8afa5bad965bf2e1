"""Simulated department registers: consistent with the simulated population, with the awkward cases a real
register has, loadable into every department's store; the loader refuses bad rows without quoting them."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from civreg.commands.registers import simulate_registers
from civreg.settings import Settings
from consumers.departments import DEPARTMENTS
from consumers.kit.customer_records import CustomerRecordsError, load_customer_records
from consumers.operations.running import open_store
from producers.customer_records import (
    REGISTER_DEPARTMENTS,
    RecordKind,
    SimulatedRecord,
    record_columns,
    simulate_customer_records,
)
from producers.simulation import SimulatedPopulation, simulate_population
from tests.support.customer_rows import row


@pytest.fixture(scope="module")
def population() -> SimulatedPopulation:
    return simulate_population(3000, seed=5)


@pytest.fixture(scope="module")
def registers(population: SimulatedPopulation) -> dict[str, list[SimulatedRecord]]:
    return {name: simulate_customer_records(population, name, seed=5) for name in REGISTER_DEPARTMENTS}


def test_every_department_with_letters_has_a_simulated_register() -> None:
    assert set(REGISTER_DEPARTMENTS) == set(DEPARTMENTS) - {"suppression"}


def test_the_same_population_and_seed_give_the_same_register(
    population: SimulatedPopulation, registers: dict[str, list[SimulatedRecord]]
) -> None:
    assert simulate_customer_records(population, "dvla", seed=5) == registers["dvla"]
    assert simulate_customer_records(population, "dvla", seed=6) != registers["dvla"]


@pytest.mark.parametrize("name", REGISTER_DEPARTMENTS)
def test_a_register_holds_known_people_strangers_and_near_duplicates(
    name: str, population: SimulatedPopulation, registers: dict[str, list[SimulatedRecord]]
) -> None:
    records = registers[name]
    kinds = Counter(record.kind for record in records)
    assert set(kinds) == set(RecordKind), kinds
    assert kinds[RecordKind.CUSTOMER] > kinds[RecordKind.UNKNOWN_TO_REGISTRATIONS] > kinds[RecordKind.MOVED]
    assert len({record.row["record_id"] for record in records}) == len(records)
    assert all(list(record.row) == list(record_columns(name)) for record in records)
    people = {person.person_id: person for person in population.people}
    assert any(people[r.person_id].is_deceased for r in records if r.kind is RecordKind.CUSTOMER)
    for record in records:
        if record.kind is RecordKind.UNKNOWN_TO_REGISTRATIONS:
            assert record.person_id not in people
            continue
        person = people[record.person_id]
        assert record.row["date_of_birth"] == person.date_of_birth.isoformat()
        surname_at_start = (person.previous_family_names or [person.family_name])[0]
        if record.kind is RecordKind.MISSPELT:
            assert record.row["family_name"] != surname_at_start
        else:
            assert record.row["family_name"] == surname_at_start
        if record.kind is RecordKind.MOVED:
            assert record.row["postcode"] != person.address.postcode
        else:
            assert record.row["postcode"] == person.address.postcode
        if name == "dvla":  # a department's own number is always on its record
            assert record.row["driving_licence_number"] == person.driving_licence_number


def test_a_duplicate_is_the_same_record_twice(registers: dict[str, list[SimulatedRecord]]) -> None:
    records = registers["electoral"]
    by_person: dict[str, list[dict[str, str]]] = {}
    for record in records:
        by_person.setdefault(record.person_id, []).append(record.row)
    for record in records:
        if record.kind is RecordKind.DUPLICATE:
            first, second = ({k: v for k, v in r.items() if k != "record_id"} for r in by_person[record.person_id])
            assert first == second


@pytest.mark.parametrize("name", REGISTER_DEPARTMENTS)
def test_every_simulated_register_loads_into_its_department(
    name: str, store_backend: Settings, registers: dict[str, list[SimulatedRecord]]
) -> None:
    store = open_store(store_backend, name)
    try:
        loaded = load_customer_records(store, DEPARTMENTS[name], (record.row for record in registers[name]))
        assert loaded == len(registers[name])
        table = {"tax": "taxpayers", "pensions": "pensioners", "dvla": "drivers", "electoral": "electors"}
        count = store.read().scalar(f"SELECT COUNT(*) FROM {table.get(name, 'passports')}")
        assert int(count) == loaded
    finally:
        store.close()


def test_a_bad_row_loads_nothing_and_is_reported_by_line_and_column_never_by_value(store_backend: Settings) -> None:
    store = open_store(store_backend, "tax")
    try:
        rows = [row("tax", "T1"), row("tax", "T2", postcode="NOT A POSTCODE")]
        with pytest.raises(CustomerRecordsError) as raised:
            load_customer_records(store, DEPARTMENTS["tax"], rows)
        assert str(raised.value).startswith("line 3: postcode:")
        assert "NOT A POSTCODE" not in str(raised.value)
        assert int(store.read().scalar("SELECT COUNT(*) FROM taxpayers")) == 0
        with pytest.raises(CustomerRecordsError, match="line 2: self_assessment must be yes or no"):
            load_customer_records(store, DEPARTMENTS["tax"], [row("tax", "T1", self_assessment="perhaps")])
        with pytest.raises(CustomerRecordsError, match="line 2: marital_status must be one of SINGLE, MARRIED") as bad:
            load_customer_records(store, DEPARTMENTS["tax"], [row("tax", "T1", marital_status="SECRETLY WED")])
        assert "SECRETLY" not in str(bad.value)
    finally:
        store.close()


def test_simulate_registers_command_writes_files_and_loads_databases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CIVREG_DATABASE_DIR", str(tmp_path / "db"))
    monkeypatch.delenv("CIVREG_POSTGRES_DSN", raising=False)
    app = typer.Typer()
    app.command()(simulate_registers)
    args = ["-d", "electoral", "-d", "passports", "--count", "400", "--seed", "3", "--out-dir", str(tmp_path)]
    result = CliRunner().invoke(app, [*args, "--load"])
    assert result.exit_code == 0, result.output
    with (tmp_path / "electoral-register.csv").open(newline="", encoding="utf-8") as handle:
        written = list(csv.DictReader(handle))
    with (tmp_path / "electoral-register-key.csv").open(newline="", encoding="utf-8") as handle:
        key = list(csv.DictReader(handle))
    assert len(written) == len(key) > 0
    assert not (tmp_path / "tax-register.csv").exists()
    store = open_store(Settings(database_dir=tmp_path / "db", postgres_dsn=None), "electoral")
    try:
        assert int(store.read().scalar("SELECT COUNT(*) FROM electors")) == len(written)
    finally:
        store.close()
    refused = CliRunner().invoke(app, ["-d", "electoral", "--count", "10"])
    assert refused.exit_code != 0
