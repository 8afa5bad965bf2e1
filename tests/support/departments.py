"""Departments that exist only in tests, and the data-sharing agreements that let the runtime start them.

The runtime refuses a department without an agreement file (``deploy/agreements/<name>.yaml``); tests that
declare their own departments (a review desk, a copy of a department "added later") give them one here instead of
writing files into ``deploy/``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from consumers.runtime import Department, Result, Transaction
from consumers.runtime.agreements import Agreement, agreement_for, contract_paths
from schemas.models import DeathRegistered, RegistrationCorrected, RegistrationVoided
from schemas.topics import Register

__all__ = ["allow_test_departments", "copy_of", "review_desk"]

DESK_SCHEMA = """
CREATE TABLE IF NOT EXISTS desk_records (
    record_id  TEXT PRIMARY KEY,
    entry_key  TEXT NOT NULL,
    event_id   TEXT NOT NULL
);
"""


def review_desk(name: str = "deskcheck") -> Department[Transaction]:
    """A department that can never match a death on its own: every death waits for a person."""
    desk: Department[Transaction] = Department.declare(
        name,
        registers={Register.DEATH},
        schema=DESK_SCHEMA,
        records=lambda tx: tx,
        legal_gateway="Test gateway",
    )

    @desk.handles(DeathRegistered)
    def hold(event: DeathRegistered, tx: Transaction) -> Result:
        return Result.needs_review("two records share the date of birth", ("R-1", "R-2"))

    @desk.handles(RegistrationCorrected, RegistrationVoided)
    def ignore(event: Any, tx: Transaction) -> Result:
        return Result.no_matching_record("nothing applied to correct")

    @desk.resolves(DeathRegistered)
    def apply_to(event: DeathRegistered, record_id: str, tx: Transaction) -> Result:
        tx.execute("INSERT INTO desk_records VALUES (?, ?, ?)", (record_id, event.entry.key, str(event.event_id)))
        return Result.applied(f"record {record_id} marked deceased")

    return desk


def copy_of(department: Department[Any], name: str) -> Department[Any]:
    """The same rules under another name: its own consumer group, store and dead-letter topic."""
    return dataclasses.replace(department, name=name)


def _agreement(department: Department[Any], real: str | None) -> Agreement:
    if real is not None:
        return dataclasses.replace(agreement_for(real), department=department.name)
    return Agreement(
        department=department.name,
        controller="test",
        purpose="test",
        legal_gateway=department.legal_gateway,
        event_types=department.event_types,
        stillbirths=True,
        # A test department may see every field of its types (the allow-list names them all).
        fields_allowed={t: frozenset(contract_paths(t, department.registers)) for t in department.event_types},
    )


def allow_test_departments(
    monkeypatch: pytest.MonkeyPatch, *departments: Department[Any], copies: dict[str, str] | None = None
) -> None:
    """Let the runtime start ``departments``: copies (name -> original) share the original's agreement."""
    copies = copies or {}
    agreements = {d.name: _agreement(d, copies.get(d.name)) for d in departments}

    def agreement(name: str, directory: Path) -> Agreement:
        return agreements[name] if name in agreements else agreement_for(name, directory)

    monkeypatch.setattr("consumers.runtime.service.agreement_for", agreement)
