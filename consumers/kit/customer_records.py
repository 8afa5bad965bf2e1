"""Loading a department's customer register (a CSV extract) into its database.

Why: a department joins the bus with the customers it already has; its records must be in its own database before
events can be matched against them. Every department's register has the same person columns (``PERSON_COLUMNS``)
plus its own (its identifier, what it pays or issues, when it next writes). The load is one transaction: a bad row
fails it naming its line, column and rule, never the value (values are personal data), and nothing is loaded.

A department declares its columns' rules once (``CustomerRegister``); the whole file is checked a column at a time,
each rule applied once per distinct value (``consumers.kit.frames``), and stored set-based: ``executemany`` on
SQLite, ``COPY`` on PostgreSQL. A million rows load in seconds, where a row at a time took minutes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import polars as pl

from civreg.errors import CivregError
from consumers.kit.frames import (
    NORMAL_FORMS,
    PY_WHITESPACE,
    Checked,
    first_failure,
    frame_from_rows,
    mapped,
    name_keys,
    read_text_csv,
    stripped,
)
from consumers.kit.life_events import EntryLog, Snapshot
from consumers.kit.matching import IdentifierColumn, PersonTable, name_key
from consumers.runtime import Department, Store, Transaction
from consumers.runtime.store import now_iso
from schemas.departments import PERSON_COLUMNS, record_columns
from schemas.identifiers import normalise_postcode

__all__ = [
    "PERSON_COLUMNS",
    "PERSON_COLUMNS_DDL",
    "STORED_PERSON_COLUMNS",
    "CustomerRecordsError",
    "CustomerRegister",
    "PersonRecords",
    "RecordTable",
    "RegisterColumn",
    "choice",
    "day",
    "identifier",
    "load_customer_records",
    "optional",
    "optional_date",
    "optional_day",
    "read_customer_records",
    "required",
    "required_choice",
    "required_date",
    "text",
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


Rule = Callable[[str], Any]
"""A column's rule: the value to store from the cell's text, or ValueError naming the column and the rule."""


@dataclass(frozen=True)
class RegisterColumn:
    """One of a department's own register columns: its rule, and how its value is stored."""

    name: str
    rule: Rule
    stored_as: pl.DataType = field(default_factory=pl.String)
    stored: bool = True
    """False for a column kept in another table (DVLA's vehicles), which ``CustomerRegister.related`` writes."""
    already: Callable[[pl.Expr], pl.Expr] | None = None
    """Marks cells the rule would store as they are (or as ``as_stored`` gives): a shortcut, never a second rule;
    tests/unit/test_register_rules.py holds each to giving what the rule gives."""
    as_stored: Callable[[pl.Expr], pl.Expr] | None = None


def _as_is(cell: pl.Expr) -> pl.Expr:
    """Not empty and without surrounding whitespace: what ``required`` returns unchanged."""
    return (cell != "") & (cell.str.strip_chars(PY_WHITESPACE) == cell)


def text(column: str) -> RegisterColumn:
    """A column that must not be empty."""
    return RegisterColumn(column, lambda value: required({column: value}, column), already=_as_is)


def choice(column: str, choices: type[StrEnum]) -> RegisterColumn:
    """A column holding one of an enumeration's values."""
    return RegisterColumn(column, lambda value: required_choice({column: value}, column, choices).value)


def day(column: str) -> RegisterColumn:
    """A date column, YYYY-MM-DD, that must be there."""
    return RegisterColumn(column, lambda value: required_date({column: value}, column).isoformat())


def optional_day(column: str) -> RegisterColumn:
    """A date column that may be empty."""

    def rule(value: str) -> str | None:
        found = optional_date({column: value}, column)
        return None if found is None else found.isoformat()

    return RegisterColumn(column, rule)


def identifier(column: str, normalise: Callable[[str], str]) -> RegisterColumn:
    """An identifier column that may be empty; when present it must pass its format rule."""
    return RegisterColumn(
        column, lambda value: optional({column: value}, column, normalise), already=NORMAL_FORMS.get(normalise)
    )


@dataclass(frozen=True)
class CustomerRegister:
    """How a department takes its register file: its table and key, its own columns' rules in the order a row
    is checked (after the person columns'), and the values every loaded customer starts with.

    ``related`` writes what the rows hold for another table (DVLA's vehicles), given the rows as stored, after the
    rows of those records in ``replaces`` are deleted.
    """

    table: str
    key: str
    columns: tuple[RegisterColumn, ...]
    starts_with: Mapping[str, Any]
    related: Callable[[Transaction, pl.DataFrame], None] | None = None
    replaces: tuple[tuple[str, str], ...] = ()
    """Other tables' (table, key column) whose rows for a loaded record are replaced by what ``related`` writes."""


def _postcode(value: str) -> str:
    try:
        return normalise_postcode(required({"postcode": value}, "postcode"))
    except ValueError as exc:
        raise ValueError(f"postcode: {exc}") from None


_PERSON_RULES = (
    RegisterColumn("postcode", _postcode, already=NORMAL_FORMS[normalise_postcode]),
    text("record_id"),
    text("given_names"),
    text("family_name"),
    optional_day("date_of_birth"),
    text("town"),
)
"""The person columns' rules after the address's, in the order a row is checked (its first broken rule is named)."""


def _checked(rule: Rule) -> Callable[[str], Checked]:
    def check(value: str) -> Checked:
        try:
            return Checked(rule(value))
        except ValueError as exc:
            return Checked(error=str(exc))

    return check


def _validated(register: CustomerRegister, frame: pl.DataFrame) -> pl.DataFrame:
    """The rows as stored (key, person columns, the department's own, what it starts with); CustomerRecordsError
    names the first bad row's line and its first broken rule, never the value."""
    lines = frame.select(stripped("address_line_1"), stripped("address_line_2"))
    address = lines.select(
        pl.concat_str(
            pl.col("address_line_1").replace("", None),
            pl.col("address_line_2").replace("", None),
            separator="\n",
            ignore_nulls=True,
        ).alias("address")
    )["address"]
    no_address = pl.when(pl.col("address") == "").then(pl.lit("address_line_1 is required")).alias("error")
    errors = [pl.DataFrame({"address": address}).select(no_address)["error"]]
    values: dict[str, pl.Series] = {}
    for column in (*_PERSON_RULES, *register.columns):
        cells = pl.col(column.name)
        shortcut = frame.select(
            (column.already or (lambda _: pl.lit(False)))(cells).fill_null(False).alias("already"),
            (column.as_stored or (lambda cell: cell))(cells).alias("as_stored"),
        )
        value, error = mapped(
            frame[column.name],
            _checked(column.rule),
            column.stored_as,
            already=shortcut["already"],
            as_stored=shortcut["as_stored"],
        )
        values[column.name] = value
        errors.append(error)
    failure = first_failure(errors)
    if failure is not None:
        row, message = failure
        raise CustomerRecordsError(f"line {row + 2}: {message}")
    postcode = values["postcode"]
    stored = pl.DataFrame(
        {
            register.key: values["record_id"],
            "given_names": values["given_names"],
            "family_name": values["family_name"],
            "date_of_birth": values["date_of_birth"],
            "address": address,
            "town": values["town"],
            "postcode": postcode,
            "name_key": name_keys(values["given_names"], values["family_name"]),
            "postcode_key": postcode.str.replace_all(" ", "", literal=True),
            **{column.name: values[column.name] for column in register.columns},
        }
    )
    fixed = [pl.lit(value).alias(name) for name, value in register.starts_with.items()]
    return stored.with_columns(*fixed, updated_at=pl.lit(now_iso()))


def _frame(rows: Iterable[Mapping[str, str]], columns: tuple[str, ...]) -> pl.DataFrame:
    """Rows in memory as a text frame; a row lacking a column is refused by its line."""
    kept = []
    for line, row in enumerate(rows, start=2):
        missing = [column for column in columns if column not in row]
        if missing:
            raise CustomerRecordsError(f"line {line}: missing column(s) {', '.join(missing)}")
        kept.append(row)
    return frame_from_rows(kept, columns)


def read_customer_records(path: Path) -> pl.DataFrame:
    """A register CSV, every column as text; CustomerRecordsError names the file, never a line's content."""
    try:
        return read_text_csv(path)
    except ValueError as exc:
        raise CustomerRecordsError(str(exc)) from None


def load_customer_records(
    store: Store, department: Department[RecordsT], rows: Iterable[Mapping[str, str]] | pl.DataFrame
) -> int:
    """Check every row, then store them all in one transaction (all or nothing); returns how many were loaded.

    A record_id already stored is replaced; one given twice in the file is stored as its last row has it.
    """
    register = getattr(department.records, "register", None)
    if not isinstance(register, CustomerRegister):
        raise CustomerRecordsError(f"department {department.name!r} keeps no customer register")
    columns = record_columns(department.name)
    if isinstance(rows, pl.DataFrame):
        frame = rows
        missing = [column for column in columns if column not in frame.columns]
        if missing and frame.height:
            raise CustomerRecordsError(f"line 2: missing column(s) {', '.join(missing)}")
    else:
        frame = _frame(rows, columns)
    if frame.is_empty():
        return 0
    stored = _validated(register, frame)
    latest = stored.unique(subset=[register.key], keep="last", maintain_order=True)
    with store.transaction() as transaction:
        _replace(transaction, register, latest)
    return frame.height


LOADED_KEYS = "civreg_loaded_keys"
"""The temporary table of the keys being loaded, while the records they replace are deleted."""
_REBUILD_FROM = 50_000
"""Loads of at least this many rows (and at least as many as the table holds) drop the table's secondary indexes
and build them again after the insert: sorting once beats a million scattered index inserts."""


def _replace(transaction: Transaction, register: CustomerRegister, stored: pl.DataFrame) -> None:
    """Delete the stored records the file gives again (and their rows in ``replaces`` tables), insert the file's,
    and let ``related`` write its part; large loads rebuild the table's indexes once at the end."""
    held = int(transaction.scalar(f"SELECT COUNT(*) FROM {register.table}"))  # noqa: S608
    rebuild = transaction.secondary_indexes(register.table) if stored.height >= max(_REBUILD_FROM, held) else []
    for name, _ in rebuild:
        transaction.execute(f"DROP INDEX {name}")
    keyed = [(register.table, register.key), *register.replaces]
    if held or any(transaction.one(f"SELECT 1 FROM {table} LIMIT 1") for table, _ in register.replaces):  # noqa: S608
        transaction.execute(f"CREATE TEMP TABLE {LOADED_KEYS} (record_id TEXT PRIMARY KEY)")
        transaction.insert_frame(LOADED_KEYS, stored.select(pl.col(register.key).alias("record_id")))
        for table, column in keyed:
            transaction.execute(f"DELETE FROM {table} WHERE {column} IN (SELECT record_id FROM {LOADED_KEYS})")  # noqa: S608
        transaction.execute(f"DROP TABLE {LOADED_KEYS}")
    transaction.insert_frame(register.table, stored.drop([c.name for c in register.columns if not c.stored]))
    for _, statement in rebuild:
        transaction.execute(statement)
    if register.related is not None:
        register.related(transaction, stored)


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
