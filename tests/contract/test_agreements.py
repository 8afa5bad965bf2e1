"""Data-sharing agreements: every department's agreement fits its declared handlers, and the runtime's
enforcement withholds what is outside it and keeps only the fields it allows (pure: no broker, no store)."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from consumers.departments import DEPARTMENTS
from consumers.runtime import Department, Result
from consumers.runtime.agreements import (
    AGREEMENTS_DIR,
    AgreementError,
    agreement_for,
    contract_paths,
    field_paths,
    load_agreement,
    load_agreements,
)
from schemas.models import (
    EVENT_MODELS,
    DeathRegistered,
    MarriageDetails,
    MarriageRegistered,
    RegistrationCorrected,
    RegistrationVoided,
)
from schemas.topics import Register
from tests.support.factories import all_event_examples, make_birth, make_correction, make_death, make_marriage


@pytest.mark.parametrize("name", sorted(DEPARTMENTS))
def test_every_department_has_an_agreement_that_fits_its_declared_handlers(name: str) -> None:
    department = DEPARTMENTS[name]
    agreement = agreement_for(name)
    assert agreement.problems(department) == []
    # Every agreed event type has a rule; every event type arriving on its registers is agreed.
    assert agreement.event_types <= department.handlers.keys()
    assert department.event_types == agreement.event_types
    assert agreement.registers == department.registers
    assert agreement.legal_gateway.split() == department.legal_gateway.split()


def test_every_agreement_file_belongs_to_a_department() -> None:
    assert {path.stem for path in AGREEMENTS_DIR.glob("*.yaml")} == set(DEPARTMENTS)


def test_cause_of_death_is_nowhere_on_the_bus() -> None:
    for model in EVENT_MODELS.values():
        assert not [path for path in field_paths(model) if "cause" in path], model.event_type


def test_no_department_has_a_use_for_stillbirths_and_none_receives_one() -> None:
    stillbirth = make_birth(stillbirth=True)
    live_birth = make_birth(entry_number=2)
    assert agreement_for("tax").withheld_because(stillbirth) == "stillbirth"
    assert agreement_for("tax").withheld_because(live_birth) is None
    for name in DEPARTMENTS:
        assert agreement_for(name).withheld_because(stillbirth) is not None


def test_a_birth_corrected_to_a_stillbirth_reaches_the_department_as_a_withdrawal_only() -> None:
    live_birth = make_birth()
    corrected_to_stillbirth = make_correction(of=live_birth, stillbirth=True)
    tax = agreement_for("tax")
    assert tax.withheld_because(corrected_to_stillbirth) is None  # it must undo what the live birth did
    seen = tax.minimise(corrected_to_stillbirth)
    assert isinstance(seen, RegistrationVoided)
    assert (seen.event_id, seen.entry, seen.version, seen.recorded_at, seen.register_office) == (
        corrected_to_stillbirth.event_id,
        corrected_to_stillbirth.entry,
        corrected_to_stillbirth.version,
        corrected_to_stillbirth.recorded_at,
        corrected_to_stillbirth.register_office,
    )
    # Nothing of the stillbirth itself travels with it.
    assert "stillbirth" not in seen.model_dump_json()
    # A department agreed no births has nothing to withdraw.
    assert agreement_for("pensions").withheld_because(corrected_to_stillbirth) is not None
    # A correction that leaves a live birth live is an ordinary correction.
    amended = make_correction(of=live_birth, place_of_birth="Leeds General Infirmary")
    assert isinstance(tax.minimise(amended), RegistrationCorrected)


def test_an_event_type_outside_the_agreement_is_withheld() -> None:
    assert agreement_for("passports").withheld_because(make_marriage()) == "not-in-agreement"
    assert agreement_for("pensions").withheld_because(make_birth()) == "not-in-agreement"
    assert agreement_for("pensions").withheld_because(make_death()) is None


def test_dvla_receives_no_occupations_and_no_other_departments_identifiers() -> None:
    dvla = agreement_for("dvla")
    marriage = make_marriage()
    assert marriage.marriage.party_1.occupation == "Nurse"
    seen = dvla.minimise(marriage)
    assert isinstance(seen, MarriageRegistered)
    for party in (seen.marriage.party_1, seen.marriage.party_2):
        assert party.occupation is None
        assert party.person.identifiers.nino is None
        assert party.person.identifiers.nhs_number is None
    assert seen.marriage.party_1.person.identifiers.driving_licence_number is not None
    assert seen.marriage.party_1.surname_after == "Hughes"  # what DVLA does need is kept
    corrected = dvla.minimise(make_correction(of=marriage, place_of_marriage="Civic Hall, Leeds"))
    assert isinstance(corrected, RegistrationCorrected) and isinstance(corrected.corrected, MarriageDetails)
    assert corrected.corrected.party_2.occupation is None
    death = dvla.minimise(make_death())
    assert isinstance(death, DeathRegistered) and death.death.marital_status is None


def test_the_electoral_register_gets_no_identifiers_at_all() -> None:
    seen = agreement_for("electoral").minimise(make_death())
    assert isinstance(seen, DeathRegistered)
    assert seen.death.deceased.identifiers.model_dump() == {
        "nino": None,
        "nhs_number": None,
        "driving_licence_number": None,
        "passport_number": None,
    }
    assert seen.death.deceased.address is not None and seen.death.date_of_death == date(2024, 3, 10)


def test_an_event_with_nothing_to_remove_is_passed_unchanged() -> None:
    death = make_death(nhs_number=None, driving_licence_number=None, passport_number=None, marital_status=None)
    assert agreement_for("pensions").minimise(death) is death


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "x.yaml"
    path.write_text(body, encoding="utf-8")
    return path


# A valid agreement: passports' own, under another name (its legal gateway last, for the cases below).
_VALID = (AGREEMENTS_DIR / "passports.yaml").read_text(encoding="utf-8").replace(
    "department: passports", "department: x"
).replace(
    "legal_gateway: >-\n  Registration Service Act 1953 s19AA; Identity Documents Act 2010 (passport records)\n", ""
) + "legal_gateway: Some Act 2000 s1\n"


def _line_of(body: str, text: str) -> int:
    return next(number for number, line in enumerate(body.splitlines(), start=1) if text in line)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            '    - "death.{date_of_registration,',
            '    - "death.{',
            "leaves out required field(s) death.date_of_registration",
        ),
        ('    - "reason"', '    - "no_such_field"', "'no_such_field' is not a field of RegistrationVoided"),
        ('    - "reason"', '    - "entry"', "'entry' is a record of RegistrationVoided: name its fields"),
        ('    - "reason"', '    - "**.reason"', "no wildcards"),
        ("  RegistrationVoided:", "  BirthRegistered:", "event type not in 'event_types'"),
        ("  RegistrationVoided:", "  BirthRecorded:", "unknown event type"),
        ("stillbirths: false", "stillbirths: maybe", "'stillbirths' must be true or false"),
        ("stillbirths: false", "stillbirths: false\ncolour: blue", "unknown key"),
        ("legal_gateway: Some Act 2000 s1", "legal_gateway: ''", "'legal_gateway' must be non-empty text"),
        ("legal_gateway: Some Act 2000 s1", "", "'legal_gateway' must be non-empty text"),
    ],
)
def test_a_malformed_agreement_is_refused_at_load_naming_the_file_and_line(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    assert old in _VALID
    body = _VALID.replace(old, new, 1)
    path = _write(tmp_path, body)
    with pytest.raises(AgreementError, match=re.escape(message)) as raised:
        load_agreement(path)
    if new.strip():
        assert str(raised.value).startswith(f"{path}:{_line_of(body, new.splitlines()[-1])}:")
    else:
        assert str(raised.value).startswith(str(path))


def test_the_valid_agreement_loads(tmp_path: Path) -> None:
    assert load_agreement(_write(tmp_path, _VALID)).legal_gateway == "Some Act 2000 s1"


def test_an_unknown_event_type_is_refused(tmp_path: Path) -> None:
    body = _VALID.replace("  - DeathRegistered", "  - BirthRecorded")
    with pytest.raises(AgreementError, match=f"x.yaml:{_line_of(body, 'BirthRecorded')}: unknown event types Bir"):
        load_agreement(_write(tmp_path, body))


def test_a_missing_agreement_means_the_department_cannot_start(tmp_path: Path) -> None:
    with pytest.raises(AgreementError, match="no data-sharing agreement"):
        agreement_for("tax", tmp_path)


def test_an_agreement_that_does_not_fit_its_department_says_how(tmp_path: Path) -> None:
    department: Department[object] = Department.declare(
        "x", registers={Register.DEATH, Register.BIRTH}, schema="", records=lambda tx: tx, legal_gateway="Other Act"
    )
    department.handles(DeathRegistered, RegistrationCorrected, RegistrationVoided)(lambda e, r: Result.applied())
    problems = load_agreement(_write(tmp_path, _VALID)).problems(department)
    assert any("legal gateway differs" in p for p in problems)
    assert any("covers registers [DEATH], department declares [BIRTH, DEATH]" in p for p in problems)
    assert any("handled event types outside the agreement: BirthRegistered" in p for p in problems)


# The agreements before allow-lists (PR for issue 11): what each department excluded. The allow-lists that replaced
# them must deliver exactly the same events, field for field.
_EXCLUDED_BEFORE = {
    "dvla": ("**.occupation", "**.identifiers.nino", "**.identifiers.nhs_number", "**.identifiers.passport_number",
             "*.marital_status", "*.surviving_partner"),
    "electoral": ("**.occupation", "**.identifiers", "*.marital_status", "*.surviving_partner"),
    "passports": ("**.identifiers.nino", "**.identifiers.nhs_number", "**.identifiers.driving_licence_number",
                  "*.marital_status", "*.surviving_partner"),
    "pensions": ("**.occupation", "**.identifiers.nhs_number", "**.identifiers.driving_licence_number",
                 "**.identifiers.passport_number"),
    "suppression": ("**.identifiers.driving_licence_number", "**.identifiers.passport_number", "**.sex",
                    "*.marital_status", "*.surviving_partner"),
    "tax": ("**.occupation", "**.identifiers.nhs_number", "**.identifiers.driving_licence_number",
            "**.identifiers.passport_number", "birth.second_parent", "corrected.second_parent"),
}  # fmt: skip


def _remove_before(data: Any, pattern: list[str]) -> None:
    """The exclusion algorithm the allow-lists replaced (``*`` one field name, ``**`` any number)."""
    if isinstance(data, list):
        for item in data:
            _remove_before(item, pattern)
        return
    if not isinstance(data, dict) or not pattern:
        return
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        _remove_before(data, rest)
        for value in data.values():
            _remove_before(value, pattern)
        return
    for key in [key for key in data if head in ("*", key)]:
        if rest:
            _remove_before(data[key], rest)
        else:
            del data[key]


@pytest.mark.parametrize("name", sorted(_EXCLUDED_BEFORE))
def test_the_allow_lists_deliver_exactly_what_the_exclusions_did(name: str) -> None:
    agreement = agreement_for(name)
    compared = 0
    for event in all_event_examples():
        if agreement.withheld_because(event) is not None or agreement.withdraws(event):
            continue
        before = event.model_dump(mode="python")
        for pattern in _EXCLUDED_BEFORE[name]:
            _remove_before(before, pattern.split("."))
        expected = type(event).model_validate(before)
        assert agreement.minimise(event) == expected, event.event_type
        compared += 1
    assert compared >= 5


def test_a_field_added_to_the_contract_reaches_no_department_until_an_agreement_names_it() -> None:
    for name in DEPARTMENTS:
        agreement = agreement_for(name)
        for event_type, allowed in agreement.fields_allowed.items():
            paths = contract_paths(event_type, agreement.registers)
            leaves = {p for p in paths if not any(q.startswith(f"{p}.") for q in paths)}
            assert allowed <= leaves  # named leaves only: nothing stands for fields not yet in the contract
    # Every allowed path is explicit; a new field under a shared record (death.deceased.new) matches none.
    assert "death.deceased.new_field" not in agreement_for("pensions").kept_paths("DeathRegistered")


def test_a_directory_without_agreements_is_an_error_not_an_empty_roster(tmp_path: Path) -> None:
    """A router pointed at the wrong CIVREG_CONFIG_DIR must stop, not deliver nothing and report success."""
    with pytest.raises(AgreementError, match="no agreement"):
        load_agreements(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AgreementError, match="no agreement"):
        load_agreements(tmp_path / "empty")
