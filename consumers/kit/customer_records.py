"""Loading a department's customer register (a CSV extract) into its database.

Why: a department joins the bus with the customers it already has; its records must be in its own database before
events can be matched against them. Every department's register has the same person columns (``PERSON_COLUMNS``)
plus its own (its identifier, what it pays or issues, when it next writes). The load is one transaction: a bad row
fails it naming its line, column and rule, never the value (values are personal data), and nothing is loaded.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

from civreg.errors import CivregError
from consumers.kit.life_events import EntryLog, Snapshot
from consumers.kit.matching import IdentifierColumn, PersonTable, name_key, postcode_key
from consumers.runtime import Department, Store, Transaction
from consumers.runtime.store import now_iso
from schemas.departments import PERSON_COLUMNS, record_columns
from schemas.identifiers import normalise_postcode

__all__ = [
    "PERSON_COLUMNS",
    "PERSON_COLUMNS_DDL",
    "STORED_PERSON_COLUMNS",
    "CustomerRecordsError",
    "CustomerRecordsImport",
    "PersonColumns",
    "PersonRecords",
    "RecordTable",
    "load_customer_records",
    "optional",
    "optional_date",
    "read_customer_records",
    "required",
    "required_choice",
    "required_date",
]

STORED_PERSON_COLUMNS = (
    "given_names",
    "family_name",
    "date_of_birth",
    "address",
    "town",
    "postcode",
    "name_key",
    "postcode_key",
)
"""The person columns of every department table after its key, in the order ``PersonColumns.values`` gives."""

PERSON_COLUMNS_DDL = """    given_names   TEXT NOT NULL,
    family_name   TEXT NOT NULL,
    date_of_birth TEXT,
    address       TEXT NOT NULL,
    town          TEXT NOT NULL,
    postcode      TEXT NOT NULL,
    name_key      TEXT NOT NULL,
    postcode_key  TEXT NOT NULL,"""
"""``STORED_PERSON_COLUMNS`` as table-definition lines, for each department's CREATE TABLE."""


class CustomerRecordsError(CivregError, ValueError):
    """A register row breaks a rule; the message names the line, the column and the rule."""


@runtime_checkable
class CustomerRecordsImport(Protocol):
    """A department's records class that can take its register's rows."""

    def add(self, row: Mapping[str, str]) -> None:
        """Insert (or replace) one customer from a validated register row."""
        ...


def required(row: Mapping[str, str], column: str) -> str:
    """A column that must not be empty."""
    value = (row.get(column) or "").strip()
    if not value:
        raise ValueError(f"{column} is required")
    return value


EnumT = TypeVar("EnumT", bound=StrEnum)
RecordsT = TypeVar("RecordsT")


def required_choice(row: Mapping[str, str], column: str, choices: type[EnumT]) -> EnumT:
    """A column holding one of an enumeration's values (the error lists them, never the value given)."""
    value = required(row, column)
    try:
        return choices(value)
    except ValueError:
        raise ValueError(f"{column} must be one of {', '.join(choices)}") from None


def required_date(row: Mapping[str, str], column: str) -> date:
    """A column holding a date, YYYY-MM-DD."""
    try:
        return date.fromisoformat(required(row, column))
    except ValueError:
        raise ValueError(f"{column} must be a date (YYYY-MM-DD)") from None


def optional_date(row: Mapping[str, str], column: str) -> date | None:
    """A date column that may be empty."""
    return required_date(row, column) if (row.get(column) or "").strip() else None


def optional(row: Mapping[str, str], column: str, normalise: Callable[[str], str]) -> str | None:
    """An identifier column that may be empty; when present it must pass its format rule."""
    value = (row.get(column) or "").strip()
    if not value:
        return None
    try:
        return normalise(value)
    except ValueError as exc:
        raise ValueError(f"{column}: {exc}") from None


@dataclass(frozen=True)
class PersonColumns:
    """The person columns every register has, validated, with the matching keys worked out."""

    record_id: str
    given_names: str
    family_name: str
    date_of_birth: date | None
    address: str
    town: str
    postcode: str

    @classmethod
    def from_row(cls, row: Mapping[str, str]) -> PersonColumns:
        """Parse and check the person columns of one row."""
        lines = [
            line
            for line in ((row.get("address_line_1") or "").strip(), (row.get("address_line_2") or "").strip())
            if line
        ]
        if not lines:
            raise ValueError("address_line_1 is required")
        try:
            postcode = normalise_postcode(required(row, "postcode"))
        except ValueError as exc:
            raise ValueError(f"postcode: {exc}") from None
        return cls(
            record_id=required(row, "record_id"),
            given_names=required(row, "given_names"),
            family_name=required(row, "family_name"),
            date_of_birth=optional_date(row, "date_of_birth"),
            address="\n".join(lines),
            town=required(row, "town"),
            postcode=postcode,
        )

    @property
    def name_key(self) -> str:
        """Key for matching by name."""
        return name_key(self.given_names, self.family_name)

    @property
    def postcode_key(self) -> str:
        """Key for matching by postcode."""
        return postcode_key(self.postcode) or ""

    @property
    def birth(self) -> str | None:
        """Date of birth as stored (ISO text)."""
        return None if self.date_of_birth is None else self.date_of_birth.isoformat()

    def values(self) -> tuple[Any, ...]:
        """The ``STORED_PERSON_COLUMNS`` values."""
        return (
            self.given_names,
            self.family_name,
            self.birth,
            self.address,
            self.town,
            self.postcode,
            self.name_key,
            self.postcode_key,
        )


def read_customer_records(path: Path) -> Iterator[dict[str, str]]:
    """The rows of a register CSV."""
    with path.open(newline="", encoding="utf-8") as handle:
        yield from csv.DictReader(handle)


def load_customer_records(store: Store, department: Department[RecordsT], rows: Iterable[Mapping[str, str]]) -> int:
    """Add every row in one transaction (all or nothing); returns how many were loaded."""
    with store.transaction() as transaction:
        records = department.records(transaction)
        if not isinstance(records, CustomerRecordsImport):
            raise CustomerRecordsError(f"department {department.name!r} keeps no customer register")
        columns = record_columns(department.name)
        loaded = 0
        for line, row in enumerate(rows, start=2):
            missing = [column for column in columns if column not in row]
            if missing:
                raise CustomerRecordsError(f"line {line}: missing column(s) {', '.join(missing)}")
            try:
                records.add(row)
            except ValueError as exc:
                raise CustomerRecordsError(f"line {line}: {exc}") from None
            loaded += 1
    return loaded


class RecordTable:
    """Read and change named columns of one department table, returning what they were (a void puts it back).

    The table has ``updated_at``; table, key and column names are the department's constants, never input.
    """

    def __init__(self, transaction: Transaction, table: str, key: str) -> None:
        self._tx = transaction
        self.table = table
        self.key = key

    def fields(self, record_id: str, *columns: str) -> dict[str, Any]:
        """The named columns of one record; LookupError if there is no such record."""
        row = self._tx.one(f"SELECT {', '.join(columns)} FROM {self.table} WHERE {self.key} = ?", (record_id,))  # noqa: S608
        if row is None:
            raise LookupError(f"{self.table} has no record {record_id}")
        return dict(zip(columns, row, strict=True))

    def surname(self, record_id: str, new_surname: str) -> dict[str, str]:
        """The changes that give a record a new surname: the name and the key matching finds it by."""
        given = str(self.fields(record_id, "given_names")["given_names"])
        return {"family_name": new_surname, "name_key": name_key(given, new_surname)}

    def update(self, record_id: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """Set ``values`` on one record; returns the columns as they were before."""
        if not values:
            return {}
        before = self.fields(record_id, *values)
        assignments = ", ".join(f"{column} = ?" for column in values)
        self._tx.execute(
            f"UPDATE {self.table} SET {assignments}, updated_at = ? WHERE {self.key} = ?",  # noqa: S608
            (*values.values(), now_iso(), record_id),
        )
        return before

    def replace(self, record_id: str, columns: tuple[str, ...], values: tuple[Any, ...]) -> None:
        """Insert one record, replacing any with the same key (a register loaded again)."""
        self._tx.execute(f"DELETE FROM {self.table} WHERE {self.key} = ?", (record_id,))  # noqa: S608
        marks = ", ".join("?" for _ in (*columns, "updated_at"))
        self._tx.execute(
            f"INSERT INTO {self.table} ({', '.join(columns)}, updated_at) VALUES ({marks})",  # noqa: S608
            (*values, now_iso()),
        )


class PersonRecords:
    """What every department's records class is built on: its customers' table, found by matching (``people``)
    and changed by named columns (``table``), and its entry log; with the changes every department makes alike.
    """

    def __init__(
        self,
        transaction: Transaction,
        table: str,
        key: str,
        identifier: IdentifierColumn | None = None,
    ) -> None:
        self._tx = transaction
        self.people = PersonTable(transaction, table, key, identifier=identifier)
        self.entries = EntryLog(transaction)
        self.table = RecordTable(transaction, table, key)

    def change_surname(self, record_id: str, new_surname: str) -> Snapshot:
        """The customer's new surname; returns the fields as they were."""
        return self.table.update(record_id, self.table.surname(record_id, new_surname))

    def restore(self, record_id: str, before: Snapshot) -> None:
        """Put the fields an entry changed back as they were."""
        self.table.update(record_id, before)
