"""A reviewer's answers for an entry's person (``EntryLog.reviewed``, one query) read back exactly as ``decision`` and
``no_match_roles`` give them, on both stores: matching asks this for every person of every event."""

from __future__ import annotations

from consumers import tax
from consumers.kit.life_events import EntryLog
from schemas.topics import Register
from tests.support.department_stores import Opener
from tests.support.factories import make_entry


def test_reviewed_reads_decisions_and_no_match_as_the_two_queries_do(open_department: Opener) -> None:
    store = open_department(tax.department)
    chosen, refused, untouched = (
        make_entry(Register.DEATH, 1),
        make_entry(Register.DEATH, 2),
        make_entry(Register.DEATH, 3),
    )
    with store.transaction() as transaction:
        log = EntryLog(transaction)
        log.decide(chosen, 2, "deceased", "T-1")
        log.no_match(refused, "mother", 1)
    with store.transaction() as transaction:
        log = EntryLog(transaction)
        cases = [
            (chosen, 2, "deceased"),
            (chosen, 1, "deceased"),  # another version: a correction asks afresh
            (chosen, 2, "spouse"),
            (refused, 1, "mother"),
            (refused, 2, "mother"),
            (refused, 1, "father"),
            (untouched, 1, "deceased"),
        ]
        got = [log.reviewed(entry, version, role) for entry, version, role in cases]
        expected = [
            (log.decision(entry, version, role), role in log.no_match_roles(entry, version))
            for entry, version, role in cases
        ]
    assert got == expected
    assert got[0] == ("T-1", False)
    assert got[3] == (None, True)
    assert got[6] == (None, False)


def test_history_reads_state_and_kept_versions_as_the_two_queries_do(open_department: Opener) -> None:
    store = open_department(tax.department)
    seen, kept_only, untouched = (
        make_entry(Register.DEATH, 1),
        make_entry(Register.DEATH, 2),
        make_entry(Register.DEATH, 3),
    )
    with store.transaction() as transaction:
        log = EntryLog(transaction)
        log.saw(seen, 3, "voided")
        transaction.execute(
            "INSERT INTO life_event_versions VALUES (?, ?, ?, ?)", (seen.key, 1, "DeathRegistered", "{}")
        )
        transaction.execute(
            "INSERT INTO life_event_versions VALUES (?, ?, ?, ?)", (seen.key, 3, "RegistrationVoided", "{}")
        )
        transaction.execute(
            "INSERT INTO life_event_versions VALUES (?, ?, ?, ?)", (kept_only.key, 2, "DeathRegistered", "{}")
        )
    with store.transaction() as transaction:
        log = EntryLog(transaction)
        for entry in (seen, kept_only, untouched):
            assert log.history(entry) == (log.state(entry), log.kept_versions(entry))
        assert log.history(seen) == ((3, "voided"), {1, 3})
        assert log.history(kept_only) == (None, {2})
        assert log.history(untouched) == (None, set())
