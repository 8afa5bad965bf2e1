"""DVLA's own records as its rules see them: driving licences, and the vehicles each driver keeps."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta

import polars as pl

from consumers.kit.customer_records import (
    PERSON_COLUMNS_DDL,
    CustomerRegister,
    PersonRecords,
    RegisterColumn,
    identifier,
    optional_day,
)
from consumers.kit.letters import LetterSchedule, ScheduledLetter
from consumers.kit.life_events import ENTRY_LOG_SCHEMA, Snapshot
from consumers.kit.matching import matching_indexes
from consumers.runtime import Transaction
from consumers.runtime.store import now_iso
from schemas.identifiers import normalise_driving_licence_number

__all__ = ["SCHEMA", "DvlaRecords"]

SCHEMA = (
    f"""
CREATE TABLE IF NOT EXISTS drivers (
    driver_id               TEXT PRIMARY KEY,
{PERSON_COLUMNS_DDL}
    driving_licence_number  TEXT,
    licence_status          TEXT NOT NULL CHECK (licence_status IN ('valid', 'cancelled')),
    cancelled_reason        TEXT,
    cancelled_on            TEXT,
    licence_valid_to        TEXT,
    updated_at              TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS drivers_licence ON drivers (driving_licence_number);
{matching_indexes("drivers")}
CREATE INDEX IF NOT EXISTS drivers_valid_to ON drivers (licence_valid_to);
CREATE TABLE IF NOT EXISTS vehicles (
    registration_mark  TEXT PRIMARY KEY,
    keeper_id          TEXT NOT NULL,
    tax_due_on         TEXT NOT NULL,
    keeper_deceased    INTEGER NOT NULL,
    updated_at         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS vehicles_keeper ON vehicles (keeper_id);
CREATE INDEX IF NOT EXISTS vehicles_tax_due ON vehicles (tax_due_on);
"""
    + ENTRY_LOG_SCHEMA
)

RENEWAL_NOTICE = timedelta(days=56)
"""A licence renewal reminder goes 56 days before the photocard expires."""
TAX_NOTICE = timedelta(days=30)
"""A vehicle tax reminder (V11) goes 30 days before the tax runs out."""

_REGISTRATION_MARK = re.compile(r"^[A-Z0-9]{2,8}$")


_LICENCE_RENEWAL_REMINDER = LetterSchedule(
    "licence-renewal-reminder",
    "drivers",
    "driver_id",
    "licence_valid_to",
    notice=RENEWAL_NOTICE,
    also=("cancelled_reason",),
)
_VEHICLE_TAX_REMINDER = LetterSchedule(
    "vehicle-tax-reminder",
    "vehicles v JOIN drivers d ON d.driver_id = v.keeper_id",
    "d.driver_id",
    "v.tax_due_on",
    person="d",
    notice=TAX_NOTICE,
    reference="v.registration_mark",
    also=("v.keeper_deceased",),
    order="v.tax_due_on, v.registration_mark",
)


def _vehicles(value: str) -> list[str]:
    """``MARK:tax-due-date`` items separated by ``;``, each as ``MARK:YYYY-MM-DD``."""
    return [f"{mark}:{due.isoformat()}" for mark, due in (_vehicle(item) for item in value.split(";") if item.strip())]


_DAY = r"([0-9]{3}[1-9]|[0-9]{2}[1-9][0-9]|[0-9][1-9][0-9]{2}|[1-9][0-9]{3})-[0-9]{2}-[0-9]{2}"
_VEHICLES_AS_WRITTEN = rf"^[A-Z0-9]{{2,8}}:{_DAY}(;[A-Z0-9]{{2,8}}:{_DAY})*$"


def _vehicles_as_written(cell: pl.Expr) -> pl.Expr:
    """Vehicles already written ``MARK:YYYY-MM-DD;...`` with real dates: ``_vehicles`` would keep them as they are."""
    days = cell.str.extract_all(r"[0-9]{4}-[0-9]{2}-[0-9]{2}").list.eval(
        pl.element().str.to_date("%Y-%m-%d", strict=False).is_not_null()
    )
    return cell.str.contains(_VEHICLES_AS_WRITTEN) & days.list.all()


def _keep_vehicles(transaction: Transaction, drivers: pl.DataFrame) -> None:
    """The vehicles each loaded driver keeps (their old ones are gone: ``replaces``); a mark another driver kept
    moves to the loaded one, and a mark listed twice in the file goes to its last row's driver."""
    kept = (
        drivers.select(pl.col("driver_id").alias("keeper_id"), pl.col("vehicles"))
        .explode("vehicles")
        .drop_nulls("vehicles")
        .with_columns(pl.col("vehicles").str.split_exact(":", 1).struct.rename_fields(["registration_mark", "due"]))
        .unnest("vehicles")
        .unique(subset=["registration_mark"], keep="last", maintain_order=True)
        .select("registration_mark", "keeper_id", pl.col("due").alias("tax_due_on"))
        .with_columns(keeper_deceased=pl.lit(0), updated_at=pl.lit(now_iso()))
    )
    if transaction.one("SELECT 1 FROM vehicles LIMIT 1") is None:
        transaction.insert_frame("vehicles", kept)
        return
    transaction.execute("CREATE TEMP TABLE civreg_loaded_vehicles AS SELECT * FROM vehicles WHERE 1 = 0")
    transaction.insert_frame("civreg_loaded_vehicles", kept)
    transaction.execute(
        "INSERT INTO vehicles SELECT * FROM civreg_loaded_vehicles WHERE true ON CONFLICT (registration_mark) "
        "DO UPDATE SET keeper_id = excluded.keeper_id, tax_due_on = excluded.tax_due_on, keeper_deceased = 0, "
        "updated_at = excluded.updated_at"
    )
    transaction.execute("DROP TABLE civreg_loaded_vehicles")


REGISTER = CustomerRegister(
    "drivers",
    "driver_id",
    (
        optional_day("licence_valid_to"),
        RegisterColumn(
            "vehicles",
            _vehicles,
            pl.List(pl.String()),
            stored=False,
            already=_vehicles_as_written,
            as_stored=lambda cell: cell.str.split(";"),
        ),
        identifier("driving_licence_number", normalise_driving_licence_number),
    ),
    starts_with={"licence_status": "valid", "cancelled_reason": None, "cancelled_on": None},
    related=_keep_vehicles,
    replaces=(("vehicles", "keeper_id"),),
)
"""DVLA's drivers file: every licence loaded is valid; the vehicles column lists what each driver keeps."""


class DvlaRecords(PersonRecords):
    """Reads and writes DVLA's driver and vehicle tables inside one transaction."""

    register = REGISTER

    def __init__(self, transaction: Transaction) -> None:
        super().__init__(
            transaction,
            "drivers",
            "driver_id",
            identifier=("driving_licence_number", lambda ids: ids.driving_licence_number),
        )
        self.drivers = self.table

    # What the rules change ----------------------------------------------------------------------------------

    def cancel_licence(self, driver_id: str, reason: str, on: date) -> Snapshot:
        """The licence is no longer valid."""
        return self.drivers.update(
            driver_id, {"licence_status": "cancelled", "cancelled_reason": reason, "cancelled_on": on.isoformat()}
        )

    def flag_vehicles_of_deceased_keeper(self, driver_id: str) -> list[str]:
        """Mark the vehicles this driver keeps as having a deceased keeper; returns the marks newly flagged."""
        rows = self._tx.select(
            ("registration_mark",),
            "FROM vehicles WHERE keeper_id = ? AND keeper_deceased = 0 ORDER BY registration_mark",
            (driver_id,),
        )
        marks = [row.text("registration_mark") for row in rows]
        self._tx.execute(
            "UPDATE vehicles SET keeper_deceased = 1, updated_at = ? WHERE keeper_id = ? AND keeper_deceased = 0",
            (now_iso(), driver_id),
        )
        return marks

    def unflag_vehicles(self, marks: list[str]) -> None:
        """The keeper is not dead after all."""
        for mark in marks:
            self._tx.execute(
                "UPDATE vehicles SET keeper_deceased = 0, updated_at = ? WHERE registration_mark = ?",
                (now_iso(), mark),
            )

    # Correspondence -----------------------------------------------------------------------------------------

    def renewals_due(self, first: date, last: date) -> Iterator[tuple[ScheduledLetter, str | None]]:
        """Licence renewal reminders due in [first, last], with the reason a licence was cancelled (if it was)."""
        for letter, row in _LICENCE_RENEWAL_REMINDER.due_in(self._tx, first, last):
            yield letter, row.optional_text("cancelled_reason")

    def vehicle_tax_reminders_due(self, first: date, last: date) -> Iterator[tuple[ScheduledLetter, bool]]:
        """Vehicle tax reminders due in [first, last], addressed to the keeper, with whether the keeper died."""
        for letter, row in _VEHICLE_TAX_REMINDER.due_in(self._tx, first, last):
            yield letter, bool(row.integer("keeper_deceased"))


def _vehicle(item: str) -> tuple[str, date]:
    mark, _, due = item.strip().partition(":")
    mark = mark.replace(" ", "").upper()
    if not _REGISTRATION_MARK.fullmatch(mark):
        raise ValueError("vehicles: a registration mark is 2 to 8 letters and digits")
    try:
        return mark, date.fromisoformat(due)
    except ValueError:
        raise ValueError("vehicles: each vehicle is MARK:YYYY-MM-DD (its tax due date)") from None
