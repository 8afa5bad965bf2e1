"""The bulk suite of ``civreg bench``: ``civreg registers load`` and ``civreg mailing filter`` over files of N rows.

- **registers load**: each department's register file of N rows loaded into a fresh store (SQLite, and PostgreSQL
  when ``CIVREG_POSTGRES_DSN`` is set): read, every rule checked, stored in one transaction, as the command does.
  The rows are the simulated register of a simulated population (people consistent with the registrations, with
  the awkward near-duplicates), repeated to N rows with every record id and every identifier (NINO, driving licence
  number, passport number, vehicle mark) made unique, so no rule is checked fewer times than a real file needs.
- **mailing filter**: a simulated mailing list of N recipients (registered deaths, voided deaths, namesakes, the
  living; some untidy) filtered against the suppression list of the same population's deaths, on each engine.

Each figure is one timed run of the library call the command makes (file in, database or files out); the suite
checks every run did the whole job (rows in the table, recipients decided) and fails otherwise. Targets: 1,000,000
register rows in 30 s and 1,000,000 recipients in 5 s; at another N the goal is scaled linearly (said in its name)
and rows/s are reported for every run.
"""

from __future__ import annotations

import tempfile
import time
from datetime import date
from pathlib import Path

import polars as pl
from rich.console import Console

from civreg.settings import Settings
from consumers.departments import department_named
from consumers.kit.customer_records import load_customer_records, read_customer_records
from consumers.runtime import Store
from consumers.suppression import filter_mailing
from deploy.local.bench.consumer import _drop, _fresh_store
from deploy.local.bench.harness import BenchOptions, Rate, SuiteResult, Target
from producers.customer_records import REGISTER_DEPARTMENTS, record_columns, simulate_customer_records
from producers.mailing_list import simulate_mailing_list, write_mailing_list
from producers.simulation import SimulatedPopulation, simulate_population
from schemas.topics import Register

__all__ = ["FULL_ROWS", "LOAD_SECONDS", "MAILING_SECONDS", "run_bulk_suite"]

FULL_ROWS = 1_000_000
LOAD_SECONDS = 30.0
"""Target: a register of ``FULL_ROWS`` rows loaded within this many seconds."""
MAILING_SECONDS = 5.0
"""Target: a mailing list of ``FULL_ROWS`` recipients filtered within this many seconds."""

_START = date(2025, 1, 6)
_TABLES = {"tax": "taxpayers", "pensions": "pensioners", "dvla": "drivers", "electoral": "electors"}
_NINO_PREFIXES = ("AB", "CE", "HJ", "KL", "MP", "RS", "WX", "YZ", "JE", "TA")


def _population_events(rows: int) -> int:
    """Registrations behind the files: a tenth of N, at most 100,000 (the issue's run) and at least 2,000."""
    return max(2_000, min(100_000, rows // 10))


def _register_file(population: SimulatedPopulation, department: str, rows: int, seed: int, path: Path) -> None:
    """``department``'s simulated register repeated to ``rows`` rows, every key and identifier unique."""
    base = [record.row for record in simulate_customer_records(population, department, seed)]
    out = []
    for index in range(rows):
        row = dict(base[index % len(base)])
        row["record_id"] = f"{department[:2].upper()}{index:09d}"
        if row.get("nino"):
            row["nino"] = f"{_NINO_PREFIXES[index // 1_000_000 % 10]}{index % 1_000_000:06d}{'ABCD'[index % 4]}"
        if row.get("driving_licence_number"):
            row["driving_licence_number"] = f"{row['driving_licence_number'][:13]}{index % 10}{_base36(index // 10, 2)}"
        if row.get("passport_number"):
            row["passport_number"] = f"{100_000_000 + index:09d}"
        if row.get("vehicles"):
            row["vehicles"] = ";".join(
                f"V{_base36(index * 3 + n, 6)}:{item.split(':')[1]}"
                for n, item in enumerate(row["vehicles"].split(";"))
            )
        out.append(row)
    pl.DataFrame(out, schema=dict.fromkeys(record_columns(department), pl.String)).write_csv(path)


def _base36(number: int, width: int) -> str:
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = ""
    for _ in range(width):
        number, remainder = divmod(number, 36)
        out = digits[remainder] + out
    return out


def _suppression_store(settings: Settings, population: SimulatedPopulation, engine: str, workdir: Path) -> Store:
    """A fresh suppression store holding the population's deaths (with their corrections and voids), applied by
    the suppression service's own rules."""
    department = department_named("suppression")
    store = _fresh_store(settings, "suppression", engine, workdir)
    with store.transaction() as transaction:
        for event in population.events:
            if event.entry.register is Register.DEATH and event.event_type in department.event_types:
                department.apply(event, transaction)
    return store


def _timed_load(settings: Settings, department: str, engine: str, path: Path, *, rows: int, workdir: Path) -> float:
    """Seconds to read, check and store the register file, as ``civreg registers load`` does; checks every row."""
    store = _fresh_store(settings, department, engine, workdir)
    try:
        started = time.perf_counter()
        loaded = load_customer_records(store, department_named(department), read_customer_records(path))
        seconds = time.perf_counter() - started
        stored = int(store.read().scalar(f"SELECT COUNT(*) FROM {_TABLES.get(department, 'passports')}"))  # noqa: S608
        if loaded != rows or stored != rows:
            raise RuntimeError(f"registers load {department} on {engine}: {stored} stored of {rows}")
        return seconds
    finally:
        _drop(store)
        _remove_sqlite_files(workdir)


def _timed_filter(
    settings: Settings, population: SimulatedPopulation, engine: str, path: Path, *, rows: int, workdir: Path
) -> tuple[float, dict[str, int]]:
    """Seconds to filter the mailing file, as ``civreg mailing filter`` does, and the count of each action."""
    store = _suppression_store(settings, population, engine, workdir)
    try:
        started = time.perf_counter()
        summary = filter_mailing(store, path, workdir / "sendable.csv", workdir / "report.csv")
        seconds = time.perf_counter() - started
    finally:
        _drop(store)
        _remove_sqlite_files(workdir)
    if summary.recipients != rows or sum(summary.actions.values()) != rows:
        raise RuntimeError(f"mailing filter on {engine}: {summary.recipients} of {rows} recipients decided")
    return seconds, {str(action): count for action, count in summary.actions.items()}


def _remove_sqlite_files(workdir: Path) -> None:
    """A million-row store is hundreds of megabytes: gone once measured."""
    for path in workdir.glob("*.sqlite3*"):
        path.unlink()


def _scaled(goal: float, rows: int) -> tuple[float, str]:
    """The goal at ``rows`` (linear in rows), and how the target's name says so."""
    if rows == FULL_ROWS:
        return goal, f"{rows:,} rows"
    return goal * rows / FULL_ROWS, f"{rows:,} rows, goal scaled from {goal:g} s at {FULL_ROWS:,}"


def run_bulk_suite(settings: Settings, options: BenchOptions, console: Console) -> SuiteResult:
    """Time registers load (every department) and mailing filter over ``options.bulk_rows`` rows on each engine."""
    rows = options.bulk_rows
    engines = ["sqlite"] + (["postgres"] if settings.postgres_dsn is not None else [])
    result = SuiteResult("bulk", f"Registers load and mailing filter, {rows:,} rows", "civreg", "-")
    with tempfile.TemporaryDirectory(prefix="civreg-bench-bulk-") as tmp:
        workdir = Path(tmp)
        events = _population_events(rows)
        console.print(f"[dim]bulk: simulating {events:,} registrations and files of {rows:,} rows[/]", highlight=False)
        population = simulate_population(events, options.seed, _START)
        mailing = workdir / "mailing.csv"
        with mailing.open("w", newline="", encoding="utf-8") as handle:
            write_mailing_list(simulate_mailing_list(population, rows, options.seed), handle)
        load_goal, load_label = _scaled(LOAD_SECONDS, rows)
        filter_goal, filter_label = _scaled(MAILING_SECONDS, rows)
        slowest: dict[str, float] = {}
        for department in REGISTER_DEPARTMENTS:
            path = workdir / f"{department}-register.csv"
            _register_file(population, department, rows, options.seed, path)
            for engine in engines:
                seconds = _timed_load(settings, department, engine, path, rows=rows, workdir=workdir)
                result.rates.append(Rate(department, f"registers load, {engine}", rows, seconds, rows / seconds))
                slowest[engine] = max(slowest.get(engine, 0.0), seconds)
            path.unlink()
        for engine in engines:
            seconds, actions = _timed_filter(settings, population, engine, mailing, rows=rows, workdir=workdir)
            result.rates.append(Rate("suppression", f"mailing filter, {engine}", rows, seconds, rows / seconds))
            result.context[f"mailing filter actions ({engine})"] = ", ".join(
                f"{k}: {v}" for k, v in sorted(actions.items())
            )
            result.targets.append(Target(f"mailing filter, {engine} ({filter_label})", seconds, filter_goal, "s"))
        for engine, seconds in slowest.items():
            result.targets.insert(
                0, Target(f"registers load, slowest department, {engine} ({load_label})", seconds, load_goal, "s")
            )
    result.context.update(
        rows=rows,
        registrations=events,
        engines=", ".join(engines),
        **{"rows per second": {f"{r.department} {r.path}": round(r.rate) for r in result.rates}},
    )
    return result
