"""Plausibility rules of the contract (pure): no registration dated in the future, ages within human limits.

Each rule refuses with its own text, naming the field and the rule and never the value; the simulator and the test
factories never trip them (except through the errors they inject on purpose, which stay plausible).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from civreg.commands.simulate import simulate_app
from producers.simulation import SimulationRates, SimulationReachesToday, simulate_registrations
from schemas.models import (
    CLOCK_SKEW,
    EVENT_MODELS,
    MAX_AGE_YEARS,
    MAX_MOTHER_AGE_AT_BIRTH,
    MAX_SECOND_PARENT_AGE_AT_BIRTH,
    MIN_AGE_TO_MARRY,
    MIN_PARENT_AGE_AT_BIRTH,
    Event,
    age_on,
    latest_registration_date,
)
from tests.support.factories import (
    all_event_examples,
    make_birth,
    make_civil_partnership,
    make_correction,
    make_death,
    make_marriage,
    make_partner,
    make_person,
)

BORN = date(2024, 2, 20)  # the factories' child
MARRIED = date(2024, 3, 9)  # the factories' marriage
FORMED = date(2024, 3, 2)  # the factories' civil partnership


def _refused(build: Callable[[], object]) -> str:
    with pytest.raises(ValidationError) as caught:
        build()
    return str(caught.value)


def _born_aged(years: int, on: date) -> date:
    """A date of birth that makes someone exactly ``years`` old on ``on`` (their birthday)."""
    return on.replace(year=on.year - years)


def _today() -> date:
    return datetime.now(UTC).date()


# ---- no date in the future --------------------------------------------------------------------------------------


def test_a_registration_dated_after_today_is_refused_allowing_a_day_of_clock_skew() -> None:
    assert latest_registration_date() - _today() == CLOCK_SKEW == timedelta(days=1)
    tomorrow = _today() + CLOCK_SKEW
    assert make_death(date_of_death=_today(), date_of_registration=tomorrow).death.date_of_registration == tomorrow
    later = _today() + timedelta(days=2)
    text = _refused(lambda: make_death(date_of_death=_today(), date_of_registration=later))
    assert "date_of_registration is in the future (after today)" in text
    assert later.isoformat() not in text


@pytest.mark.parametrize(
    "build",
    [
        lambda day: make_birth(date_of_birth=day, date_of_registration=day),
        lambda day: make_death(date_of_death=day, date_of_registration=day),
        lambda day: make_marriage(date_of_marriage=day, date_of_registration=day),
        lambda day: make_civil_partnership(date_of_formation=day, date_of_registration=day),
    ],
    ids=["birth", "death", "marriage", "civil partnership"],
)
def test_every_register_refuses_a_future_registration(build: Callable[[date], Event]) -> None:
    assert "date_of_registration is in the future" in _refused(lambda: build(date(2999, 1, 1)))


def test_the_future_death_of_the_issue_is_refused() -> None:
    # The reported case: a date of death after its registration (so, today, in the future).
    text = _refused(lambda: make_death(date_of_death=date(2024, 3, 20), date_of_registration=date(2024, 3, 14)))
    assert "date_of_registration is before date_of_death" in text


def test_a_correction_is_held_to_the_same_rules() -> None:
    death = make_death()
    text = _refused(lambda: make_correction(of=death, date_of_death=date(2024, 3, 20)))
    assert "date_of_registration is before date_of_death" in text


# ---- ages within human limits ---------------------------------------------------------------------------------


def test_a_deceased_born_in_1800_is_refused() -> None:
    text = _refused(lambda: make_death(date_of_birth=date(1800, 1, 1)))
    assert "deceased.date_of_birth gives an age over 125 at the death" in text
    assert "1800" not in text


def test_the_oldest_plausible_deceased_is_accepted() -> None:
    assert MAX_AGE_YEARS == 125
    died = date(2024, 3, 10)
    assert make_death(date_of_birth=_born_aged(MAX_AGE_YEARS, died), date_of_death=died)
    assert "over 125" in _refused(lambda: make_death(date_of_birth=_born_aged(126, died), date_of_death=died))


def test_a_mother_born_in_1850_on_a_2025_birth_is_refused() -> None:
    mother = make_person("Sarah Jane", "Morgan", date(1850, 6, 1))
    text = _refused(
        lambda: make_birth(date_of_birth=date(2025, 2, 1), date_of_registration=date(2025, 2, 20), mother=mother)
    )
    assert "mother.date_of_birth gives an age over 75 at the birth" in text
    assert "1850" not in text


@pytest.mark.parametrize(
    ("age", "rule"),
    [
        (MIN_PARENT_AGE_AT_BIRTH - 1, "mother.date_of_birth gives an age under 10 at the birth"),
        (MIN_PARENT_AGE_AT_BIRTH, None),
        (MAX_MOTHER_AGE_AT_BIRTH, None),
        (MAX_MOTHER_AGE_AT_BIRTH + 1, "mother.date_of_birth gives an age over 75 at the birth"),
        (-1, "mother.date_of_birth gives an age under 10 at the birth"),  # born after her child
    ],
)
def test_a_mothers_age_at_the_birth(age: int, rule: str | None) -> None:
    mother = make_person("Sarah Jane", "Morgan", _born_aged(age, BORN))
    if rule is None:
        assert make_birth(mother=mother).birth.mother == mother
    else:
        assert rule in _refused(lambda: make_birth(mother=mother))


@pytest.mark.parametrize(
    ("age", "rule"),
    [
        (MIN_PARENT_AGE_AT_BIRTH - 1, "second_parent.date_of_birth gives an age under 10 at the birth"),
        (MAX_SECOND_PARENT_AGE_AT_BIRTH, None),
        (MAX_SECOND_PARENT_AGE_AT_BIRTH + 1, "second_parent.date_of_birth gives an age over 100 at the birth"),
    ],
)
def test_a_second_parents_age_at_the_birth(age: int, rule: str | None) -> None:
    parent = make_person("James", "Morgan", _born_aged(age, BORN))
    if rule is None:
        assert make_birth(second_parent=parent).birth.second_parent == parent
    else:
        assert rule in _refused(lambda: make_birth(second_parent=parent))


def test_a_parent_without_a_date_of_birth_is_not_judged() -> None:
    assert make_birth(mother=make_person("Sarah Jane", "Morgan", None)).birth.mother is not None


@pytest.mark.parametrize("party", ["party_1", "party_2"])
def test_parties_to_a_marriage_are_at_least_16_and_at_most_125(party: str) -> None:
    assert MIN_AGE_TO_MARRY == 16

    def marry(age: int) -> Event:
        person = make_person("Emily", "Clarke", _born_aged(age, MARRIED), nino="CE654321A")
        return make_marriage(**{party: make_partner(person)})  # type: ignore[arg-type]

    assert marry(MIN_AGE_TO_MARRY) and marry(MAX_AGE_YEARS)
    assert f"{party}.person.date_of_birth gives an age under 16 at the marriage" in _refused(lambda: marry(15))
    assert f"{party}.person.date_of_birth gives an age over 125 at the marriage" in _refused(lambda: marry(126))


@pytest.mark.parametrize("partner", ["partner_1", "partner_2"])
def test_partners_in_a_civil_partnership_are_at_least_16_and_at_most_125(partner: str) -> None:
    def form(age: int) -> Event:
        person = make_person("David", "Patel", _born_aged(age, FORMED), nino="PR445566D")
        return make_civil_partnership(**{partner: make_partner(person)})  # type: ignore[arg-type]

    assert form(MIN_AGE_TO_MARRY) and form(MAX_AGE_YEARS)
    assert f"{partner}.person.date_of_birth gives an age under 16 at the formation" in _refused(lambda: form(15))
    assert f"{partner}.person.date_of_birth gives an age over 125 at the formation" in _refused(lambda: form(126))


def test_age_counts_whole_years_and_leap_days() -> None:
    assert age_on(date(2000, 2, 29), date(2016, 2, 28)) == 15
    assert age_on(date(2000, 2, 29), date(2016, 2, 29)) == 16
    assert age_on(date(2000, 3, 1), date(2000, 2, 29)) == -1


def test_text_fields_refuse_control_characters() -> None:
    text = _refused(lambda: make_death(place_of_death="Leeds\x00General"))
    assert "must be one line of text without control characters" in text
    assert "Leeds" not in text


# ---- the factories and the simulator stay plausible -------------------------------------------------------------


def test_factory_defaults_are_plausible() -> None:
    for event in all_event_examples():
        assert type(event).model_validate(event.model_dump()) == event


def test_the_simulator_stays_plausible_even_where_it_injects_errors() -> None:
    # Every entry corrected (its first version carries an injected error) and many voided: all must validate.
    rates = SimulationRates(correction_share=1.0, void_share=0.3)
    events = list(simulate_registrations(6_000, seed=77, rates=rates))
    assert sum(event.event_type == "RegistrationCorrected" for event in events) > 1_000
    for event in events:
        model = EVENT_MODELS[event.event_type]
        assert model.model_validate(event.model_dump()) == event


def test_the_simulator_refuses_to_date_registrations_after_today() -> None:
    with pytest.raises(SimulationReachesToday, match="give an earlier start"):
        list(simulate_registrations(10, start=_today() + timedelta(days=7)))
    with pytest.raises(SimulationReachesToday, match="would be dated after today"):
        list(simulate_registrations(50_000, start=_today() - timedelta(days=2)))


def test_the_simulate_command_says_so_in_one_line(tmp_path: Path) -> None:
    start = (_today() + timedelta(days=7)).isoformat()
    out = tmp_path / "events.jsonl"
    result = CliRunner().invoke(simulate_app, ["registrations", "--count", "5", "--start", start, "--out", str(out)])
    assert result.exit_code == 1
    assert result.output.strip().startswith("error: the simulated registrations would be dated after today")
    assert "Traceback" not in result.output
