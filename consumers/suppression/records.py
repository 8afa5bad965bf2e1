"""The do-not-contact list, as the suppression service's rules and lookups see it.

One row per death entry (not per person): a duplicate entry voided later must not un-suppress someone whose other
entry stands. A row is ``suppressed`` or ``voided``; voided rows are kept so the history is auditable. Every void is
also remembered in ``voided_entries``, listed or not: a void can arrive before the death it voids.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from consumers.kit.matching import name_key, postcode_key
from consumers.runtime import Transaction
from consumers.runtime.store import now_iso
from schemas.models import DeathDetails, EntryReference

__all__ = ["SCHEMA", "Listing", "SuppressionList"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS do_not_contact (
    entry_key             TEXT PRIMARY KEY,
    entry_version         INTEGER NOT NULL,
    status                TEXT NOT NULL CHECK (status IN ('suppressed', 'voided')),
    name_key              TEXT NOT NULL,
    date_of_birth         TEXT,
    postcode              TEXT,
    nino                  TEXT,
    nhs_number            TEXT,
    date_of_death         TEXT NOT NULL,
    registration_district TEXT NOT NULL,
    sub_district          TEXT NOT NULL,
    register_number       INTEGER NOT NULL,
    entry_number          INTEGER NOT NULL,
    year_of_registration  INTEGER NOT NULL,
    updated_at            TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS do_not_contact_nino ON do_not_contact (nino) WHERE status = 'suppressed';
CREATE INDEX IF NOT EXISTS do_not_contact_nhs ON do_not_contact (nhs_number) WHERE status = 'suppressed';
CREATE INDEX IF NOT EXISTS do_not_contact_person
    ON do_not_contact (name_key, date_of_birth) WHERE status = 'suppressed';
CREATE INDEX IF NOT EXISTS do_not_contact_name_postcode
    ON do_not_contact (name_key, postcode) WHERE status = 'suppressed';
CREATE INDEX IF NOT EXISTS do_not_contact_birth_postcode
    ON do_not_contact (date_of_birth, postcode) WHERE status = 'suppressed';
CREATE TABLE IF NOT EXISTS voided_entries (
    entry_key   TEXT PRIMARY KEY,
    version     INTEGER NOT NULL,
    voided_at   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS do_not_contact_history (
    entry_key   TEXT NOT NULL,
    version     INTEGER NOT NULL,
    action      TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Listing:
    """One death entry on the list, as a lookup reports it (no names: the caller already has them)."""

    entry_key: str
    registration_district: str
    sub_district: str
    register_number: int
    entry_number: int
    year_of_registration: int
    date_of_death: date
    status: str
    matched_by: str


class SuppressionList:
    """Reads and writes the do-not-contact list inside one transaction."""

    def __init__(self, transaction: Transaction) -> None:
        self._tx = transaction

    def version_of(self, entry: EntryReference) -> int | None:
        """The version of ``entry`` already applied, or None if it is not on the list."""
        row = self._tx.one("SELECT entry_version FROM do_not_contact WHERE entry_key = ?", (entry.key,))
        return None if row is None else int(row[0])

    def status_of(self, entry: EntryReference) -> str | None:
        """``suppressed``, ``voided`` or None."""
        row = self._tx.one("SELECT status FROM do_not_contact WHERE entry_key = ?", (entry.key,))
        return None if row is None else str(row[0])

    def voided(self, entry: EntryReference) -> bool:
        """True once a void of ``entry`` has arrived, whether or not its death had."""
        if self._tx.one("SELECT 1 FROM voided_entries WHERE entry_key = ?", (entry.key,)) is not None:
            return True
        return self.status_of(entry) == "voided"  # voided before voids were remembered apart

    def suppress(self, entry: EntryReference, version: int, death: DeathDetails, event_id: str) -> None:
        """Put the deceased on the list (or refresh their details from a corrected entry)."""
        person = death.deceased
        address = person.address
        self._tx.execute(
            """
            INSERT INTO do_not_contact VALUES (?, ?, 'suppressed', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (entry_key) DO UPDATE SET
                entry_version = excluded.entry_version, name_key = excluded.name_key,
                date_of_birth = excluded.date_of_birth, postcode = excluded.postcode, nino = excluded.nino,
                nhs_number = excluded.nhs_number, date_of_death = excluded.date_of_death,
                updated_at = excluded.updated_at
            """,
            (
                entry.key,
                version,
                name_key(person.given_names, person.family_name),
                None if person.date_of_birth is None else person.date_of_birth.isoformat(),
                postcode_key(address.postcode if address else None),
                person.identifiers.nino,
                person.identifiers.nhs_number,
                death.date_of_death.isoformat(),
                entry.registration_district,
                entry.sub_district,
                entry.register_number,
                entry.entry_number,
                entry.year_of_registration,
                now_iso(),
            ),
        )
        self._history(entry, version, "suppress", event_id)

    def void(self, entry: EntryReference, version: int, event_id: str) -> None:
        """Take a voided death entry off the list (kept as history), and remember the void for a late death."""
        self._tx.execute(
            "UPDATE do_not_contact SET status = 'voided', entry_version = ?, updated_at = ? WHERE entry_key = ?",
            (version, now_iso(), entry.key),
        )
        self._tx.execute(
            "INSERT INTO voided_entries VALUES (?, ?, ?) ON CONFLICT (entry_key) DO NOTHING",
            (entry.key, version, now_iso()),
        )
        self._history(entry, version, "void", event_id)

    def find(
        self,
        *,
        nino: str | None = None,
        nhs_number: str | None = None,
        given_names: str | None = None,
        family_name: str | None = None,
        date_of_birth: date | None = None,
        postcode: str | None = None,
    ) -> tuple[Listing | None, list[Listing]]:
        """An exact match (by NINO, NHS number, or name + date of birth + postcode) and any partial matches.

        A partial match (same name and date of birth at another postcode, same date of birth and postcode under
        another name, or, with no date of birth to compare, same name at the same postcode) is never treated as
        the same person; the caller decides what to do with it (the mailing
        filter holds such letters for review).
        """
        if nino:
            found = self._listing("nino = ?", (nino,), "nino")
            if found:
                return found[0], []
        if nhs_number:
            found = self._listing("nhs_number = ?", (nhs_number,), "nhs_number")
            if found:
                return found[0], []
        if given_names and family_name and date_of_birth:
            key = name_key(given_names, family_name)
            candidates = self._listing(
                "name_key = ? AND date_of_birth = ?", (key, date_of_birth.isoformat()), "name_dob_postcode"
            )
            wanted = postcode_key(postcode)
            exact = [c for c in candidates if wanted is not None and self._postcode(c.entry_key) == wanted]
            if exact:
                return exact[0], []
            partial = [Listing(**{**c.__dict__, "matched_by": "name_dob"}) for c in candidates]
            if wanted is not None:
                # Same date of birth at the same postcode under another name: a misspelt entry not yet corrected.
                partial += self._listing(
                    "date_of_birth = ? AND postcode = ?", (date_of_birth.isoformat(), wanted), "dob_postcode"
                )
            return None, partial
        wanted = postcode_key(postcode)
        if given_names and family_name and wanted is not None:
            # No date of birth to compare: the same name at the same postcode is a possible match, never a pass.
            key = name_key(given_names, family_name)
            return None, self._listing("name_key = ? AND postcode = ?", (key, wanted), "name_postcode")
        return None, []

    def _postcode(self, entry_key: str) -> str | None:
        row = self._tx.one("SELECT postcode FROM do_not_contact WHERE entry_key = ?", (entry_key,))
        return None if row is None or row[0] is None else str(row[0])

    def _listing(self, where: str, params: tuple[str, ...], matched_by: str) -> list[Listing]:
        # ``where`` is always one of the constant clauses above; values travel as parameters.
        columns = (
            "entry_key, registration_district, sub_district, register_number, entry_number, year_of_registration, "
            "date_of_death, status"
        )
        sql = f"SELECT {columns} FROM do_not_contact WHERE status = 'suppressed' AND {where} ORDER BY entry_key"  # noqa: S608
        rows = self._tx.execute(sql, params)
        return [
            Listing(
                entry_key=str(r[0]),
                registration_district=str(r[1]),
                sub_district=str(r[2]),
                register_number=int(r[3]),
                entry_number=int(r[4]),
                year_of_registration=int(r[5]),
                date_of_death=date.fromisoformat(str(r[6])),
                status=str(r[7]),
                matched_by=matched_by,
            )
            for r in rows
        ]

    def _history(self, entry: EntryReference, version: int, action: str, event_id: str) -> None:
        self._tx.execute(
            "INSERT INTO do_not_contact_history VALUES (?, ?, ?, ?, ?)",
            (entry.key, version, action, event_id, now_iso()),
        )
