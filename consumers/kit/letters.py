"""Scheduled correspondence: the letters due in a run, and never one to a person known to have died.

Each department has its own schedule (tax return reminders, pension statements, licence and passport renewal
reminders, poll cards): its ``letters_due`` lists the letters falling due in the run's days and marks those whose
addressee its own records say has died. This runner holds back, most certain first:

1. letters the department's own records say would go to a person who died;
2. letters to a record that a registered death may be about, while that death waits for a reviewer in the
   department's review queue (it could not be matched safely, so it has not been applied yet);
3. letters the letter-suppression service suppresses (a registered death matches the addressee) or holds (a
   possible match, for a person to look at);

and writes the rest as the print file. The report of what was held back names letters by record id, kind and due
date only: no names, no addresses.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TypeVar

from consumers.runtime import Department, Store, Transaction
from consumers.runtime.review_queue import open_reviews
from consumers.runtime.store import NamedRow
from consumers.suppression import Action, Recipient, SuppressionList, decide
from schemas.models import EntryReference
from schemas.topics import Register

__all__ = [
    "LETTER_COLUMNS",
    "REPORT_COLUMNS",
    "HeldLetter",
    "LetterSchedule",
    "LettersDue",
    "LettersRun",
    "ScheduledLetter",
    "run_letters",
]

LETTER_COLUMNS = (
    "letter_id",
    "department",
    "kind",
    "due_on",
    "record_id",
    "given_names",
    "family_name",
    "address_line_1",
    "address_line_2",
    "town",
    "postcode",
)
REPORT_COLUMNS = ("record_id", "kind", "due_on", "held_by", "reason")


@dataclass(frozen=True)
class ScheduledLetter:
    """A letter a department's schedule says is due, before anyone checks whether its addressee died."""

    record_id: str
    kind: str
    due_on: date
    given_names: str
    family_name: str
    date_of_birth: date | None
    address: tuple[str, ...]
    town: str
    postcode: str
    nino: str | None = None
    deceased: str = ""
    """Why the department's own records say the addressee died ('' when they do not); no personal data."""
    reference: str = ""
    """What the letter is about when a person gets several of one kind (a vehicle's registration mark)."""


_ADDRESSEE = ("given_names", "family_name", "date_of_birth", "address", "town", "postcode")
"""The person columns a letter needs (all in every department table: ``customer_records.STORED_PERSON_COLUMNS``)."""


@dataclass(frozen=True)
class LetterSchedule:
    """One kind of letter a department sends, as a query over its tables (names are constants, never input).

    A letter is due ``notice`` before the date in column ``due`` of ``source`` (a table, or tables joined), to the
    record in column ``record_id``. The addressee is the row of the person's table (alias ``person`` in a join);
    ``nino`` and ``reference`` name the columns those come from, if any; ``also`` are more columns the rule reads.
    """

    kind: str
    source: str
    record_id: str
    due: str
    notice: timedelta = timedelta(0)
    person: str = ""
    also: tuple[str, ...] = ()
    where: str = ""
    order: str = ""
    nino: str = ""
    reference: str = ""

    def due_in(self, transaction: Transaction, first: date, last: date) -> Iterator[tuple[ScheduledLetter, NamedRow]]:
        """The letters due in [first, last], in due order, each with its row (``also`` columns by name)."""
        qualified = f"{self.person}." if self.person else ""
        columns = [
            f"{self.record_id} AS letter_record_id",
            f"{self.due} AS letter_due",
            f"{self.nino or 'NULL'} AS letter_nino",
            f"{self.reference or 'NULL'} AS letter_reference",
            *self.also,
            *(f"{qualified}{column}" for column in _ADDRESSEE),
        ]
        condition = f"{self.where} AND " if self.where else ""
        order = self.order or f"{self.due}, {self.record_id}"
        rows = transaction.select(
            columns,
            f"FROM {self.source} WHERE {condition}{self.due} BETWEEN ? AND ? ORDER BY {order}",
            ((first + self.notice).isoformat(), (last + self.notice).isoformat()),
        )
        for row in rows:
            letter = ScheduledLetter(
                record_id=row.text("letter_record_id"),
                kind=self.kind,
                due_on=row.day("letter_due") - self.notice,
                given_names=row.text("given_names"),
                family_name=row.text("family_name"),
                date_of_birth=row.optional_day("date_of_birth"),
                address=tuple(row.text("address").split("\n")),
                town=row.text("town"),
                postcode=row.text("postcode"),
                nino=row.optional_text("letter_nino"),
                reference=row.optional_text("letter_reference") or "",
            )
            yield letter, row


RecordsT = TypeVar("RecordsT")
LettersDue = Callable[[RecordsT, date, date], Iterable[ScheduledLetter]]
"""A department's schedule: (its records, first day, last day) -> the letters due in those days."""


@dataclass(frozen=True)
class HeldLetter:
    """A letter not sent, and why (no personal data)."""

    record_id: str
    kind: str
    due_on: date
    held_by: str
    reason: str


@dataclass
class LettersRun:
    """What a letters run did."""

    department: str
    first_day: date
    last_day: date
    due: int = 0
    sent: Counter[str] = field(default_factory=Counter)
    """Letters written to the print file, by kind."""
    held: list[HeldLetter] = field(default_factory=list)

    @property
    def held_reasons(self) -> Counter[tuple[str, str]]:
        """Held letters per (held by, reason)."""
        return Counter((letter.held_by, letter.reason) for letter in self.held)


def _awaiting_review(store: Store) -> set[str]:
    """Records that an unreviewed death may be about (the candidates of open death reviews)."""
    return {
        candidate
        for item in open_reviews(store)
        if EntryReference.register_of_key(item.entry_key) is Register.DEATH
        for candidate in item.candidates
    }


def _suppression_check(suppression: SuppressionList, letter: ScheduledLetter) -> tuple[str, str] | None:
    """(held by, reason) when the suppression service stops this letter, else None."""
    decision = decide(
        suppression,
        Recipient(
            recipient_id=letter.record_id,
            given_names=letter.given_names,
            family_name=letter.family_name,
            date_of_birth=letter.date_of_birth,
            postcode=letter.postcode,
            nino=letter.nino,
        ),
    )
    if decision.action is Action.SUPPRESS:
        return "suppression service", f"death registered (matched by {decision.matched_by})"
    if decision.action is Action.HOLD:
        return "suppression service", f"possible match to a registered death ({decision.matched_by or 'unreadable'})"
    return None


def run_letters(
    department: Department[RecordsT],
    letters_due: LettersDue[RecordsT],
    store: Store,
    suppression: Store,
    *,
    first_day: date,
    days: int,
    out: Path,
    report: Path,
) -> LettersRun:
    """Write the sendable letters due from ``first_day`` for ``days`` days to ``out``; the held ones to ``report``."""
    if days < 1:
        raise ValueError("a letters run covers at least one day")
    last_day = first_day + timedelta(days=days - 1)
    run = LettersRun(department.name, first_day, last_day)
    records = department.records(store.read())
    awaiting_review = _awaiting_review(store)
    suppression_list = SuppressionList(suppression.read())
    out.parent.mkdir(parents=True, exist_ok=True)
    report.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as printed, report.open("w", newline="", encoding="utf-8") as rep:
        letters = csv.writer(printed, lineterminator="\n")
        letters.writerow(LETTER_COLUMNS)
        held = csv.writer(rep, lineterminator="\n")
        held.writerow(REPORT_COLUMNS)
        for letter in letters_due(records, first_day, last_day):
            run.due += 1
            stopped: tuple[str, str] | None = None
            if letter.deceased:
                stopped = ("department records", letter.deceased)
            elif letter.record_id in awaiting_review:
                stopped = ("review queue", "a registered death may be about this record; awaiting review")
            else:
                stopped = _suppression_check(suppression_list, letter)
            if stopped is not None:
                run.held.append(HeldLetter(letter.record_id, letter.kind, letter.due_on, *stopped))
                held.writerow((letter.record_id, letter.kind, letter.due_on.isoformat(), *stopped))
                continue
            run.sent[letter.kind] += 1
            letters.writerow(
                (
                    "-".join(
                        part
                        for part in (
                            department.name,
                            letter.kind,
                            letter.record_id,
                            letter.reference,
                            str(letter.due_on),
                        )
                        if part
                    ),
                    department.name,
                    letter.kind,
                    letter.due_on.isoformat(),
                    letter.record_id,
                    letter.given_names,
                    letter.family_name,
                    letter.address[0] if letter.address else "",
                    ", ".join(line for line in letter.address[1:] if line),
                    letter.town,
                    letter.postcode,
                )
            )
    return run
