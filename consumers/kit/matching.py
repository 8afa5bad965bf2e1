"""Matching people named in an event to a department's own records, never by guess.

Departments match on their own identifier first (NINO, driving licence number, passport number); failing that on a
name key + date of birth + postcode. The name key is the casefolded family name and first given name with accents,
punctuation and spaces removed, so "O'Brien" and "OBRIEN", "José" and "Jose" meet.

A match is either one record (safe to apply), candidates for a person to choose between, or nothing. Candidates
are ambiguous (several records fit) or partial: name and date of birth fit but the postcode differs (a move); date
of birth and postcode fit under another name (a misspelling); name and postcode fit but the date of birth differs
(a wrong date in the entry, or a father and son of one name at one address: exactly what a person must look at).
Notes name the rule, never the person.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from consumers.runtime import Result, Transaction
from schemas.models import Identifiers, Person

__all__ = [
    "IdentifierColumn",
    "KnownPerson",
    "Match",
    "PersonTable",
    "match_person",
    "matching_indexes",
    "name_key",
    "postcode_key",
]


def _letters(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return re.sub(r"[^a-z]", "", "".join(c for c in decomposed if not unicodedata.combining(c)).casefold())


def name_key(given_names: str, family_name: str) -> str:
    """``family|first-given-name`` in plain lower-case letters."""
    first_given = given_names.split(maxsplit=1)[0] if given_names.split() else ""
    return f"{_letters(family_name)}|{_letters(first_given)}"


def postcode_key(postcode: str | None) -> str | None:
    """Upper case without spaces (formats differ between systems)."""
    if not postcode:
        return None
    return re.sub(r"\s+", "", postcode).upper()


def matching_indexes(table: str) -> str:
    """The indexes ``PersonTable``'s lookups need, as DDL for a department's schema (its identifier's is its own)."""
    return "".join(
        f"CREATE INDEX IF NOT EXISTS {table}_{name} ON {table} ({columns});\n"
        for name, columns in (
            ("name_birth", "name_key, date_of_birth"),
            ("birth_postcode", "date_of_birth, postcode_key"),
            ("name_postcode", "name_key, postcode_key"),
        )
    )


IdentifierColumn = tuple[str, Callable[[Identifiers], str | None]]
"""A department's own identifier: its column, and how to read it from an event's identifiers."""


@dataclass(frozen=True)
class KnownPerson:
    """One of a department's records as matching sees it (personal data: never logged)."""

    record_id: str
    identifier: str | None
    name_key: str
    date_of_birth: date | None
    postcode: str | None


@dataclass(frozen=True)
class Match:
    """One record that is safely the person, candidates a reviewer must choose between, or nothing."""

    record_id: str | None = None
    matched_by: str = ""
    candidates: tuple[str, ...] = ()
    reason: str = ""

    @property
    def needs_review(self) -> bool:
        """Ambiguous or partial: a person decides."""
        return self.record_id is None and bool(self.candidates)

    def unresolved(self, about: str = "") -> Result:
        """The outcome when no single record matched: queued for review, or no matching record."""
        note = f"{about}: {self.reason}" if about else self.reason
        if self.needs_review:
            return Result.needs_review(note, self.candidates)
        return Result.no_matching_record(note)


class PersonTable:
    """Matching lookups over one department table.

    The table has its own key column, optionally the department's identifier column, and ``name_key``,
    ``date_of_birth`` (ISO text) and ``postcode_key`` columns filled with this module's keys. Table and column
    names are constants of the department's module, never input.
    """

    def __init__(
        self,
        transaction: Transaction,
        table: str,
        key: str,
        identifier: IdentifierColumn | None = None,
    ) -> None:
        self._tx = transaction
        self._table = table
        self._key = key
        self.identifier_name = identifier[0] if identifier else ""
        self._identifier_of = identifier[1] if identifier else None
        ident = identifier[0] if identifier else "NULL"
        self._columns = (f"{key} AS record_id", f"{ident} AS identifier", "name_key", "date_of_birth", "postcode_key")

    def identifier_of(self, person: Person) -> str | None:
        """The department's own identifier as the event gives it, if it does."""
        return self._identifier_of(person.identifiers) if self._identifier_of else None

    def _rows(self, where: str, params: Sequence[str]) -> list[KnownPerson]:
        rows = self._tx.select(self._columns, f"FROM {self._table} WHERE {where} ORDER BY {self._key}", params)
        return [
            KnownPerson(
                row.text("record_id"),
                row.optional_text("identifier"),
                row.text("name_key"),
                row.optional_day("date_of_birth"),
                row.optional_text("postcode_key"),
            )
            for row in rows
        ]

    def with_identifier(self, value: str) -> list[KnownPerson]:
        """Records holding the department's identifier ``value``."""
        if not self.identifier_name:
            return []
        return self._rows(f"{self.identifier_name} = ?", (value,))

    def with_name_and_birth(self, key: str, born: date) -> list[KnownPerson]:
        """Records with this name key and date of birth."""
        return self._rows("name_key = ? AND date_of_birth = ?", (key, born.isoformat()))

    def with_name_and_postcode(self, key: str, postcode: str) -> list[KnownPerson]:
        """Records with this name key at this postcode (any date of birth)."""
        return self._rows("name_key = ? AND postcode_key = ?", (key, postcode))

    def with_birth_and_postcode(self, born: date, postcode: str) -> list[KnownPerson]:
        """Records with this date of birth at this postcode (under any name)."""
        return self._rows("date_of_birth = ? AND postcode_key = ?", (born.isoformat(), postcode))

    def get(self, record_id: str) -> KnownPerson | None:
        """One record by its key."""
        found = self._rows(f"{self._key} = ?", (record_id,))
        return found[0] if found else None


def _ids(people: Sequence[KnownPerson]) -> tuple[str, ...]:
    return tuple(person.record_id for person in people)


def match_person(people: PersonTable, person: Person) -> Match:
    """Find ``person`` in ``people``: by identifier, then names + date of birth + postcode; never by guess."""
    identifier = people.identifier_of(person)
    kind = people.identifier_name
    if identifier:
        by_identifier = people.with_identifier(identifier)
        if len(by_identifier) == 1:
            return Match(by_identifier[0].record_id, kind)
        if by_identifier:
            return Match(
                candidates=_ids(by_identifier), reason=f"ambiguous: {len(by_identifier)} records share the {kind}"
            )
    key = name_key(person.given_names, person.family_name)
    postcode = postcode_key(person.address.postcode if person.address else None)
    born = person.date_of_birth
    if born is None:
        return _same_name_and_address(people, key, postcode, "the entry has no date of birth")
    named = people.with_name_and_birth(key, born)
    exact = [known for known in named if postcode is not None and known.postcode == postcode]
    if len(exact) > 1:
        return Match(
            candidates=_ids(exact), reason=f"ambiguous: {len(exact)} records match name, date of birth and postcode"
        )
    if exact:
        only = exact[0]
        if identifier and only.identifier and only.identifier != identifier:
            # Someone else with the same details, or a mistyped number: a person looks.
            return Match(
                candidates=(only.record_id,), reason=f"partial: name, date of birth and postcode match, {kind} differs"
            )
        return Match(only.record_id, "name_dob_postcode")
    if named:
        differs = "postcode differs" if postcode else "the entry has no address"
        return Match(candidates=_ids(named), reason=f"partial: name and date of birth match, {differs}")
    if postcode is not None:
        alike = people.with_birth_and_postcode(born, postcode)
        if alike:
            return Match(candidates=_ids(alike), reason="partial: date of birth and postcode match, name differs")
    return _same_name_and_address(people, key, postcode, "date of birth differs")


def _same_name_and_address(people: PersonTable, key: str, postcode: str | None, differs: str) -> Match:
    """The last resort: the same name at the same postcode is for a person to judge, never applied."""
    if postcode is not None:
        housemates = people.with_name_and_postcode(key, postcode)
        if housemates:
            return Match(candidates=_ids(housemates), reason=f"partial: name and postcode match, {differs}")
    return Match(reason="no record matches")
