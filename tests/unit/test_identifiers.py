"""Identifier format rules: what is accepted, how it is normalised, and that errors never quote the value."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pydantic import ValidationError

from schemas.identifiers import (
    nhs_check_digit,
    normalise_driving_licence_number,
    normalise_nhs_number,
    normalise_nino,
    normalise_passport_number,
    normalise_postcode,
)
from schemas.models import Address, Identifiers

Check = Callable[[str], str]


def assert_rejected(check: Check, value: str, rule: str) -> None:
    """``check`` rejects ``value`` with a message naming ``rule`` and quoting no part of the value."""
    with pytest.raises(ValueError, match=rule) as caught:
        check(value)
    message = str(caught.value)
    compact = "".join(value.split()).upper()
    for shown in {value.strip(), compact, compact.lower()}:
        if len(shown) >= 4:
            assert shown not in message, "the error quotes the value"
    assert repr(value) not in message


# --- National Insurance number -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "normalised"),
    [
        ("AB123456C", "AB123456C"),
        ("CE654321A", "CE654321A"),
        ("JH112233B", "JH112233B"),
        ("WE778899D", "WE778899D"),
        ("OA000001A", "OA000001A"),  # O is allowed first, only not second
        ("ab123456c", "AB123456C"),
        ("AB 12 34 56 C", "AB123456C"),
        ("  ab 123456 c\t", "AB123456C"),
    ],
)
def test_nino_valid_and_normalised(value: str, normalised: str) -> None:
    assert normalise_nino(value) == normalised


@pytest.mark.parametrize("suffix", "ABCD")
def test_nino_every_suffix_a_to_d_is_valid(suffix: str) -> None:
    assert normalise_nino(f"AB123456{suffix}") == f"AB123456{suffix}"


@pytest.mark.parametrize("suffix", "EFGHIJKLMNOPQRSTUVWXYZ")
def test_nino_suffix_after_d_is_invalid(suffix: str) -> None:
    assert_rejected(normalise_nino, f"AB123456{suffix}", "suffix must be A, B, C or D")


@pytest.mark.parametrize("letter", "DFIQUV")
def test_nino_prefix_never_starts_with_d_f_i_q_u_v(letter: str) -> None:
    assert_rejected(normalise_nino, f"{letter}A123456C", "prefix letters are not allowed")


@pytest.mark.parametrize("letter", "DFIQUVO")
def test_nino_second_letter_is_never_d_f_i_q_u_v_or_o(letter: str) -> None:
    assert_rejected(normalise_nino, f"A{letter}123456C", "prefix letters are not allowed")


def test_nino_hmrc_example_qq_is_not_a_valid_prefix() -> None:
    assert_rejected(normalise_nino, "QQ123456C", "prefix letters are not allowed")


@pytest.mark.parametrize("prefix", ["BG", "GB", "KN", "NK", "NT", "TN", "ZZ"])
def test_nino_unissued_prefixes_are_invalid(prefix: str) -> None:
    assert_rejected(normalise_nino, f"{prefix}123456A", "never issued")
    assert_rejected(normalise_nino, f"{prefix.lower()} 12 34 56 a", "never issued")


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("AB12345C", "9 characters"),
        ("AB1234567C", "9 characters"),
        ("", "9 characters"),
        ("A1B23456C", "2 letters, 6 digits and a suffix letter"),
        ("AB12345CC", "2 letters, 6 digits and a suffix letter"),
        ("AB1234567", "2 letters, 6 digits and a suffix letter"),
        ("AB-123456", "2 letters, 6 digits and a suffix letter"),
        ("AB\u0661\u0662\u0663\u0664\u0665\u0666C", "2 letters, 6 digits and a suffix letter"),  # Arabic-Indic
    ],
)
def test_nino_shape_errors(value: str, rule: str) -> None:
    assert_rejected(normalise_nino, value, rule)


# --- NHS number --------------------------------------------------------------------------------------------------

# Checked by hand: 9434765919 is the NHS's published example; 4000000020 has remainder 0, so check digit 0.
VALID_NHS = ["9434765919", "4010232137", "9990548609", "4000000020", "4000000160"]


@pytest.mark.parametrize("number", VALID_NHS)
def test_nhs_number_valid(number: str) -> None:
    assert normalise_nhs_number(number) == number


@pytest.mark.parametrize(
    "value", ["943 476 5919", "943-476-5919", " 943 - 476 - 5919 ", "9434 76\t5919", "943476-5919"]
)
def test_nhs_number_spaces_and_hyphens_are_removed(value: str) -> None:
    assert normalise_nhs_number(value) == "9434765919"


@pytest.mark.parametrize("number", VALID_NHS)
def test_nhs_number_every_other_check_digit_is_wrong(number: str) -> None:
    for digit in "0123456789":
        if digit != number[9]:
            assert_rejected(normalise_nhs_number, number[:9] + digit, "check digit")


def test_nhs_check_digit_computes_modulus_11() -> None:
    # 9*10 + 4*9 + 3*8 + 4*7 + 7*6 + 6*5 + 5*4 + 9*3 + 1*2 = 299; 299 % 11 = 2; 11 - 2 = 9
    assert nhs_check_digit("943476591") == 9
    # 4*10 + 2*2 = 44, remainder 0: 11 - 0 = 11, which is written as 0
    assert nhs_check_digit("400000002") == 0


@pytest.mark.parametrize("first_nine", ["123456789", "400000008", "400000011"])
def test_nhs_check_digit_10_means_no_valid_number(first_nine: str) -> None:
    # 123456789: 10+18+24+28+30+30+28+24+18 = 210; 210 % 11 = 1; 11 - 1 = 10, which no single digit can be
    assert nhs_check_digit(first_nine) is None
    for digit in "0123456789":
        assert_rejected(normalise_nhs_number, first_nine + digit, "check digit")


@pytest.mark.parametrize(
    "value",
    ["943476591", "94347659190", "", "943476591X", "NHS9434765", "943.476.5919", "\u0669434765919"],
)
def test_nhs_number_must_be_ten_ascii_digits(value: str) -> None:
    assert_rejected(normalise_nhs_number, value, "must be 10 digits")


# --- Postcode ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "normalised"),
    [
        ("M1 1AE", "M1 1AE"),  # A9 9AA
        ("B33 8TH", "B33 8TH"),  # A99 9AA
        ("CR2 6XH", "CR2 6XH"),  # AA9 9AA
        ("DN55 1PT", "DN55 1PT"),  # AA99 9AA
        ("W1A 0AX", "W1A 0AX"),  # A9A 9AA
        ("EC1A 1BB", "EC1A 1BB"),  # AA9A 9AA
        ("SW1A 2AA", "SW1A 2AA"),
        ("LS1 3AD", "LS1 3AD"),
        ("BT1 1AA", "BT1 1AA"),
        ("W1J 7NT", "W1J 7NT"),
        ("NW1W 9BE", "NW1W 9BE"),
        ("GIR 0AA", "GIR 0AA"),
        ("sw1a2aa", "SW1A 2AA"),
        ("gir0aa", "GIR 0AA"),
        ("m11ae", "M1 1AE"),
        ("  ec1a   1bb ", "EC1A 1BB"),
        ("Dn551pt", "DN55 1PT"),
    ],
)
def test_postcode_valid_shapes_normalised(value: str, normalised: str) -> None:
    assert normalise_postcode(value) == normalised


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("M1 1A", "5 to 7 characters"),
        ("SW1A 2AAA", "5 to 7 characters"),
        ("", "5 to 7 characters"),
        ("Q1 1AA", "UK postcode format"),  # Q, V, X never first
        ("V1 1AA", "UK postcode format"),
        ("X1 1AA", "UK postcode format"),
        ("AI1 1AA", "UK postcode format"),  # I, J, Z never second
        ("AJ1 1AA", "UK postcode format"),
        ("AZ1 1AA", "UK postcode format"),
        ("W1I 0AX", "UK postcode format"),  # A9A: third letter from ABCDEFGHJKPSTUW
        ("EC1C 1BB", "UK postcode format"),  # AA9A: fourth letter from ABEHMNPRVWXY
        ("M1 1CA", "UK postcode format"),  # inward letters never C, I, K, M, O, V
        ("M1 1AI", "UK postcode format"),
        ("M1 1AK", "UK postcode format"),
        ("M1 1AM", "UK postcode format"),
        ("M1 1OA", "UK postcode format"),
        ("M1 1AV", "UK postcode format"),
        ("M1 AAA", "UK postcode format"),  # inward code starts with a digit
        ("11 1AA", "UK postcode format"),
        ("M111 1AA", "UK postcode format"),
        ("SW1A-2AA", "5 to 7 characters"),
        ("M1-1AE", "UK postcode format"),
        ("GIR 0AB", "UK postcode format"),
        ("SW1A \u0662AA", "UK postcode format"),
    ],
)
def test_postcode_invalid(value: str, rule: str) -> None:
    assert_rejected(normalise_postcode, value, rule)


# --- Driving licence number --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "normalised"),
    [
        ("MORGA753116SM9IJ", "MORGA753116SM9IJ"),  # woman born March 1976 (month 53)
        ("MORGA703116SM9IJ", "MORGA703116SM9IJ"),  # man born March 1976
        ("LI999802051J99AB", "LI999802051J99AB"),  # short surname and one initial padded with 9
        ("SMITH801011JA9AA", "SMITH801011JA9AA"),
        ("SMITH812011JA9AA", "SMITH812011JA9AA"),  # month 12
        ("SMITH851011JA9AA", "SMITH851011JA9AA"),  # month 51
        ("SMITH862011JA9AA", "SMITH862011JA9AA"),  # month 62
        ("morga 753116 sm9ij", "MORGA753116SM9IJ"),
    ],
)
def test_driving_licence_valid(value: str, normalised: str) -> None:
    assert normalise_driving_licence_number(value) == normalised


@pytest.mark.parametrize("month", ["00", "13", "50", "63", "99"])
def test_driving_licence_month_must_be_01_to_12_or_51_to_62(month: str) -> None:
    assert_rejected(normalise_driving_licence_number, f"SMITH8{month}011JA9AA", "month of birth")


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("MORGA753116SM9I", "16 characters"),
        ("MORGA753116SM9IJ3", "16 characters"),
        ("", "16 characters"),
        ("MORG1753116SM9IJ", "DVLA layout"),  # surname part is letters or 9
        ("MORGA75311XSM9IJ", "DVLA layout"),  # date part is digits
        ("MORGA7531161M9IJ", "DVLA layout"),  # initials are letters or 9
        ("MORGA753116SMXIJ", "DVLA layout"),  # then one digit
        ("MORGA753116SM9I-", "DVLA layout"),
        ("MORGA\u0667\u0665\u0663\u0661\u0661\u0666SM9IJ", "DVLA layout"),
    ],
)
def test_driving_licence_invalid(value: str, rule: str) -> None:
    assert_rejected(normalise_driving_licence_number, value, rule)


# --- Passport number ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "normalised"), [("123456789", "123456789"), ("012345678", "012345678"), (" 123 456 789 ", "123456789")]
)
def test_passport_valid(value: str, normalised: str) -> None:
    assert normalise_passport_number(value) == normalised


@pytest.mark.parametrize(
    "value", ["12345678", "1234567890", "", "A12345678", "12345678X", "123-456-789", "\u0661\u0662\u0663456789"]
)
def test_passport_must_be_nine_digits(value: str) -> None:
    assert_rejected(normalise_passport_number, value, "9 digits")


# --- through the models: the field is named, the value never appears ---------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("nino", "TN123456A"),
        ("nhs_number", "9434765918"),
        ("driving_licence_number", "SMITH813011JA9AA"),
        ("passport_number", "98765432X"),
    ],
)
def test_model_error_names_the_field_not_the_value(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Identifiers(**{field: value})
    assert [error["loc"] for error in caught.value.errors()] == [(field,)]
    assert value not in str(caught.value)


def test_address_postcode_error_names_the_field_not_the_value() -> None:
    with pytest.raises(ValidationError) as caught:
        Address(lines=["1 Park Row"], town="Leeds", postcode="QQ1 1QQ")
    assert [error["loc"] for error in caught.value.errors()] == [("postcode",)]
    assert "QQ1 1QQ" not in str(caught.value)


def test_models_store_the_normalised_identifiers() -> None:
    identifiers = Identifiers(
        nino="ab 12 34 56 c",
        nhs_number="943-476-5919",
        driving_licence_number="morga753116sm9ij",
        passport_number="123 456 789",
    )
    assert identifiers.model_dump() == {
        "nino": "AB123456C",
        "nhs_number": "9434765919",
        "driving_licence_number": "MORGA753116SM9IJ",
        "passport_number": "123456789",
    }
    assert Address(lines=["1 Park Row"], town="Leeds", postcode="ls13ad").postcode == "LS1 3AD"
