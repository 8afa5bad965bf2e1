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

import csv
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from pathlib import Path

from consumers.runtime import Store
from consumers.suppression.records import Listing, SuppressionList
from schemas.identifiers import normalise_nhs_number, normalise_nino

__all__ = ["REQUIRED_COLUMNS", "Action", "Decision", "MailingSummary", "Recipient", "decide", "filter_mailing"]

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
        differs = {
            "name_dob": "postcode differs",
            "dob_postcode": "name differs",
            "name_postcode": "no date of birth to compare",
        }.get(first.matched_by, "partial match")
        return Decision(Action.HOLD, first.matched_by, f"possible match: {_describe(first)}; {differs}")
    if recipient.problems:
        return Decision(Action.HOLD, "", "cannot check: " + "; ".join(recipient.problems))
    return Decision(Action.SEND)


def _optional(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def recipient_from_row(row: dict[str, str]) -> Recipient:
    """A recipient from one CSV row; unreadable fields are noted (by rule, not value) instead of failing the run."""
    problems: list[str] = []
    birth: date | None = None
    if raw_birth := _optional(row.get("date_of_birth")):
        try:
            birth = date.fromisoformat(raw_birth)
        except ValueError:
            problems.append("date_of_birth is not a date (YYYY-MM-DD)")
    nino = nhs = None
    if raw_nino := _optional(row.get("nino")):
        try:
            nino = normalise_nino(raw_nino)
        except ValueError as exc:
            problems.append(f"nino: {exc}")
    if raw_nhs := _optional(row.get("nhs_number")):
        try:
            nhs = normalise_nhs_number(raw_nhs)
        except ValueError as exc:
            problems.append(f"nhs_number: {exc}")
    return Recipient(
        recipient_id=(row.get("recipient_id") or "").strip(),
        given_names=(row.get("given_names") or "").strip(),
        family_name=(row.get("family_name") or "").strip(),
        date_of_birth=birth,
        postcode=_optional(row.get("postcode")),
        nino=nino,
        nhs_number=nhs,
        problems=tuple(problems),
    )


def _rows(path: Path) -> Iterator[tuple[list[str], dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = list(reader.fieldnames or [])
        missing = [column for column in REQUIRED_COLUMNS if column not in columns]
        if missing:
            raise ValueError(f"{path.name}: missing column(s) {', '.join(missing)}; need {', '.join(REQUIRED_COLUMNS)}")
        for row in reader:
            yield columns, row


def filter_mailing(
    store: Store,
    recipients: Path,
    sendable: Path,
    report: Path,
    on_progress: Callable[[int], None] | None = None,
) -> MailingSummary:
    """Write the sendable rows of ``recipients`` (all columns kept) to ``sendable`` and the rest to ``report``."""
    summary = MailingSummary()
    records = SuppressionList(store.read())
    sendable.parent.mkdir(parents=True, exist_ok=True)
    report.parent.mkdir(parents=True, exist_ok=True)
    with sendable.open("w", newline="", encoding="utf-8") as out, report.open("w", newline="", encoding="utf-8") as rep:
        report_writer = csv.writer(rep)
        report_writer.writerow(REPORT_COLUMNS)
        send_writer: csv.DictWriter[str] | None = None
        for columns, row in _rows(recipients):
            if send_writer is None:
                send_writer = csv.DictWriter(out, fieldnames=columns)
                send_writer.writeheader()
            decision = decide(records, recipient_from_row(row))
            summary.recipients += 1
            summary.actions[decision.action] += 1
            if decision.action is Action.SEND:
                send_writer.writerow(row)
            else:
                summary.matched_by[decision.matched_by or "unreadable"] += 1
                report_writer.writerow(
                    (row.get("recipient_id", ""), decision.action.value, decision.matched_by, decision.reason)
                )
            if on_progress is not None:
                on_progress(1)
    return summary
