"""``civreg simulate registers`` and ``civreg registers load``: department customer registers into their databases.

Commands only parse arguments and delegate to ``producers.customer_records`` and ``consumers.kit.customer_records``.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from civreg.settings import load_settings
from schemas.departments import REGISTER_DEPARTMENTS

__all__ = ["registers_app", "simulate_registers"]

registers_app = typer.Typer(help="Load department customer registers (CSV extracts) into their databases.")

_DEPARTMENTS = REGISTER_DEPARTMENTS


def _departments(chosen: list[str] | None) -> list[str]:
    departments = chosen or list(_DEPARTMENTS)
    unknown = [name for name in departments if name not in _DEPARTMENTS]
    if unknown:
        raise typer.BadParameter(f"unknown department(s) {', '.join(unknown)}; known: {', '.join(_DEPARTMENTS)}")
    return departments


def simulate_registers(
    department: Annotated[
        list[str] | None,
        typer.Option("--department", "-d", help="Department (repeatable); default: all five with a register."),
    ] = None,
    count: Annotated[
        int, typer.Option(min=1, help="Events of the simulated registrations the customers are drawn from.")
    ] = 10_000,
    seed: Annotated[int, typer.Option(help="Seed of the registrations (and of the registers).")] = 0,
    start: Annotated[str, typer.Option(help="First day of the simulated registrations (YYYY-MM-DD).")] = "2025-01-06",
    out_dir: Annotated[
        Path | None,
        typer.Option(help="Write <department>-register.csv and <department>-register-key.csv (the answer key) here."),
    ] = None,
    load: Annotated[
        bool, typer.Option("--load", help="Load each register into the department's database (CIVREG_DATABASE_DIR).")
    ] = False,
) -> None:
    """Generate each department's customers for the people of `simulate registrations` (same --count/--seed/--start).

    The register holds people named in the registrations as they stood before them, customers who appear in none
    (including living namesakes of the dead), and near-duplicates that cannot be matched safely (a duplicate
    record, an old address, a misspelt surname): they go to the department's review queue. Give --out-dir to write
    CSV files, --load to put the records into the departments' databases, or both. Loading replaces records with
    the same record_id.
    """
    from civreg.commands.simulate import simulation_errors
    from consumers.departments import department_named
    from consumers.kit.customer_records import load_customer_records
    from consumers.operations.running import open_store
    from producers.customer_records import simulate_customer_records, write_customer_records, write_customer_records_key
    from producers.simulation import simulate_population

    if out_dir is None and not load:
        raise typer.BadParameter("give --out-dir DIR, --load, or both", param_hint="--out-dir/--load")
    try:
        first_day = date.fromisoformat(start)
    except ValueError:
        raise typer.BadParameter("must be a date, YYYY-MM-DD", param_hint="--start") from None
    departments = _departments(department)
    with simulation_errors():
        population = simulate_population(count, seed, first_day)
    settings = load_settings()
    for name in departments:
        records = simulate_customer_records(population, name, seed)
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            with (out_dir / f"{name}-register.csv").open("w", newline="", encoding="utf-8") as handle:
                write_customer_records(records, name, handle)
            with (out_dir / f"{name}-register-key.csv").open("w", newline="", encoding="utf-8") as handle:
                write_customer_records_key(records, handle)
        if load:
            store = open_store(settings, name)
            try:
                load_customer_records(store, department_named(name), (record.row for record in records))
            finally:
                store.close()
        where = " and ".join(
            part
            for part in (str(out_dir / f"{name}-register.csv") if out_dir else "", "its database" if load else "")
            if part
        )
        typer.echo(f"{name}: {len(records)} records to {where}", err=True)


@registers_app.command("load")
def load_command(
    register: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The register CSV.")],
    department: Annotated[str, typer.Option("--department", "-d", help="Whose register it is.")],
    database: Annotated[
        Path | None,
        typer.Option("--database", help="SQLite file (default: $CIVREG_DATABASE_DIR/<department>.sqlite3)."),
    ] = None,
) -> None:
    """Load a department's customer register: one transaction, all rows or none.

    Columns: record_id, given_names, family_name, date_of_birth (YYYY-MM-DD), address_line_1, address_line_2, town,
    postcode, then the department's own (see `civreg simulate registers --out-dir` for examples). A bad row stops
    the load naming its line, column and rule.
    """
    from consumers.departments import department_named
    from consumers.kit.customer_records import CustomerRecordsError, load_customer_records, read_customer_records
    from consumers.operations.running import open_store

    name = _departments([department])[0]
    store = open_store(load_settings(), name, database)
    try:
        loaded = load_customer_records(store, department_named(name), read_customer_records(register))
    except CustomerRecordsError as exc:
        raise typer.BadParameter(str(exc), param_hint="REGISTER") from None
    finally:
        store.close()
    typer.echo(f"{name}: loaded {loaded} records")
