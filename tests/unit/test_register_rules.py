"""Register files checked a column at a time: shortcuts never disagree with their rule, and the first bad row is
named by its line and its first broken rule, never by its value.

A shortcut (``RegisterColumn.already``) lets a cell already in its stored form skip its Python rule; it must only
mark cells the rule would store exactly as the shortcut does. Hypothesis draws cells near and inside each form.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.departments import DEPARTMENTS
from consumers.kit.customer_records import (
    _PERSON_RULES,
    CustomerRecordsError,
    CustomerRegister,
    RegisterColumn,
    load_customer_records,
)
from consumers.kit.frames import NORMAL_FORMS
from consumers.runtime import SqliteStore
from schemas.identifiers import nhs_check_digit, normalise_nhs_number
from tests.support.customer_rows import row

REGISTERS: list[CustomerRegister] = [
    DEPARTMENTS[name].records.register for name in DEPARTMENTS if name != "suppression"
]
SHORTCUTS: list[RegisterColumn] = [
    column
    for column in (*_PERSON_RULES, *(column for register in REGISTERS for column in register.columns))
    if column.already is not None
]

_NEAR = st.one_of(
    st.from_regex(r"\A[A-Z]{2}[0-9]{6}[A-E]\Z"),  # NINO-shaped, some prefixes and suffixes refused
    st.from_regex(r"\A[A-Z9]{5}[0-9]{6}[A-Z9]{2}[0-9][A-Z0-9]{2}\Z"),  # driving-licence shaped, any month
    st.from_regex(r"\A[0-9]{8,10}\Z"),
    st.from_regex(r"\A[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}\Z"),  # postcode shaped
    st.from_regex(r"\A([A-Z0-9 ]{1,9}:[0-9]{4}-[0-9]{2}-[0-9]{2};?){1,3}\Z"),  # vehicles shaped, any date
    st.sampled_from(["", " ", "\x1c", "AB123456C ", " AB123456C", "ab123456c", "0000-01-01", "GB123456A", "MP 1AA"]),
    st.text(max_size=20),
)


@settings(max_examples=400, deadline=None)
@given(cells=st.lists(_NEAR, min_size=1, max_size=30))
def test_a_shortcut_only_marks_cells_its_rule_stores_as_the_shortcut_does(cells: list[str]) -> None:
    frame = pl.DataFrame({"cell": cells}, schema={"cell": pl.String})
    for column in SHORTCUTS:
        assert column.already is not None
        marked = frame.select(column.already(pl.col("cell")).fill_null(False))["cell"].to_list()
        shortcut = column.as_stored or (lambda cell: cell)
        stored = frame.select(shortcut(pl.col("cell")))["cell"].to_list()
        for cell, already, as_stored in zip(cells, marked, stored, strict=True):
            if already:
                assert column.rule(cell) == as_stored, (column.name, cell)


@settings(max_examples=400, deadline=None)
@given(cells=st.lists(st.one_of(_NEAR, st.from_regex(r"\A[0-9]{10}\Z")), min_size=1, max_size=30))
def test_a_normal_form_only_marks_cells_its_normaliser_returns_unchanged(cells: list[str]) -> None:
    frame = pl.DataFrame({"cell": cells}, schema={"cell": pl.String})
    for normalise, normal in NORMAL_FORMS.items():
        marked = frame.select(normal(pl.col("cell")).fill_null(False))["cell"].to_list()
        for cell, already in zip(cells, marked, strict=True):
            if already:
                assert normalise(cell) == cell, (normalise.__name__, cell)


def test_valid_nhs_numbers_are_in_normal_form() -> None:
    numbers = [f"{n:09d}" for n in range(400_000_000, 400_002_000)]
    valid = [first + str(check) for first in numbers if (check := nhs_check_digit(first)) is not None]
    frame = pl.DataFrame({"cell": valid})
    assert all(frame.select(NORMAL_FORMS[normalise_nhs_number](pl.col("cell")))["cell"].to_list())


def test_shortcuts_cover_the_columns_with_a_value_per_row() -> None:
    names = {column.name for column in SHORTCUTS}
    assert {"postcode", "record_id", "nino", "driving_licence_number", "passport_number", "vehicles"} <= names


@pytest.fixture
def tax_store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "tax.sqlite3", DEPARTMENTS["tax"].schema)


def test_the_first_bad_row_is_named_by_line_and_first_broken_rule(tax_store: SqliteStore) -> None:
    rows = [row("tax", f"T{n}") for n in range(3000)]
    rows[2500] = row("tax", "T2500", nino="QQ123456C", marital_status="SECRETLY WED")  # two rules broken
    rows[2700] = row("tax", "T2700", postcode="NOT A POSTCODE")
    with pytest.raises(CustomerRecordsError) as raised:
        load_customer_records(tax_store, DEPARTMENTS["tax"], rows)
    message = str(raised.value)
    assert message.startswith("line 2502: marital_status must be one of SINGLE, MARRIED")
    assert "SECRETLY" not in message and "QQ123456C" not in message
    assert int(tax_store.read().scalar("SELECT COUNT(*) FROM taxpayers")) == 0


def test_a_person_rule_comes_before_the_department_rules_of_the_same_row(tax_store: SqliteStore) -> None:
    rows = [row("tax", "T1", self_assessment="perhaps", address_line_1=" ", date_of_birth="3/11/1941")]
    with pytest.raises(CustomerRecordsError, match=r"^line 2: address_line_1 is required$"):
        load_customer_records(tax_store, DEPARTMENTS["tax"], rows)
    rows = [row("tax", "T1", self_assessment="perhaps", date_of_birth="3/11/1941")]
    with pytest.raises(CustomerRecordsError, match=r"^line 2: date_of_birth must be a date \(YYYY-MM-DD\)$"):
        load_customer_records(tax_store, DEPARTMENTS["tax"], rows)


def test_a_row_lacking_a_column_is_refused_by_its_line(tax_store: SqliteStore) -> None:
    rows = [row("tax", "T1"), {k: v for k, v in row("tax", "T2").items() if k != "town"}]
    with pytest.raises(CustomerRecordsError, match=r"^line 3: missing column\(s\) town$"):
        load_customer_records(tax_store, DEPARTMENTS["tax"], rows)


def test_cells_are_stored_as_their_rules_give_them(tax_store: SqliteStore) -> None:
    untidy = row(
        "tax",
        " T1 ",
        nino="ab 12 34 56 c",
        postcode="ls13ad",
        given_names=" Margaret Anne ",
        family_name="O'Brien",
        self_assessment="YES",
        address_line_1=" ",
        address_line_2=" 1 Park Row ",
        date_of_birth="19411103",
    )
    assert load_customer_records(tax_store, DEPARTMENTS["tax"], [untidy]) == 1
    stored = tax_store.read().select(
        ("taxpayer_id", "nino", "postcode", "postcode_key", "name_key", "self_assessment", "address", "date_of_birth"),
        "FROM taxpayers",
    )
    assert dict(stored[0]) == {
        "taxpayer_id": "T1",
        "nino": "AB123456C",
        "postcode": "LS1 3AD",
        "postcode_key": "LS13AD",
        "name_key": "obrien|margaret",
        "self_assessment": 1,
        "address": "1 Park Row",
        "date_of_birth": "1941-11-03",
    }
