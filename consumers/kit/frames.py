"""Whole-file work with polars: read a CSV as text, strip and check columns, name the first bad row.

Why: registers and mailing runs are files of a million rows; a Python loop per row takes minutes where a column at
a time takes seconds. The rules themselves stay the one Python function each (a date, a NINO, a name key): they are
applied once per *distinct* value (``mapped``) and joined back, so the answer for every row is exactly what the
function gives, and there is one definition of each rule, not a vectorised copy that could drift from it. The one
shortcut: a cell already in its normal form (``NORMAL_FORMS``: a valid NINO as a normaliser returns it, say) is
recognised by a column expression and skips the call; tests hold every shortcut to giving what its rule gives.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from consumers.kit.matching import name_key
from schemas.identifiers import (
    normalise_driving_licence_number,
    normalise_nhs_number,
    normalise_nino,
    normalise_passport_number,
    normalise_postcode,
)

__all__ = [
    "NORMAL_FORMS",
    "PY_WHITESPACE",
    "Checked",
    "first_failure",
    "frame_from_rows",
    "mapped",
    "name_keys",
    "read_text_csv",
    "stripped",
]

PY_WHITESPACE = "".join(chr(code) for code in range(0x110000) if chr(code).isspace())
"""Every character Python's ``str.strip()`` removes (it counts a few control characters Unicode does not)."""


class Checked:
    """What a rule gives for one distinct value: the value to store, or the rule it broke (never the value)."""

    __slots__ = ("error", "value")

    def __init__(self, value: Any = None, error: str | None = None) -> None:
        self.value = value
        self.error = error


def read_text_csv(path: Path) -> pl.DataFrame:
    """Every column as text, empty cells (and cells a short row lacks) as ``""``; ValueError names the file only."""
    try:
        frame = pl.read_csv(path, infer_schema=False, empty_string_is_null=False, encoding="utf8")
    except pl.exceptions.NoDataError:
        return pl.DataFrame()
    except (pl.exceptions.ComputeError, pl.exceptions.PolarsError) as exc:
        # polars' text can quote a line of the file (personal data): say only what kind of failure it was.
        raise ValueError(f"{path.name}: not a readable UTF-8 CSV file ({type(exc).__name__})") from None
    return frame.with_columns(pl.all().fill_null(""))


def frame_from_rows(rows: Sequence[dict[str, str]] | list[Any], columns: Sequence[str]) -> pl.DataFrame:
    """Rows already in memory (mappings) as a text frame of ``columns``; absent or None cells become ``""``."""
    return pl.DataFrame(
        {column: [(row.get(column) or "") for row in rows] for column in columns},
        schema=dict.fromkeys(columns, pl.String),
    )


def stripped(column: str) -> pl.Expr:
    """The column with surrounding whitespace removed, as Python's ``str.strip()`` does it."""
    return pl.col(column).str.strip_chars(PY_WHITESPACE)


def mapped(
    values: pl.Series,
    rule: Callable[[str], Checked],
    dtype: pl.DataType,
    *,
    already: pl.Series | None = None,
    as_stored: pl.Series | None = None,
) -> tuple[pl.Series, pl.Series]:
    """``rule`` applied once per distinct value of ``values``; returns (stored value, error) per row.

    ``already`` marks rows whose value is known to pass as it is (its stored form is ``as_stored``, or the value
    itself): the rule is not called for them. It must only mark values for which the rule would give that form.
    """
    if already is None:
        already = pl.Series([False] * len(values), dtype=pl.Boolean)
    distinct = values.filter(~already).unique(maintain_order=False)
    results = [rule(value) for value in distinct.to_list()]
    lookup = pl.DataFrame(
        {
            "raw": distinct,
            "value": pl.Series([result.value for result in results], dtype=dtype),
            "error": pl.Series([result.error for result in results], dtype=pl.String),
        }
    )
    rows = pl.DataFrame({"raw": values, "already": already, "as_stored": values if as_stored is None else as_stored})
    joined = rows.join(lookup, on="raw", how="left", maintain_order="left").select(
        pl.when(pl.col("already"))
        .then(pl.col("as_stored").cast(dtype, strict=False))
        .otherwise(pl.col("value"))
        .alias("value"),
        pl.when(pl.col("already")).then(pl.lit(None, pl.String)).otherwise(pl.col("error")).alias("error"),
    )
    return joined["value"], joined["error"]


def first_failure(errors: Sequence[pl.Series]) -> tuple[int, str] | None:
    """The first row with an error and that row's first error, checks taken in the order given; None if clean."""
    if not errors:
        return None
    table = pl.DataFrame({f"e{index}": series for index, series in enumerate(errors)})
    failing = table.with_row_index("row").filter(pl.any_horizontal(pl.all().exclude("row").is_not_null()))
    if failing.is_empty():
        return None
    first = failing.row(0, named=True)
    message = next(first[f"e{index}"] for index in range(len(errors)) if first[f"e{index}"] is not None)
    return int(first["row"]), str(message)


def name_keys(given_names: pl.Series, family_names: pl.Series) -> pl.Series:
    """``matching.name_key`` of each row's names, worked out once per distinct given name and family name."""
    family, _ = mapped(family_names, lambda name: Checked(name_key("", name)[:-1]), pl.String())
    given, _ = mapped(given_names, lambda names: Checked(name_key(names, "")[1:]), pl.String())
    return family + "|" + given


def _nhs_number_as_is(cell: pl.Expr) -> pl.Expr:
    """Ten digits whose last is the modulus 11 check digit of the first nine (an 11 counts as 0; a 10 never)."""
    digits = [cell.str.slice(index, 1).cast(pl.Int64, strict=False) for index in range(10)]
    total = pl.sum_horizontal(digit * (10 - index) for index, digit in enumerate(digits[:9]))
    check = 11 - total % 11
    return (
        cell.str.contains(r"^[0-9]{10}$") & (check != 10) & (pl.when(check == 11).then(0).otherwise(check) == digits[9])
    )


NORMAL_FORMS: dict[Callable[[str], str], Callable[[pl.Expr], pl.Expr]] = {
    normalise_nino: lambda cell: (
        cell.str.contains(r"^[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z][0-9]{6}[A-D]$")
        & ~cell.str.slice(0, 2).is_in(["BG", "GB", "KN", "NK", "NT", "TN", "ZZ"])
    ),
    normalise_nhs_number: _nhs_number_as_is,
    normalise_driving_licence_number: lambda cell: cell.str.contains(
        r"^[A-Z9]{5}[0-9](0[1-9]|1[0-2]|5[1-9]|6[0-2])[0-9]{3}[A-Z9]{2}[0-9][A-Z0-9]{2}$"
    ),
    normalise_passport_number: lambda cell: cell.str.contains(r"^[0-9]{9}$"),
    normalise_postcode: lambda cell: cell.str.contains(
        r"^(GIR 0AA|[A-PR-UWYZ]([0-9]{1,2}|[A-HK-Y][0-9]{1,2}|[0-9][A-HJKPSTUW]|[A-HK-Y][0-9][ABEHMNPRVWXY]) "
        r"[0-9][ABD-HJLNP-UW-Z]{2})$"
    ),
}
"""Cells each normaliser would return unchanged (already in normal form, and valid): the common case, which then
needs no Python call per value. tests/unit/test_register_rules.py holds each to its normaliser."""
