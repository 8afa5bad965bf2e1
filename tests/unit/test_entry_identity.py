"""An entry's identity (pure): unique for all time as the General Register Office identifies it, each part validated,
the year tied to the date of registration, and a key that holds every part, unambiguously and without personal data."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.models import EntryReference, Register
from tests.support.factories import make_correction, make_death, make_entry

PARTS: dict[str, Any] = {
    "registration_district": "Leeds",
    "sub_district": "Leeds North",
    "register": Register.DEATH,
    "register_number": 3,
    "entry_number": 17,
    "year_of_registration": 2025,
}


def _error(build: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        build()
    text = str(caught.value)
    assert "input_value" not in text  # the models hide inputs
    return text


def test_the_key_holds_every_part_register_first() -> None:
    assert EntryReference(**PARTS).key == "DEATH/2025/Leeds/Leeds North/3/17"


@pytest.mark.parametrize("part", ["sub_district", "register_number", "entry_number", "year_of_registration"])
def test_entries_differing_in_any_one_part_have_different_keys(part: str) -> None:
    other = {**PARTS, part: "Leeds South" if part == "sub_district" else PARTS[part] + 1}
    assert EntryReference(**PARTS).key != EntryReference(**other).key


def test_a_slash_or_percent_in_a_name_cannot_make_two_entries_share_a_key() -> None:
    split_one_way = EntryReference(**{**PARTS, "registration_district": "A/B", "sub_district": "C"})
    split_another = EntryReference(**{**PARTS, "registration_district": "A", "sub_district": "B/C"})
    escaped_look_alike = EntryReference(**{**PARTS, "registration_district": "A%2FB", "sub_district": "C"})
    keys = {split_one_way.key, split_another.key, escaped_look_alike.key}
    assert len(keys) == 3
    assert all(key.count("/") == 5 for key in keys)


@pytest.mark.parametrize("register", list(Register))
def test_the_register_is_read_back_from_a_key(register: Register) -> None:
    entry = EntryReference(**{**PARTS, "register": register, "registration_district": "A/B"})
    assert EntryReference.register_of_key(entry.key) is register


@pytest.mark.parametrize(
    ("part", "value"),
    [
        ("sub_district", ""),
        ("sub_district", "   "),
        ("register_number", 0),
        ("entry_number", 0),
        ("year_of_registration", 1836),
        ("year_of_registration", 10_000),
    ],
)
def test_each_part_is_validated_naming_the_field(part: str, value: Any) -> None:
    text = _error(lambda: EntryReference(**{**PARTS, part: value}))
    assert text.splitlines()[1] == part


@pytest.mark.parametrize("part", ["sub_district", "register_number", "year_of_registration"])
def test_the_new_parts_are_required(part: str) -> None:
    parts = {name: value for name, value in PARTS.items() if name != part}
    assert f"{part}\n  Field required" in _error(lambda: EntryReference(**parts))


def test_a_registration_is_in_the_year_its_entry_says() -> None:
    death = make_death()
    wrong_year = make_entry(Register.DEATH, year=2023)
    text = _error(lambda: type(death).model_validate({**dict(death), "entry": wrong_year}))
    assert "entry.year_of_registration must be the year of date_of_registration" in text


def test_a_correction_cannot_move_an_entry_to_another_year() -> None:
    death = make_death(date_of_death=date(2024, 12, 28), date_of_registration=date(2024, 12, 31))
    assert death.entry.year_of_registration == 2024
    text = _error(lambda: make_correction(of=death, date_of_registration=date(2025, 1, 2)))
    assert "entry.year_of_registration must be the year of date_of_registration" in text
    assert make_correction(of=death, place_of_death="Home").entry == death.entry
