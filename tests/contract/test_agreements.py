"""Data-sharing agreements: every department's agreement fits its declared handlers, and the runtime's
enforcement withholds what is outside it and strips the fields it excludes (pure: no broker, no store)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from consumers.departments import DEPARTMENTS
from consumers.runtime import Department, Result
from consumers.runtime.agreements import (
    AGREEMENTS_DIR,
    AgreementError,
    agreement_for,
    field_paths,
    load_agreement,
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
from tests.support.factories import make_birth, make_correction, make_death, make_marriage


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


_VALID = """
department: x
controller: Somebody
purpose: A reason
legal_gateway: Some Act 2000 s1
event_types: [DeathRegistered, RegistrationCorrected, RegistrationVoided]
stillbirths: false
"""


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('fields_excluded: ["death.place_of_death"]', "required field"),
        ('fields_excluded: ["**.no_such_field"]', "matches no field"),
        ("colour: blue", "unknown key"),
        ("stillbirths: maybe", "'stillbirths' must be true or false"),
    ],
)
def test_a_malformed_agreement_is_refused_at_load(tmp_path: Path, extra: str, message: str) -> None:
    body = _VALID.replace("stillbirths: false\n", "") if extra.startswith("stillbirths") else _VALID
    with pytest.raises(AgreementError, match=message):
        load_agreement(_write(tmp_path, body + extra + "\n"))


def test_an_unknown_event_type_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AgreementError, match="unknown event types BirthRecorded"):
        load_agreement(_write(tmp_path, _VALID.replace("DeathRegistered", "BirthRecorded")))


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


@pytest.mark.parametrize("name", sorted(DEPARTMENTS))
def test_minimising_without_revalidation_gives_what_deleting_the_keys_and_validating_gives(name: str) -> None:
    """The fast path (fields set back to their defaults on the model) equals the reference: dump, delete, validate."""
    from consumers.runtime.agreements import _remove
    from consumers.runtime.dispatch import content_digest
    from producers.simulation import simulate_registrations

    agreement = agreement_for(name)
    patterns = [pattern.split(".") for pattern in agreement.fields_excluded]
    stripped = 0
    for event in simulate_registrations(3000, seed=11):
        if agreement.withheld_because(event) is not None or agreement._withdraws(event):
            continue
        data = event.model_dump(mode="python")
        removed = sum(_remove(data, pattern) for pattern in patterns)
        expected = type(event).model_validate(data) if removed else event
        minimised = agreement.minimise(event)
        assert type(minimised) is type(expected)
        assert minimised.model_dump(mode="json") == expected.model_dump(mode="json")
        assert content_digest(minimised) == content_digest(expected)
        stripped += bool(removed)
    assert stripped > 0 or not agreement.fields_excluded
