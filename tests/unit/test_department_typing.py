"""A department's declaration is typed: mypy rejects a handler for the wrong event type or records class.

Why: the seam where a new department is written (its ``rules.py``) must not throw strict typing away; a handler
taking a ``BirthRegistered`` under ``handles(DeathRegistered)``, or another department's records, is a mistake
mypy has to find before the department runs. These tests run mypy (as ``make lint`` does) on small modules.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from mypy import api

from consumers.runtime import Department, Outcome, Result, Transaction
from consumers.runtime.agreements import Withdrawal
from schemas.models import BirthRegistered, DeathRegistered, RegistrationVoided
from schemas.topics import Register

REPO = Path(__file__).resolve().parents[2]

_HEADER = """
from consumers.runtime import Department, Result, Transaction
from consumers.suppression import SuppressionList
from schemas.models import BirthRegistered, DeathRegistered
from schemas.topics import Register


class Letters:
    def __init__(self, transaction: Transaction) -> None:
        self.transaction = transaction


department = Department.declare("typed", registers={Register.DEATH}, schema="", records=Letters)
"""

RIGHT = """
@department.handles(DeathRegistered)
def stop_letters(event: DeathRegistered, records: Letters) -> Result:
    return Result.applied("stopped")


@department.resolves(DeathRegistered)
def stop_letters_to(event: DeathRegistered, record_id: str, records: Letters) -> Result:
    return Result.applied("stopped")


@department.declines(DeathRegistered)
def no_letters_to_stop(event: DeathRegistered, party: str | None, records: Letters) -> Result:
    return Result.no_matching_record("reviewer: no record matches")

"""

WRONG_CALL = (
    RIGHT
    + """

def call_with_a_birth(event: BirthRegistered, records: Letters) -> Result:
    return stop_letters(event, records)  # the decorated function keeps its own type (not Any)
"""
)

WRONG_EVENT = """
@department.handles(DeathRegistered)
def wrong_event(event: BirthRegistered, records: Letters) -> Result:
    return Result.applied("stopped")
"""

WRONG_RECORDS = """
@department.handles(DeathRegistered)
def wrong_records(event: DeathRegistered, records: SuppressionList) -> Result:
    return Result.applied("stopped")
"""

WRONG_RESOLVER = """
@department.resolves(DeathRegistered)
def wrong_resolver(event: DeathRegistered, record_id: str, records: SuppressionList) -> Result:
    return Result.applied("stopped")
"""

WRONG_DECLINER = """
@department.declines(DeathRegistered)
def wrong_decliner(event: BirthRegistered, party: str | None, records: Letters) -> Result:
    return Result.no_matching_record("reviewer: no record matches")
"""


def _mypy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **modules: str) -> dict[str, list[str]]:
    """mypy --strict (the project's configuration) over the given modules; error lines per module."""
    monkeypatch.setenv("MYPYPATH", str(REPO))
    paths = {}
    for name, body in modules.items():
        path = tmp_path / f"{name}.py"
        path.write_text(textwrap.dedent(_HEADER) + textwrap.dedent(body), encoding="utf-8")
        paths[name] = path
    out, err, _ = api.run(
        [
            "--config-file",
            str(REPO / "pyproject.toml"),
            "--cache-dir",
            str(REPO / ".mypy_cache"),
            "--no-error-summary",
            *map(str, paths.values()),
        ]
    )
    assert not err, err
    lines = out.splitlines()
    return {name: [line for line in lines if f"{name}.py" in line and ": error:" in line] for name in paths}


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """One mypy run over every snippet (mypy is slow to start; its verdicts are per module)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        return _mypy(
            tmp_path_factory.mktemp("typing"),
            monkeypatch,
            typed_right=RIGHT,
            typed_wrong_event=WRONG_EVENT,
            typed_wrong_records=WRONG_RECORDS,
            typed_wrong_resolver=WRONG_RESOLVER,
            typed_wrong_decliner=WRONG_DECLINER,
            typed_wrong_call=WRONG_CALL,
        )


def test_a_handler_of_the_declared_event_and_records_passes(checked: dict[str, list[str]]) -> None:
    assert checked["typed_right"] == []


def test_a_handler_for_another_event_type_is_a_mypy_error(checked: dict[str, list[str]]) -> None:
    [error] = checked["typed_wrong_event"]
    assert "BirthRegistered" in error
    assert "[arg-type]" in error


def test_a_handler_for_another_records_class_is_a_mypy_error(checked: dict[str, list[str]]) -> None:
    [error] = checked["typed_wrong_records"]
    assert "SuppressionList" in error
    assert "[arg-type]" in error


def test_a_resolver_for_another_records_class_is_a_mypy_error(checked: dict[str, list[str]]) -> None:
    [error] = checked["typed_wrong_resolver"]
    assert "SuppressionList" in error


def test_a_decliner_for_another_event_type_is_a_mypy_error(checked: dict[str, list[str]]) -> None:
    [error] = checked["typed_wrong_decliner"]
    assert "BirthRegistered" in error


def test_the_decorated_handler_keeps_its_type(checked: dict[str, list[str]]) -> None:
    [error] = checked["typed_wrong_call"]
    assert "BirthRegistered" in error


def test_a_handler_called_with_another_event_type_raises_naming_the_types() -> None:
    """The runtime routes by type; should anything call a rule with another event, it fails loudly, no data."""
    department = Department.declare("typed", registers={Register.DEATH}, schema="", records=lambda tx: tx)

    @department.handles(DeathRegistered)
    def stop_letters(event: DeathRegistered, records: Transaction) -> Result:
        return Result.applied("stopped")

    birth = BirthRegistered.model_construct()
    with pytest.raises(TypeError, match="declared for DeathRegistered, not BirthRegistered"):
        department.handlers["DeathRegistered"](birth, object())  # type: ignore[arg-type]


def test_a_decliner_called_with_another_event_type_raises_naming_the_types() -> None:
    department = Department.declare("typed", registers={Register.DEATH}, schema="", records=lambda tx: tx)

    @department.declines(DeathRegistered)
    def no_letters_to_stop(event: DeathRegistered, party: str | None, records: Transaction) -> Result:
        return Result.no_matching_record("reviewer: no record matches")

    birth = BirthRegistered.model_construct()
    with pytest.raises(TypeError, match="declared for DeathRegistered, not BirthRegistered"):
        department.decliners["DeathRegistered"](birth, None, object())  # type: ignore[arg-type]


def test_a_withdrawal_reaches_the_void_rule_it_travels_as() -> None:
    """A ``Withdrawal`` is a ``RegistrationVoided``: its typed void rule takes it."""
    department = Department.declare("typed", registers={Register.BIRTH}, schema="", records=lambda tx: tx)
    seen: list[RegistrationVoided] = []

    @department.handles(RegistrationVoided)
    def undo_the_birth(event: RegistrationVoided, records: object) -> Result:
        seen.append(event)
        return Result.applied("undone")

    withdrawal = Withdrawal.model_construct()
    assert department.handlers[RegistrationVoided.event_type](withdrawal, object()).outcome is Outcome.APPLIED
    assert seen == [withdrawal]
