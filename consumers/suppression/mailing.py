"""Mailing-run filter: a file of recipients in, the sendable ones out, and a report of what was held back and why.

Decisions, most certain first:

- **suppress**: the recipient matches a registered death exactly (NINO, NHS number, or name + date of birth +
  postcode);
- **hold**: the recipient might be a deceased person (same name and date of birth at another postcode, or same
  date of birth and postcode under another name, as when an entry is misspelt and not yet corrected), or a row
  is too damaged to check; a person looks at it before anything is sent;
- **send**: no death on record matches.

The report names recipients by ``recipient_id`` only; it does not repeat names or identifiers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any

import polars as pl

from consumers.kit.frames import NORMAL_FORMS, Checked, mapped, name_keys, read_text_csv, stripped
from consumers.kit.matching import postcode_key
from consumers.runtime import Store, Transaction
from consumers.suppression.records import Listing, SuppressionList
from schemas.identifiers import normalise_nhs_number, normalise_nino

__all__ = [
    "REQUIRED_COLUMNS",
    "Action",
    "Decision",
    "MailingSummary",
    "Recipient",
    "decide",
    "decide_all",
    "filter_mailing",
]

REQUIRED_COLUMNS = ("recipient_id", "given_names", "family_name", "date_of_birth", "postcode")
REPORT_COLUMNS = ("recipient_id", "action", "matched_by", "reason")


class Action(StrEnum):
    """What the mailing run does with one recipient."""

    SEND = "send"
    SUPPRESS = "suppress"
    HOLD = "hold"


@dataclass(frozen=True)
class Recipient:
    """Who a letter is for, as a department's mailing system knows them."""

    recipient_id: str
    given_names: str
    family_name: str
    date_of_birth: date | None
    postcode: str | None
    nino: str | None = None
    nhs_number: str | None = None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    """The action for one recipient and why."""

    action: Action
    matched_by: str = ""
    reason: str = ""


@dataclass
class MailingSummary:
    """Counts of a mailing run."""

    recipients: int = 0
    actions: Counter[Action] = field(default_factory=Counter)
    matched_by: Counter[str] = field(default_factory=Counter)


_DIFFERS = {
    "name_dob": "postcode differs",
    "dob_postcode": "name differs",
    "name_postcode": "no date of birth to compare",
}
"""What a partial match leaves unconfirmed, by the rule that found it."""


def _describe(listing: Listing) -> str:
    return (
        f"death registered in {listing.year_of_registration} in {listing.registration_district} "
        f"({listing.sub_district}), register {listing.register_number}, entry {listing.entry_number}, "
        f"date of death {listing.date_of_death.isoformat()}"
    )


def decide(records: SuppressionList, recipient: Recipient) -> Decision:
    """Suppress, hold or send one recipient."""
    exact, partial = records.find(
        nino=recipient.nino,
        nhs_number=recipient.nhs_number,
        given_names=recipient.given_names,
        family_name=recipient.family_name,
        date_of_birth=recipient.date_of_birth,
        postcode=recipient.postcode,
    )
    if exact is not None:
        return Decision(Action.SUPPRESS, exact.matched_by, _describe(exact))
    if partial:
        first = partial[0]
        differs = _DIFFERS.get(first.matched_by, "partial match")
        return Decision(Action.HOLD, first.matched_by, f"possible match: {_describe(first)}; {differs}")
    if recipient.problems:
        return Decision(Action.HOLD, "", "cannot check: " + "; ".join(recipient.problems))
    return Decision(Action.SEND)


def _optional(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def _birth(raw: str | None) -> tuple[date | None, str | None]:
    """The date of birth, or the rule it breaks."""
    if raw_birth := _optional(raw):
        try:
            return date.fromisoformat(raw_birth), None
        except ValueError:
            return None, "date_of_birth is not a date (YYYY-MM-DD)"
    return None, None


def _identifier(raw: str | None, column: str, normalise: Callable[[str], str]) -> tuple[str | None, str | None]:
    """A normalised identifier, or the rule it breaks (prefixed with its column)."""
    if value := _optional(raw):
        try:
            return normalise(value), None
        except ValueError as exc:
            return None, f"{column}: {exc}"
    return None, None


def recipient_from_row(row: dict[str, str]) -> Recipient:
    """A recipient from one CSV row; unreadable fields are noted (by rule, not value) instead of failing the run."""
    birth, birth_problem = _birth(row.get("date_of_birth"))
    nino, nino_problem = _identifier(row.get("nino"), "nino", normalise_nino)
    nhs, nhs_problem = _identifier(row.get("nhs_number"), "nhs_number", normalise_nhs_number)
    return Recipient(
        recipient_id=(row.get("recipient_id") or "").strip(),
        given_names=(row.get("given_names") or "").strip(),
        family_name=(row.get("family_name") or "").strip(),
        date_of_birth=birth,
        postcode=_optional(row.get("postcode")),
        nino=nino,
        nhs_number=nhs,
        problems=tuple(problem for problem in (birth_problem, nino_problem, nhs_problem) if problem),
    )


# The whole file at once ------------------------------------------------------------------------------------------
#
# ``decide_all`` gives, for every row of a mailing file, the decision ``decide(records, recipient_from_row(row))``
# gives (tests/unit/test_mailing_filter_equivalence.py holds it to that on generated awkward data), as joins of the
# file against the list instead of several queries per recipient: each lookup of ``SuppressionList.find`` becomes
# a join against the list grouped by that lookup's columns, keeping the first entry in the list's own order (the
# ``ORDER BY entry_key`` of the store's collation, read once), and the field rules run once per distinct value.

_LISTED = (
    "entry_key",
    "name_key",
    "date_of_birth",
    "postcode",
    "nino",
    "nhs_number",
    "registration_district",
    "sub_district",
    "register_number",
    "entry_number",
    "year_of_registration",
    "date_of_death",
)
_LOOKUPS = {
    "nino": ("nino",),
    "nhs_number": ("nhs_number",),
    "name_dob_postcode": ("name_key", "date_of_birth", "postcode"),
    "name_dob": ("name_key", "date_of_birth"),
    "dob_postcode": ("date_of_birth", "postcode"),
    "name_postcode": ("name_key", "postcode"),
}
"""Each lookup ``SuppressionList.find`` makes: its ``matched_by`` and the list columns it compares."""


def _listed(transaction: Transaction) -> pl.DataFrame:
    """The suppressed entries in the order ``find`` reads them, each with its rank in that order."""
    rows = transaction.execute(
        f"SELECT {', '.join(_LISTED)} FROM do_not_contact WHERE status = 'suppressed' ORDER BY entry_key"  # noqa: S608
    )
    schema: dict[str, type[pl.DataType]] = dict.fromkeys(_LISTED, pl.String)
    schema.update(register_number=pl.Int64, entry_number=pl.Int64, year_of_registration=pl.Int64)
    frame = pl.DataFrame([tuple(row) for row in rows], schema=schema, orient="row")
    return frame.with_row_index("rank")


def _column(frame: pl.DataFrame, name: str) -> pl.Series:
    return frame[name] if name in frame.columns else pl.Series(name, [""] * frame.height, dtype=pl.String)


def _recipient_keys(frame: pl.DataFrame) -> pl.DataFrame:
    """Per row, what ``recipient_from_row`` and ``find`` work out: names present, the keys, and the problems."""
    given = frame.select(stripped("given_names"))["given_names"]
    family = frame.select(stripped("family_name"))["family_name"]
    birth, birth_problem = mapped(
        _column(frame, "date_of_birth"),
        lambda raw: _as_checked(_birth(raw), lambda day: day.isoformat()),
        pl.String(),
    )
    nino, nino_problem = _identifiers(frame, "nino", normalise_nino)
    nhs, nhs_problem = _identifiers(frame, "nhs_number", normalise_nhs_number)
    postcodes = _column(frame, "postcode")
    plain = frame.select(  # letters, digits and spaces, at least one of the first two: its key is plain to see
        already=postcodes.str.contains(r"^[A-Za-z0-9 ]*[A-Za-z0-9][A-Za-z0-9 ]*$"),
        key=postcodes.str.replace_all(" ", "", literal=True).str.to_uppercase(),
    )
    wanted, _ = mapped(
        postcodes,
        lambda raw: Checked(postcode_key(_optional(raw))),
        pl.String(),
        already=plain["already"],
        as_stored=plain["key"],
    )
    return pl.DataFrame(
        {
            "has_names": (given != "") & (family != ""),
            "name_key": name_keys(given, family),
            "date_of_birth": birth,
            "postcode": wanted,
            "nino": nino,
            "nhs_number": nhs,
            "p1": birth_problem,
            "p2": nino_problem,
            "p3": nhs_problem,
        }
    )


def _identifiers(frame: pl.DataFrame, column: str, normalise: Callable[[str], str]) -> tuple[pl.Series, pl.Series]:
    """The column's identifiers normalised, and each row's problem; cells already in normal form skip the call."""
    cells = _column(frame, column)
    already = pl.DataFrame({"cell": cells}).select(NORMAL_FORMS[normalise](pl.col("cell")).fill_null(False))["cell"]
    return mapped(cells, lambda raw: _as_checked(_identifier(raw, column, normalise)), pl.String(), already=already)


def _as_checked(found: tuple[Any, str | None], store: Callable[[Any], Any] = lambda value: value) -> Checked:
    value, problem = found
    return Checked(None if value is None else store(value), problem)


def decide_all(transaction: Transaction, frame: pl.DataFrame) -> pl.DataFrame:
    """``action``, ``matched_by`` and ``reason`` for every row of ``frame`` (a mailing file, text columns).

    The rules are ``decide``'s, in its order: an identifier on the list suppresses; with names and a date of birth,
    name + date of birth + postcode suppresses, else name + date of birth, else date of birth + postcode holds;
    with names and a postcode but no date of birth, name + postcode holds; a row with a problem holds; the rest go.
    """
    listed = _listed(transaction)
    keys = _recipient_keys(frame)
    for matched_by, columns in _LOOKUPS.items():
        rank = pl.col("rank").min().alias(f"{matched_by}_rank")
        first = listed.drop_nulls(list(columns)).group_by(list(columns)).agg(rank)
        keys = keys.join(first, on=list(columns), how="left", maintain_order="left")
    born = pl.col("has_names") & pl.col("date_of_birth").is_not_null()
    postcode = pl.col("postcode").is_not_null()
    rules: list[tuple[pl.Expr, str | None, Action | None]] = [
        (pl.col("nino_rank").is_not_null(), "nino", Action.SUPPRESS),
        (pl.col("nhs_number_rank").is_not_null(), "nhs_number", Action.SUPPRESS),
        (born & postcode & pl.col("name_dob_postcode_rank").is_not_null(), "name_dob_postcode", Action.SUPPRESS),
        (born & pl.col("name_dob_rank").is_not_null(), "name_dob", Action.HOLD),
        (born & postcode & pl.col("dob_postcode_rank").is_not_null(), "dob_postcode", Action.HOLD),
        (born, None, None),  # with names and a date of birth, ``find`` looks no further
        (pl.col("has_names") & postcode & pl.col("name_postcode_rank").is_not_null(), "name_postcode", Action.HOLD),
    ]
    verdict: Any = pl
    matched: Any = pl
    ranked: Any = pl
    for condition, found_by, action in rules:
        verdict = verdict.when(condition).then(pl.lit(action.value if action else None, dtype=pl.String))
        matched = matched.when(condition).then(pl.lit(found_by, dtype=pl.String))
        ranked = ranked.when(condition).then(pl.col(f"{found_by}_rank") if found_by else pl.lit(None, pl.UInt32))
    has_problem = pl.any_horizontal(pl.col("p1", "p2", "p3").is_not_null())
    decided = keys.select(
        action=verdict.otherwise(pl.lit(None, dtype=pl.String)),
        matched_by=matched.otherwise(pl.lit(None, dtype=pl.String)),
        rank=ranked.otherwise(pl.lit(None, dtype=pl.UInt32)),
        problems=pl.concat_str(pl.col("p1", "p2", "p3"), separator="; ", ignore_nulls=True),
        has_problem=has_problem,
    )
    decided = decided.with_columns(
        action=pl.coalesce(
            pl.col("action"),
            pl.when(pl.col("has_problem")).then(pl.lit(Action.HOLD.value)).otherwise(pl.lit(Action.SEND.value)),
        ),
        matched_by=pl.col("matched_by").fill_null(""),
    )
    reasons = _reasons(listed, decided["rank"].drop_nulls().unique().to_list())
    decided = decided.join(reasons, on="rank", how="left", maintain_order="left")
    reason = (
        pl.when(pl.col("action") == Action.SUPPRESS.value)
        .then(pl.col("described"))
        .when(pl.col("rank").is_not_null())
        .then(pl.concat_str(pl.lit("possible match: "), pl.col("described"), pl.lit("; "), pl.col("differs")))
        .when(pl.col("action") == Action.HOLD.value)
        .then(pl.concat_str(pl.lit("cannot check: "), pl.col("problems")))
        .otherwise(pl.lit(""))
    )
    differs = pl.col("matched_by").replace_strict(_DIFFERS, default="partial match", return_dtype=pl.String)
    return decided.with_columns(differs=differs).select("action", "matched_by", reason.alias("reason"))


def _reasons(listed: pl.DataFrame, ranks: list[int]) -> pl.DataFrame:
    """``_describe`` of each listing a decision names (a few of the list, so a Python call each is cheap)."""
    chosen = listed.filter(pl.col("rank").is_in(ranks))
    described = [
        _describe(
            Listing(
                entry_key=str(row["entry_key"]),
                registration_district=str(row["registration_district"]),
                sub_district=str(row["sub_district"]),
                register_number=int(row["register_number"]),
                entry_number=int(row["entry_number"]),
                year_of_registration=int(row["year_of_registration"]),
                date_of_death=date.fromisoformat(str(row["date_of_death"])),
                status="suppressed",
                matched_by="",
            )
        )
        for row in chosen.iter_rows(named=True)
    ]
    return pl.DataFrame(
        {"rank": chosen["rank"], "described": pl.Series(described, dtype=pl.String)},
        schema={"rank": pl.UInt32, "described": pl.String},
    )


def filter_mailing(
    store: Store,
    recipients: Path,
    sendable: Path,
    report: Path,
    on_progress: Callable[[int], None] | None = None,
) -> MailingSummary:
    """Write the sendable rows of ``recipients`` (all columns kept) to ``sendable`` and the rest to ``report``."""
    frame = read_text_csv(recipients)
    missing = [column for column in REQUIRED_COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(
            f"{recipients.name}: missing column(s) {', '.join(missing)}; need {', '.join(REQUIRED_COLUMNS)}"
        )
    decided = decide_all(store.read(), frame)
    sendable.parent.mkdir(parents=True, exist_ok=True)
    report.parent.mkdir(parents=True, exist_ok=True)
    send = decided["action"] == Action.SEND.value
    if frame.height:
        _write_csv(frame.filter(send), sendable)
    else:
        sendable.write_text("", encoding="utf-8")  # as before: no rows, no header
    held = pl.DataFrame({"recipient_id": frame["recipient_id"]}).hstack(decided).filter(~send)
    _write_csv(held.select(REPORT_COLUMNS), report)
    summary = MailingSummary(recipients=frame.height)
    summary.actions.update({Action(action): count for action, count in decided["action"].value_counts().iter_rows()})
    for matched_by, count in held["matched_by"].value_counts().iter_rows():
        summary.matched_by[str(matched_by) or "unreadable"] += count
    if on_progress is not None:
        on_progress(frame.height)
    return summary


def _write_csv(frame: pl.DataFrame, path: Path) -> None:
    """CSV as Python's ``csv`` module writes it: CRLF, quotes only where needed, empty cells unquoted."""
    frame.with_columns(pl.all().cast(pl.String).replace("", None)).write_csv(path, line_terminator="\r\n")
