"""Registrations as life events of a department's customers: matched, applied once, amended, undone.

Every department reacts to the same few facts (a customer died, married or formed a civil partnership, had a child)
and must cope with the same awkward history: an entry is corrected (the whole entry again, perhaps now pointing at
another record), voided (it never happened: put back exactly what was changed), delivered again, or could not be
matched safely and waits for a reviewer. This module keeps that bookkeeping once, so a department's rules module
is only its business rules: what a fact does to one of its records, and how to undo it.

    life = LifeEvents(department)

    def stop_state_pension(records: PensionRecords, pensioner_id: str, death: DeathDetails) -> Snapshot:
        '''Payments stop from the date of death.'''
        ...  # change the record; return the fields as they were

    def restart_state_pension(records: PensionRecords, pensioner_id: str, before: Snapshot) -> None:
        '''The death was voided: the pension is paid again.'''
        ...

    life.on_death(stop_state_pension, undo=restart_state_pension)

A death may name the deceased's surviving spouse or civil partner: a department with an ``on_bereavement`` rule
matches them like anyone else (role ``surviving_partner``) and records their new status; one without such a rule
never looks at them.

What is kept, per entry: the latest version seen and whether it was voided; per person the entry named (its
*role*: deceased, mother, party_1, ...), the record it was applied to and a snapshot of that record's fields
before. A correction undoes and re-applies (so a corrected date of death recomputes everything), moving the effect
to another record when the corrected details match that one instead; a void undoes, for good; a withdrawal (a
birth corrected to a stillbirth, which the department may not see) undoes too, but a correction back to a live
birth makes the entry stand again.

Versions may arrive in any order; the department must end as version order would leave it. So every version is
kept (as the department received it), with each record's fields from before the entry first changed it and each
reviewer's choice per version (a record, or that none matches): the newest version yet is applied on top; an older
one arriving late rewinds the entry (every record put back exactly as it was) and replays all its versions in
version order, the reviewer's choices included. All these tables live in the department's own database
(``ENTRY_LOG_SCHEMA``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Generic, Protocol, TypeVar

from consumers.kit.matching import Match, PersonTable, match_person, name_key
from consumers.runtime import Department, Outcome, Result, Transaction
from consumers.runtime.agreements import Withdrawal
from consumers.runtime.store import now_iso
from schemas.models import (
    EVENT_MODELS,
    REGISTRATION_EVENTS,
    BirthDetails,
    BirthRegistered,
    CivilPartnershipDetails,
    CivilPartnershipRegistered,
    DeathDetails,
    DeathRegistered,
    EntryReference,
    Event,
    MaritalStatus,
    MarriageDetails,
    MarriageRegistered,
    Partner,
    Person,
    RegistrationCorrected,
    RegistrationVoided,
    SurvivingPartner,
)
from schemas.topics import Register

__all__ = [
    "ENTRY_LOG_SCHEMA",
    "Bereavement",
    "EntryLog",
    "LifeEvents",
    "LifeRecords",
    "Link",
    "Partnership",
    "Snapshot",
]

Snapshot = dict[str, Any]
"""A record's fields as they were before an entry changed them (JSON-serialisable values only)."""

ENTRY_LOG_SCHEMA = """
CREATE TABLE IF NOT EXISTS life_event_entries (
    entry_key   TEXT PRIMARY KEY,
    version     INTEGER NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('current', 'voided')),
    updated_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS life_event_links (
    entry_key   TEXT NOT NULL,
    role        TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    fact        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    snapshot    TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('applied', 'undone')),
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (entry_key, role)
);
CREATE INDEX IF NOT EXISTS life_event_links_record ON life_event_links (record_id);
CREATE TABLE IF NOT EXISTS life_event_versions (
    entry_key   TEXT NOT NULL,
    version     INTEGER NOT NULL,
    event_type  TEXT NOT NULL,
    event_json  TEXT NOT NULL,
    PRIMARY KEY (entry_key, version)
);
CREATE TABLE IF NOT EXISTS life_event_originals (
    entry_key   TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    fact        TEXT NOT NULL,
    snapshot    TEXT NOT NULL,
    PRIMARY KEY (entry_key, record_id, fact)
);
CREATE TABLE IF NOT EXISTS life_event_decisions (
    entry_key   TEXT NOT NULL,
    version     INTEGER NOT NULL,
    role        TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    decided_at  TEXT NOT NULL,
    PRIMARY KEY (entry_key, version, role)
);
CREATE TABLE IF NOT EXISTS life_event_no_match (
    entry_key   TEXT NOT NULL,
    role        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    decided_at  TEXT NOT NULL,
    PRIMARY KEY (entry_key, role)
);
"""


@dataclass(frozen=True)
class Partnership:
    """One party's side of a marriage or civil partnership, as a department's rule sees it."""

    partner: Partner
    civil_partnership: bool
    formed_on: date

    @property
    def status(self) -> MaritalStatus:
        """The party's marital status from now on."""
        return MaritalStatus.CIVIL_PARTNER if self.civil_partnership else MaritalStatus.MARRIED

    @property
    def new_surname(self) -> str | None:
        """The surname the party takes, when it changes."""
        after = self.partner.surname_after
        return after if after and after != self.partner.person.family_name else None


@dataclass(frozen=True)
class Bereavement:
    """The surviving spouse or civil partner's side of a death, as a department's rule sees it."""

    survivor: SurvivingPartner
    date_of_death: date

    @property
    def status(self) -> MaritalStatus:
        """The survivor's marital status from now on: widowed, or surviving civil partner."""
        return self.survivor.status


@dataclass(frozen=True)
class Link:
    """What one entry did to one record."""

    entry_key: str
    role: str
    record_id: str
    fact: str
    version: int
    snapshot: Snapshot
    status: str


_KINDS: dict[str, type[Event]] = {**EVENT_MODELS, "Withdrawal": Withdrawal}
"""How a kept version is read back: a withdrawal travels as a void but must replay as a withdrawal."""


def _kind(event: Event) -> str:
    return "Withdrawal" if isinstance(event, Withdrawal) else event.event_type


@dataclass
class _Mirror:
    """What the entry log holds for one entry of the batch being applied, kept current as the log is written."""

    state: tuple[int, str] | None = None
    kept: set[int] = field(default_factory=set)
    links: dict[str, tuple[str, str, int, str]] = field(default_factory=dict)
    """Applied links by role: (record id, fact, version, snapshot as JSON text: each read gets its own copy)."""
    chosen: dict[tuple[int, str], str] = field(default_factory=dict)
    """A reviewer's record, by (version, role)."""
    no_match: dict[str, int] = field(default_factory=dict)
    """The version a reviewer said no record matches, by role."""


_MEMO = "life_event_entries"
_CHUNK = 400
"""Entry keys per read of the batch's entry log: one parameter each, well inside both engines' limits."""
_BATCH_READ = """
WITH batch(entry_key) AS (VALUES {keys})
SELECT 'entry', e.entry_key, e.version, NULL, NULL, NULL, NULL, e.status
    FROM life_event_entries e JOIN batch b ON b.entry_key = e.entry_key
UNION ALL SELECT 'kept', v.entry_key, v.version, NULL, NULL, NULL, NULL, NULL
    FROM life_event_versions v JOIN batch b ON b.entry_key = v.entry_key
UNION ALL SELECT 'link', l.entry_key, l.version, l.role, l.record_id, l.fact, l.snapshot, l.status
    FROM life_event_links l JOIN batch b ON b.entry_key = l.entry_key WHERE l.status = 'applied'
UNION ALL SELECT 'chosen', d.entry_key, d.version, d.role, d.record_id, NULL, NULL, NULL
    FROM life_event_decisions d JOIN batch b ON b.entry_key = d.entry_key
UNION ALL SELECT 'none', n.entry_key, n.version, n.role, NULL, NULL, NULL, NULL
    FROM life_event_no_match n JOIN batch b ON b.entry_key = n.entry_key
"""


class EntryLog:
    """The department's memory of what each entry changed (its ``life_event_*`` tables).

    In a batch (``Transaction.batch_memo``) the questions every event asks (the entry's state and kept versions,
    its applied links, a reviewer's decisions) are answered from a mirror of the batch's entries, read in one
    query at the first question and kept current by this class's own writes; outside a batch, or once a savepoint
    of the batch has rolled back, every question reads the tables.
    """

    def __init__(self, transaction: Transaction) -> None:
        self._tx = transaction

    def _mirror(self, entry_key: str) -> _Mirror | None:
        """The batch's mirror of ``entry_key``, read with every other entry of the batch at the first question."""
        memo = self._tx.batch_memo(_MEMO)
        if memo is None:
            return None
        mirrors: dict[str, _Mirror] | None = memo.get("entries")
        if mirrors is None:
            mirrors = memo["entries"] = self._read_batch()
        return mirrors.get(entry_key)

    def _read_batch(self) -> dict[str, _Mirror]:
        keys = sorted(self._tx.batch_entry_keys())
        mirrors = {key: _Mirror() for key in keys}  # an entry without rows is known too: never seen
        for start in range(0, len(keys), _CHUNK):
            some = keys[start : start + _CHUNK]
            query = _BATCH_READ.format(keys=", ".join("(?)" for _ in some))
            for kind, key, version, role, record_id, fact, snapshot_json, status in self._tx.execute(query, some):
                mirror = mirrors[str(key)]
                if kind == "entry":
                    mirror.state = (int(version), str(status))
                elif kind == "kept":
                    mirror.kept.add(int(version))
                elif kind == "link":  # applied only
                    mirror.links[str(role)] = (str(record_id), str(fact), int(version), str(snapshot_json))
                elif kind == "chosen":
                    mirror.chosen[(int(version), str(role))] = str(record_id)
                else:
                    mirror.no_match[str(role)] = int(version)
        return mirrors

    def state(self, entry: EntryReference) -> tuple[int, str] | None:
        """(latest version seen, 'current' or 'voided'), or None for an entry never seen."""
        if (mirror := self._mirror(entry.key)) is not None:
            return mirror.state
        rows = self._tx.select(("version", "status"), "FROM life_event_entries WHERE entry_key = ?", (entry.key,))
        return (rows[0].integer("version"), rows[0].text("status")) if rows else None

    def saw(self, entry: EntryReference, version: int, status: str = "current") -> None:
        """Remember the latest version of ``entry`` (never lowering it)."""
        if (mirror := self._mirror(entry.key)) is not None:
            mirror.state = (max(version, mirror.state[0]) if mirror.state else version, status)
        self._tx.execute(
            "INSERT INTO life_event_entries VALUES (?, ?, ?, ?) ON CONFLICT (entry_key) DO UPDATE SET "
            "version = CASE WHEN excluded.version > life_event_entries.version "
            "THEN excluded.version ELSE life_event_entries.version END, "
            "status = excluded.status, updated_at = excluded.updated_at",
            (entry.key, version, status, now_iso()),
        )

    def links(self, entry: EntryReference) -> list[Link]:
        """Records this entry changed and has not undone, in role order."""
        if (mirror := self._mirror(entry.key)) is not None:
            # Roles are lower-case words and digits (deceased, party_1, ...): code point order is the table's.
            return [
                Link(entry.key, role, record_id, fact, version, json.loads(snapshot), "applied")
                for role, (record_id, fact, version, snapshot) in sorted(mirror.links.items())
            ]
        rows = self._tx.select(
            ("role", "record_id", "fact", "version", "snapshot", "status"),
            "FROM life_event_links WHERE entry_key = ? AND status = 'applied' ORDER BY role",
            (entry.key,),
        )
        return [
            Link(
                entry_key=entry.key,
                role=row.text("role"),
                record_id=row.text("record_id"),
                fact=row.text("fact"),
                version=row.integer("version"),
                snapshot=json.loads(row.text("snapshot")),
                status=row.text("status"),
            )
            for row in rows
        ]

    def link(
        self, entry: EntryReference, role: str, *, record_id: str, fact: str, version: int, before: Snapshot
    ) -> None:
        """Remember that ``entry`` changed ``record_id`` (in ``role``) and what the record was before."""
        snapshot = json.dumps(before, sort_keys=True)
        if (mirror := self._mirror(entry.key)) is not None:
            mirror.links[role] = (record_id, fact, version, snapshot)
        self._tx.execute(
            "INSERT INTO life_event_links VALUES (?, ?, ?, ?, ?, ?, 'applied', ?) "
            "ON CONFLICT (entry_key, role) DO UPDATE SET record_id = excluded.record_id, fact = excluded.fact, "
            "version = excluded.version, snapshot = excluded.snapshot, status = 'applied', "
            "updated_at = excluded.updated_at",
            (entry.key, role, record_id, fact, version, snapshot, now_iso()),
        )

    def no_match(self, entry: EntryReference, role: str, version: int) -> None:
        """A reviewer decided that no record matches the person in ``role`` of this version of the entry."""
        if (mirror := self._mirror(entry.key)) is not None:
            mirror.no_match[role] = version
        self._tx.execute(
            "INSERT INTO life_event_no_match VALUES (?, ?, ?, ?) ON CONFLICT (entry_key, role) DO UPDATE SET "
            "version = excluded.version, decided_at = excluded.decided_at",
            (entry.key, role, version, now_iso()),
        )

    def no_match_roles(self, entry: EntryReference, version: int) -> set[str]:
        """Roles a reviewer said match no record, for this version of the entry (a correction asks afresh)."""
        if (mirror := self._mirror(entry.key)) is not None:
            return {role for role, said_of in mirror.no_match.items() if said_of == version}
        rows = self._tx.execute(
            "SELECT role FROM life_event_no_match WHERE entry_key = ? AND version = ?", (entry.key, version)
        )
        return {str(row[0]) for row in rows}

    def unlink(self, link: Link) -> None:
        """The entry's effect on this record has been undone."""
        if (mirror := self._mirror(link.entry_key)) is not None:
            mirror.links.pop(link.role, None)
        self._tx.execute(
            "UPDATE life_event_links SET status = 'undone', updated_at = ? WHERE entry_key = ? AND role = ?",
            (now_iso(), link.entry_key, link.role),
        )

    # Replaying an entry in version order --------------------------------------------------------------------

    def keep(self, event: Event) -> None:
        """Keep this version of the entry (as the department received it), to replay the entry in version order."""
        if (mirror := self._mirror(event.entry.key)) is not None:
            mirror.kept.add(event.version)
        self._tx.execute(
            "INSERT INTO life_event_versions VALUES (?, ?, ?, ?) ON CONFLICT (entry_key, version) DO NOTHING",
            (event.entry.key, event.version, _kind(event), event.model_dump_json()),
        )

    def kept_versions(self, entry: EntryReference) -> set[int]:
        """The version numbers of ``entry`` kept so far."""
        if (mirror := self._mirror(entry.key)) is not None:
            return set(mirror.kept)
        rows = self._tx.execute("SELECT version FROM life_event_versions WHERE entry_key = ?", (entry.key,))
        return {int(r[0]) for r in rows}

    def history(self, entry: EntryReference) -> tuple[tuple[int, str] | None, set[int]]:
        """(``state``, ``kept_versions``) in one round trip (none in a batch): every event asks both first."""
        if (mirror := self._mirror(entry.key)) is not None:
            return mirror.state, set(mirror.kept)
        rows = self._tx.execute(
            "SELECT 'entry', version, status FROM life_event_entries WHERE entry_key = ? "
            "UNION ALL SELECT 'kept', version, NULL FROM life_event_versions WHERE entry_key = ?",
            (entry.key, entry.key),
        )
        state = next(((int(row[1]), str(row[2])) for row in rows if row[0] == "entry"), None)
        return state, {int(row[1]) for row in rows if row[0] == "kept"}

    def versions(self, entry: EntryReference) -> list[Event]:
        """Every version of ``entry`` kept, in version order."""
        rows = self._tx.execute(
            "SELECT event_type, event_json FROM life_event_versions WHERE entry_key = ? ORDER BY version",
            (entry.key,),
        )
        return [_KINDS[str(r[0])].model_validate_json(str(r[1])) for r in rows]

    def original(self, entry: EntryReference, record_id: str, fact: str, before: Snapshot) -> None:
        """Remember a record as it was before ``entry`` first changed it (a later change keeps the first)."""
        self._tx.execute(
            "INSERT INTO life_event_originals VALUES (?, ?, ?, ?) ON CONFLICT (entry_key, record_id, fact) DO NOTHING",
            (entry.key, record_id, fact, json.dumps(before, sort_keys=True)),
        )

    def originals(self, entry: EntryReference) -> list[tuple[str, str, Snapshot]]:
        """(record id, fact, fields before) of every record ``entry`` has changed since it was last rewound."""
        rows = self._tx.execute(
            "SELECT record_id, fact, snapshot FROM life_event_originals WHERE entry_key = ? ORDER BY record_id, fact",
            (entry.key,),
        )
        return [(str(r[0]), str(r[1]), json.loads(str(r[2]))) for r in rows]

    def forget(self, entry: EntryReference) -> None:
        """The entry has been rewound: nothing it did stands, no version has been applied (the versions stay)."""
        if (mirror := self._mirror(entry.key)) is not None:
            mirror.state = None
        self._tx.execute("DELETE FROM life_event_originals WHERE entry_key = ?", (entry.key,))
        self._tx.execute("DELETE FROM life_event_entries WHERE entry_key = ?", (entry.key,))

    def decide(self, entry: EntryReference, version: int, role: str, record_id: str) -> None:
        """A reviewer said which record the person in ``role`` of this version is (kept for replays)."""
        if (mirror := self._mirror(entry.key)) is not None:
            mirror.chosen[(version, role)] = record_id
        self._tx.execute(
            "INSERT INTO life_event_decisions VALUES (?, ?, ?, ?, ?) ON CONFLICT (entry_key, version, role) "
            "DO UPDATE SET record_id = excluded.record_id, decided_at = excluded.decided_at",
            (entry.key, version, role, record_id, now_iso()),
        )

    def decision(self, entry: EntryReference, version: int, role: str) -> str | None:
        """The record a reviewer chose for the person in ``role`` of this version, if one did."""
        if (mirror := self._mirror(entry.key)) is not None:
            return mirror.chosen.get((version, role))
        found = self._tx.scalar(
            "SELECT record_id FROM life_event_decisions WHERE entry_key = ? AND version = ? AND role = ?",
            (entry.key, version, role),
        )
        return None if found is None else str(found)

    def reviewed(self, entry: EntryReference, version: int, role: str) -> tuple[str | None, bool]:
        """(``decision``, whether ``role`` is in ``no_match_roles``) in one round trip: every subject of every event
        asks, and a reviewer has almost never answered, so two queries per subject were two empty round trips."""
        if (mirror := self._mirror(entry.key)) is not None:
            return mirror.chosen.get((version, role)), mirror.no_match.get(role) == version
        rows = self._tx.execute(
            "SELECT 'chosen', record_id FROM life_event_decisions WHERE entry_key = ? AND version = ? AND role = ? "
            "UNION ALL SELECT 'none', NULL FROM life_event_no_match WHERE entry_key = ? AND version = ? AND role = ?",
            (entry.key, version, role, entry.key, version, role),
        )
        chosen = next((str(row[1]) for row in rows if row[0] == "chosen"), None)
        return chosen, any(row[0] == "none" for row in rows)


class LifeRecords(Protocol):
    """What a department's records class offers this module: its people to match, and its entry log."""

    @property
    def people(self) -> PersonTable:
        """The department's customers, for matching."""
        ...

    @property
    def entries(self) -> EntryLog:
        """What each entry changed."""
        ...


RecordsT = TypeVar("RecordsT", bound=LifeRecords)
Apply = Callable[[RecordsT, str, Any], Snapshot | Result]
"""A department's rule for one kind of fact (the fact's type depends on the kind: ``on_death`` and the others)."""
Undo = Callable[[RecordsT, str, Snapshot], None]


@dataclass(frozen=True)
class _Subject:
    """A person an entry is about, in a role, with the fact a department's rule receives."""

    role: str
    person: Person
    fact_kind: str
    fact: Any


def _subjects(details: BirthDetails | DeathDetails | MarriageDetails | CivilPartnershipDetails) -> list[_Subject]:
    if isinstance(details, DeathDetails):
        deceased = _Subject("deceased", details.deceased, "death", details)
        survivor = details.surviving_partner
        if survivor is None:
            return [deceased]
        bereaved = Bereavement(survivor, details.date_of_death)
        return [deceased, _Subject("surviving_partner", survivor.person, "bereavement", bereaved)]
    if isinstance(details, BirthDetails):
        return [] if details.mother is None else [_Subject("mother", details.mother, "birth", details)]
    if isinstance(details, MarriageDetails):
        parties = (("party_1", details.party_1), ("party_2", details.party_2))
        return [
            _Subject(role, p.person, "partnership", Partnership(p, False, details.date_of_marriage))
            for role, p in parties
        ]
    partners = (("partner_1", details.partner_1), ("partner_2", details.partner_2))
    return [
        _Subject(role, p.person, "partnership", Partnership(p, True, details.date_of_formation)) for role, p in partners
    ]


def _details(event: Event) -> BirthDetails | DeathDetails | MarriageDetails | CivilPartnershipDetails:
    if isinstance(event, RegistrationCorrected):
        return event.corrected
    if isinstance(event, BirthRegistered):
        return event.birth
    if isinstance(event, DeathRegistered):
        return event.death
    if isinstance(event, MarriageRegistered):
        return event.marriage
    if isinstance(event, CivilPartnershipRegistered):
        return event.civil_partnership
    raise TypeError(f"{event.event_type} carries no entry details")


def _combine(results: list[tuple[str, Result]], nobody: str) -> Result:
    """One outcome for an entry naming several people: review wins, then applied, then no matching record."""
    if not results:
        return Result.no_matching_record(nobody)
    if len(results) == 1:
        return results[0][1]
    note = "; ".join(f"{role}: {result.note}" for role, result in results)
    review = [result for _, result in results if result.outcome is Outcome.NEEDS_REVIEW]
    if review:
        return Result.needs_review(note, tuple(c for result in review for c in result.candidates))
    if any(result.outcome is Outcome.APPLIED for _, result in results):
        return Result.applied(note)
    return Result.no_matching_record(note)


_REGISTERS_OF_FACT: dict[str, tuple[Register, ...]] = {
    "death": (Register.DEATH,),
    "bereavement": (Register.DEATH,),
    "birth": (Register.BIRTH,),
    "partnership": (Register.MARRIAGE, Register.CIVIL_PARTNERSHIP),
}


class LifeEvents(Generic[RecordsT]):
    """Wires a department's rules for deaths, partnerships and births to its handlers, resolvers and entry log."""

    def __init__(self, department: Department[RecordsT], match: Callable[[RecordsT, Person], Match] | None = None):
        self.department = department
        self._match = match or (lambda records, person: match_person(records.people, person))
        self._apply: dict[str, Apply[RecordsT]] = {}
        self._undo: dict[str, Undo[RecordsT]] = {}
        department.handles(RegistrationCorrected)(self._arrived)
        department.resolves(RegistrationCorrected)(self._resolve)
        department.declines(RegistrationCorrected)(self._decline)
        department.handles(RegistrationVoided)(self._arrived)

    # Declaring a department's rules -----------------------------------------------------------------------

    def _declare(self, fact: str, apply: Apply[RecordsT], undo: Undo[RecordsT]) -> None:
        registers = [r for r in _REGISTERS_OF_FACT[fact] if r in self.department.registers]
        if not registers:
            raise ValueError(f"{self.department.name} has a rule for {fact}s but receives no such register")
        self._apply[fact], self._undo[fact] = apply, undo
        for register in registers:
            event_type = REGISTRATION_EVENTS[register]
            if event_type.event_type in self.department.handlers:
                continue  # another fact of the same register (a death and its bereavement) wired it already
            self.department.handles(event_type)(self._arrived)
            self.department.resolves(event_type)(self._resolve)
            self.department.declines(event_type)(self._decline)

    def on_death(
        self,
        apply: Callable[[RecordsT, str, DeathDetails], Snapshot | Result],
        *,
        undo: Callable[[RecordsT, str, Snapshot], None],
    ) -> None:
        """A customer died: ``apply`` changes their record and returns it as it was; ``undo`` puts that back.

        When the fact changes nothing this department keeps, ``apply`` returns ``Result.no_matching_record(...)``
        instead of a snapshot (so do ``on_partnership`` and ``on_birth`` rules): nothing is recorded to undo.
        """
        self._declare("death", apply, undo)

    def on_bereavement(
        self,
        apply: Callable[[RecordsT, str, Bereavement], Snapshot | Result],
        *,
        undo: Callable[[RecordsT, str, Snapshot], None],
    ) -> None:
        """A customer's spouse or civil partner died: the death entry names them as the survivor."""
        self._declare("bereavement", apply, undo)

    def on_partnership(
        self,
        apply: Callable[[RecordsT, str, Partnership], Snapshot | Result],
        *,
        undo: Callable[[RecordsT, str, Snapshot], None],
    ) -> None:
        """A customer married or formed a civil partnership (each party separately)."""
        self._declare("partnership", apply, undo)

    def on_birth(
        self,
        apply: Callable[[RecordsT, str, BirthDetails], Snapshot | Result],
        *,
        undo: Callable[[RecordsT, str, Snapshot], None],
    ) -> None:
        """A customer (the mother named in the entry) had a child."""
        self._declare("birth", apply, undo)

    # Every version of an entry, whatever order they arrive in ---------------------------------------------

    def _arrived(self, event: Event, records: RecordsT) -> Result:
        """One version of an entry: applied on top when it is the newest yet, else the entry is replayed.

        Applying a version on top of the versions before it is what version order does, so the newest version is
        simply applied. A version older than one already applied (it arrived late) cannot be: the entry is rewound
        (every record it changed put back exactly as it was) and all its kept versions applied again in version
        order. Either way the department ends where version order ends, whatever order versions arrive in.
        """
        entries = records.entries
        state, kept = entries.history(event.entry)
        before_versions_were_kept = state is not None and state[0] not in kept
        if event.version in kept or (before_versions_were_kept and state is not None and state[0] >= event.version):
            return self._stale(records, event)  # the same version again: only a re-drive gets here
        latest = max([*kept, state[0] if state else 0])
        entries.keep(event)
        if event.version > latest:
            return self._step(records, event)
        return self._replay(records, event, latest)

    def _replay(self, records: RecordsT, event: Event, latest: int) -> Result:
        """Rewind the entry and apply its versions again in version order; the outcome is where it ends.

        Rewinding undoes what the entry still has applied, then undoes every record it ever changed once more
        with that record's fields from before the entry first changed it. The second pass is what makes the
        rewind exact: an undo may leave a mark of its own (DWP cancels a recovery that had started), and an undo
        of a record with nothing pending puts back the first snapshot as it was.
        """
        entries = records.entries
        for link in reversed(entries.links(event.entry)):
            self._undo_link(records, link)
        for record_id, fact, before in reversed(entries.originals(event.entry)):
            self._undo[fact](records, record_id, before)
        entries.forget(event.entry)
        result = Result.no_matching_record()
        for version in entries.versions(event.entry):
            result = self._step(records, version)
        note = f"arrived after version {latest}; the entry was applied again in version order: {result.note}"
        return Result(result.outcome, note, result.candidates)

    def _step(self, records: RecordsT, event: Event) -> Result:
        """Apply one version on top of the versions before it."""
        if isinstance(event, Withdrawal):  # before RegistrationVoided: a withdrawal is one, but the entry stands
            return self._withdrawn(event, records)
        if isinstance(event, RegistrationVoided):
            return self._voided(event, records)
        if isinstance(event, RegistrationCorrected):
            return self._corrected(event, records)
        return self._registered(event, records)

    def _stale(self, records: RecordsT, event: Event) -> Result:
        """The outcome for a version this entry has already had."""
        if records.entries.links(event.entry):
            return Result.applied(f"version {event.version} already applied")
        return Result.no_matching_record(f"version {event.version} already seen; no record changed")

    # One version on top of the ones before ----------------------------------------------------------------

    def _match_in(self, records: RecordsT, event: Event, subject: _Subject) -> Match:
        """The record a reviewer chose for this person in this version (or that none matches), else matching's."""
        chosen, no_match = records.entries.reviewed(event.entry, event.version, subject.role)
        if chosen is not None:
            return Match(chosen, "reviewer")
        if no_match:
            return Match(reason="reviewer: no record matches")
        return self._match(records, subject.person)

    def _subjects(
        self, details: BirthDetails | DeathDetails | MarriageDetails | CivilPartnershipDetails
    ) -> list[_Subject]:
        """The people in the entry this department has a rule for (a survivor only with ``on_bereavement``)."""
        return [subject for subject in _subjects(details) if subject.fact_kind in self._apply]

    def _apply_to(
        self, records: RecordsT, entry: EntryReference, version: int, subject: _Subject, record_id: str
    ) -> Result | None:
        """Apply the fact to ``record_id`` and remember it; the rule's own outcome when it changed nothing."""
        before = self._apply[subject.fact_kind](records, record_id, subject.fact)
        if isinstance(before, Result):
            return before
        records.entries.original(entry, record_id, subject.fact_kind, before)
        records.entries.link(
            entry, subject.role, record_id=record_id, fact=subject.fact_kind, version=version, before=before
        )
        return None

    def _undo_link(self, records: RecordsT, link: Link) -> None:
        self._undo[link.fact](records, link.record_id, link.snapshot)
        records.entries.unlink(link)

    def _match_and_apply(self, records: RecordsT, event: Event, subject: _Subject) -> Result:
        match = self._match_in(records, event, subject)
        if match.record_id is None:
            return match.unresolved()
        unchanged = self._apply_to(records, event.entry, event.version, subject, match.record_id)
        return unchanged or Result.applied(f"matched by {match.matched_by}")

    def _registered(self, event: Event, records: RecordsT) -> Result:
        """A new entry: each person it names is matched and, when one record is safely theirs, changed."""
        linked = {link.role for link in records.entries.links(event.entry)}
        results = [
            (subject.role, self._match_and_apply(records, event, subject))
            for subject in self._subjects(_details(event))
            if subject.role not in linked
        ]
        records.entries.saw(event.entry, event.version)
        return _combine(results, "the entry names nobody this department keeps records of")

    def _corrected(self, event: RegistrationCorrected, records: RecordsT) -> Result:
        """A corrected entry: undo and re-apply with the corrected details, on the record they now match.

        After a withdrawal (a birth corrected to a stillbirth, then back to a live birth) nothing is linked any
        more, so the corrected entry is matched and applied afresh: it stands again. After a registrar's void it
        does not: the entry never happened.
        """
        state = records.entries.state(event.entry)
        if state is not None and state[1] == "voided":
            return Result.no_matching_record("entry was voided; correction not applied")
        subjects = self._subjects(event.corrected)
        links = {link.role: link for link in records.entries.links(event.entry)}
        results: list[tuple[str, Result]] = []
        for role in sorted(links.keys() - {subject.role for subject in subjects}):
            self._undo_link(records, links[role])  # the corrected entry no longer names this person
            results.append((role, Result.applied("undone: no longer in the entry")))
        for subject in subjects:
            link = links.get(subject.role)
            if link is None:
                results.append((subject.role, self._match_and_apply(records, event, subject)))
                continue
            match = self._match_in(records, event, subject)
            self._undo_link(records, link)
            if match.record_id is None and link.record_id not in match.candidates:
                # The corrected details match nobody, or only others ambiguously: the effect must not stay on a
                # record they no longer point at (a living person left dead). Undone; a reviewer may choose.
                results.append((subject.role, match.unresolved("undone")))
                continue
            target = match.record_id if match.record_id is not None else link.record_id
            unchanged = self._apply_to(records, event.entry, event.version, subject, target)
            moved = target != link.record_id
            applied = Result.applied("moved to the record the correction matches" if moved else "amended")
            results.append((subject.role, unchanged or applied))
        records.entries.saw(event.entry, event.version)
        return _combine(results, "the corrected entry names nobody this department keeps records of")

    def _voided(self, event: RegistrationVoided, records: RecordsT) -> Result:
        """A voided entry never happened: every record it changed is put back as it was."""
        state = records.entries.state(event.entry)
        links = records.entries.links(event.entry)
        if state is not None and state[1] == "voided":
            return Result.applied("already voided") if links else Result.no_matching_record("already voided")
        for link in reversed(links):
            self._undo_link(records, link)
        records.entries.saw(event.entry, event.version, "voided")
        if not links:
            return Result.no_matching_record("no record was changed by this entry")
        return Result.applied(f"restored {len(links)} record(s)")

    def _withdrawn(self, event: Withdrawal, records: RecordsT) -> Result:
        """The entry became one this department may not see (a stillbirth): undo what it did, but it still stands.

        It stays ``current`` in the entry log, so a later correction (back to a live birth) is applied afresh.
        """
        links = records.entries.links(event.entry)
        for link in reversed(links):
            self._undo_link(records, link)
        records.entries.saw(event.entry, event.version)
        if not links:
            return Result.no_matching_record("withdrawn; no record was changed by this entry")
        return Result.applied(f"withdrawn: restored {len(links)} record(s)")

    # A reviewer's decision --------------------------------------------------------------------------------

    def _resolve(self, event: Event, record_id: str, records: RecordsT) -> Result:
        """A reviewer chose the record: apply the entry to it, for the person in the entry still unmatched.

        The decision is about the entry as it now stands: when a later version has been applied since the event
        was queued (or the queued event arrived late and the entry was replayed), that version is applied to the
        chosen record. The decision is kept with the version, so a replay of the entry makes it again. When
        another person in the entry (the other party to a marriage) still needs a reviewer, the outcome is
        needs_review with their candidates, and the review stays open for them.
        """
        entries = records.entries
        state = entries.state(event.entry)
        if state is not None and state[1] == "voided":
            return Result.no_matching_record("entry was voided before the review")
        superseded = Result.no_matching_record(
            f"superseded by version {state[0] if state else 0}; the later version was applied"
        )
        reviewed_older = state is not None and state[0] > event.version
        if reviewed_older:
            assert state is not None
            current = [kept for kept in entries.versions(event.entry) if kept.version == state[0]]
            if not current or isinstance(current[0], RegistrationVoided):
                return superseded
            event = current[0]
        links = entries.links(event.entry)
        if any(link.record_id == record_id for link in links):
            return Result.applied("already applied to this record")
        pending = self._pending(records, event)
        if not pending:
            return superseded if reviewed_older else Result.applied("already applied")
        subject = self._which(records, pending, record_id)
        unchanged = self._apply_to(records, event.entry, event.version, subject, record_id)
        entries.decide(event.entry, event.version, subject.role, record_id)
        entries.saw(event.entry, event.version)
        result = unchanged or Result.applied(f"{subject.role}: applied to the reviewed record")
        return self._still_waiting(records, pending, subject, result)

    def _decline(self, event: Event, party: str | None, records: RecordsT) -> Result:
        """A reviewer says no record matches one person in the entry (``party``, their role): only that person.

        Another person in the entry still waiting for a reviewer keeps the item open; with several waiting the
        reviewer must say which one they mean.
        """
        state = records.entries.state(event.entry)
        if state is not None and (state[1] == "voided" or state[0] > event.version):
            return Result.no_matching_record("reviewer: no record matches (the entry has changed since)")
        pending = self._pending(records, event)
        waiting = [s for s in pending if self._match(records, s.person).needs_review]
        roles = ", ".join(s.role for s in waiting) or "nobody"
        if party is None and len(waiting) > 1:
            raise ValueError(f"several people in this entry await a reviewer ({roles}); name the one no record matches")
        if party is not None and party not in {s.role for s in waiting}:
            raise ValueError(f"{party} does not await a reviewer in this entry (awaiting: {roles})")
        subject = next((s for s in waiting if party in (None, s.role)), None)
        if subject is None:
            return Result.no_matching_record("reviewer: no record matches")
        records.entries.no_match(event.entry, subject.role, event.version)
        records.entries.saw(event.entry, event.version)
        note = f"{subject.role}: reviewer: no record matches"
        applied = bool(records.entries.links(event.entry))  # the other party was applied: so is the entry
        result = Result.applied(note) if applied else Result.no_matching_record(note)
        return self._still_waiting(records, pending, subject, result)

    def _pending(self, records: RecordsT, event: Event) -> list[_Subject]:
        """People in the entry neither applied to a record nor decided by a reviewer to match none."""
        decided = {link.role for link in records.entries.links(event.entry)}
        decided |= records.entries.no_match_roles(event.entry, event.version)
        return [subject for subject in self._subjects(_details(event)) if subject.role not in decided]

    def _still_waiting(self, records: RecordsT, pending: list[_Subject], decided: _Subject, result: Result) -> Result:
        """``result`` for the person just decided, or needs_review while another person still waits."""
        waiting = [(other.role, self._match(records, other.person)) for other in pending if other is not decided]
        waiting = [(role, match) for role, match in waiting if match.needs_review]
        if not waiting:
            return result
        first = result.note if result.note.startswith(f"{decided.role}: ") else f"{decided.role}: {result.note}"
        note = "; ".join([first, *(f"{role}: {m.reason}" for role, m in waiting)])
        return Result.needs_review(note, tuple(c for _, match in waiting for c in match.candidates))

    def _which(self, records: RecordsT, pending: list[_Subject], record_id: str) -> _Subject:
        """The unmatched person the reviewer's record belongs to."""
        known = records.people.get(record_id)
        if known is None:
            raise LookupError(f"{self.department.name} has no record {record_id}")
        if len(pending) == 1:
            return pending[0]
        fits = [s for s in pending if s.person.date_of_birth == known.date_of_birth] or [
            s for s in pending if name_key(s.person.given_names, s.person.family_name) == known.name_key
        ]
        if len(fits) != 1:
            raise ValueError("cannot tell which person in the entry the chosen record is; resolve it by hand")
        return fits[0]
