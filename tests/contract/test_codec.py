"""The wire codec: Confluent framing, standard Avro bodies, and a clear reason for every message it cannot read."""

from __future__ import annotations

import copy
import io
import json
import struct
from datetime import date, datetime
from typing import Any

import fastavro
import pytest
from pydantic import ValidationError

from schemas.catalogue import EVENT_TYPES, event_schema
from schemas.codec import MAGIC_BYTE, Codec, DecodeError, LocalSchemaCatalogue, UnknownSchemaId, to_avro
from schemas.models import (
    DeathRegistered,
    EntryReference,
    Event,
    Register,
    RegistrationCorrected,
    RegistrationEvent,
    RegistrationVoided,
)
from tests.support.factories import (
    NINO,
    all_event_examples,
    make_birth,
    make_civil_partnership,
    make_correction,
    make_death,
    make_entry,
    make_marriage,
    make_person,
    make_void,
)

EXAMPLES = all_event_examples()
CODEC = Codec()


def _id(event: Event) -> str:
    return f"{event.event_type}-{event.entry.register.value}-{event.entry.entry_number}-v{event.version}"


def frame(schema_id: int, body: bytes, magic: int = MAGIC_BYTE) -> bytes:
    return struct.pack(">BI", magic, schema_id) + body


def avro_body(event_type: str, record: dict[str, Any]) -> bytes:
    """A body written straight from a record, bypassing the models (for bodies the models would refuse)."""
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, event_schema(event_type).parsed, record)
    return buffer.getvalue()


def _parsed(schema: dict[str, Any]) -> dict[str, Any]:
    """A standalone schema parsed by fastavro on its own."""
    parsed: dict[str, Any] = fastavro.parse_schema(schema, named_schemas={})  # type: ignore[assignment]
    return parsed


def raw_message(event: Event, mutate: Any) -> bytes:
    """The wire bytes of ``event`` after ``mutate`` changed its Avro record: valid Avro, perhaps not a valid event."""
    record = copy.deepcopy(to_avro(event))
    mutate(record)
    schema_id = LocalSchemaCatalogue().schema_id(event.event_type)
    return frame(schema_id, avro_body(event.event_type, record))


class FixedResolver:
    """A resolver with registry-like ids, and optionally other writer schemas under extra ids."""

    def __init__(self, extra: dict[int, dict[str, Any]] | None = None) -> None:
        self.ids = {event_type: 1000 + index for index, event_type in enumerate(EVENT_TYPES)}
        self.schemas = {schema_id: event_schema(t).parsed for t, schema_id in self.ids.items()}
        self.schemas.update(extra or {})

    def schema_id(self, event_type: str) -> int:
        return self.ids[event_type]

    def writer_schema(self, schema_id: int) -> dict[str, Any]:
        try:
            return self.schemas[schema_id]
        except KeyError:
            raise UnknownSchemaId(f"schema id {schema_id} unknown") from None


# --- round trips -------------------------------------------------------------------------------------------------


def test_examples_cover_every_event_type_and_register() -> None:
    assert {event.event_type for event in EXAMPLES} == set(EVENT_TYPES)
    assert {event.entry.register for event in EXAMPLES} == set(Register)
    corrected = {type(event.corrected).__name__ for event in EXAMPLES if isinstance(event, RegistrationCorrected)}
    assert corrected == {"BirthDetails", "DeathDetails", "MarriageDetails", "CivilPartnershipDetails"}


def test_factories_are_deterministic() -> None:
    assert all_event_examples() == EXAMPLES
    assert make_death() == make_death()
    assert make_death().event_id != make_death(entry_number=2).event_id
    assert len({event.event_id for event in EXAMPLES}) == len(EXAMPLES)


@pytest.mark.parametrize("event", EXAMPLES, ids=_id)
def test_encode_writes_magic_byte_and_big_endian_schema_id(event: Event) -> None:
    data = CODEC.encode(event)
    assert data[0] == 0
    assert data[1:5] == LocalSchemaCatalogue().schema_id(event.event_type).to_bytes(4, "big")
    assert len(data) > 5


@pytest.mark.parametrize("event", EXAMPLES, ids=_id)
def test_decode_returns_an_equal_event(event: Event) -> None:
    decoded = CODEC.decode(CODEC.encode(event))
    assert type(decoded) is type(event)
    assert decoded == event
    assert CODEC.encode(decoded) == CODEC.encode(event)


@pytest.mark.parametrize("event", EXAMPLES, ids=_id)
def test_body_is_standard_avro_for_plain_fastavro(event: Event) -> None:
    standalone = json.loads(event_schema(event.event_type).schema_str)
    schema = fastavro.parse_schema(standalone, named_schemas={})
    record: Any = fastavro.schemaless_reader(io.BytesIO(CODEC.encode(event)[5:]), schema)
    assert record["event_id"] == event.event_id
    assert record["recorded_at"] == event.recorded_at
    assert type(event).model_validate(record) == event


@pytest.mark.parametrize("event", EXAMPLES, ids=_id)
def test_body_is_byte_identical_with_apache_avro(event: Event) -> None:
    avro_io = pytest.importorskip("avro.io")
    avro_schema = pytest.importorskip("avro.schema")
    schema = avro_schema.parse(event_schema(event.event_type).schema_str)
    body = CODEC.encode(event)[5:]
    record = avro_io.DatumReader(schema).read(avro_io.BinaryDecoder(io.BytesIO(body)))
    assert type(event).model_validate(record) == event
    written = io.BytesIO()
    datum = {**event.model_dump(), "event_id": str(event.event_id)}  # Apache avro wants the uuid as text
    avro_io.DatumWriter(schema).write(datum, avro_io.BinaryEncoder(written))
    assert written.getvalue() == body


def test_resolver_ids_are_written_and_read() -> None:
    codec = Codec(FixedResolver())
    event = make_death()
    data = codec.encode(event)
    assert struct.unpack(">I", data[1:5]) == (1001,)
    assert codec.decode(data) == event
    with pytest.raises(DecodeError) as caught:
        CODEC.decode(data)  # id 1001 means nothing to the local catalogue
    assert caught.value.reason == "unknown-schema-id"


def test_newer_writer_schema_with_an_extra_field_still_decodes() -> None:
    newer = json.loads(event_schema("DeathRegistered").schema_str)
    details = next(field for field in newer["fields"] if field["name"] == "death")["type"]
    details["fields"].append({"name": "informant_relationship", "type": ["null", "string"], "default": None})
    codec = Codec(FixedResolver({77: _parsed(newer)}))
    event = make_death()
    record = to_avro(event)
    record["death"]["informant_relationship"] = "Daughter"
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(newer, named_schemas={}), record)
    assert codec.decode(frame(77, buffer.getvalue())) == event


def test_recorded_at_keeps_milliseconds_so_round_trips_are_exact() -> None:
    event = make_death(recorded_at=datetime.fromisoformat("2024-03-14T09:30:00.123456+01:00"))
    assert event.recorded_at.microsecond == 123000
    decoded = CODEC.decode(CODEC.encode(event))
    assert decoded == event
    assert decoded.recorded_at == datetime.fromisoformat("2024-03-14T08:30:00.123+00:00")


# --- what cannot be decoded, and why -----------------------------------------------------------------------------

VALID = CODEC.encode(make_death())


def _reason(data: bytes | None) -> DecodeError:
    with pytest.raises(DecodeError) as caught:
        CODEC.decode(data)
    assert isinstance(caught.value, ValueError)
    assert str(caught.value).startswith(f"{caught.value.reason}: ")
    return caught.value


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (None, "truncated"),
        (b"", "truncated"),
        (b"\x00", "truncated"),
        (VALID[:4], "truncated"),
        (VALID[:5], "avro-body-invalid"),
        (VALID[:40], "avro-body-invalid"),
        (VALID[:-1], "avro-body-invalid"),
        (VALID + b"\x00", "avro-body-invalid"),
        (VALID + b"trailing", "avro-body-invalid"),
        (frame(2, b"\xff" * 40), "avro-body-invalid"),
        (frame(2, b"\x01\x02\x03"), "avro-body-invalid"),
        (frame(6, VALID[5:]), "avro-body-invalid"),  # a death body under the void's schema id
        (b"\x01" + VALID[1:], "bad-magic-byte"),
        (b"\xff" + VALID[1:], "bad-magic-byte"),
        (b'{"event_id": "not avro"}', "bad-magic-byte"),
        (frame(0, VALID[5:]), "unknown-schema-id"),
        (frame(7, VALID[5:]), "unknown-schema-id"),
        (frame(2**32 - 1, VALID[5:]), "unknown-schema-id"),
    ],
    ids=[
        "none",
        "empty",
        "one-byte",
        "short-header",
        "header-only",
        "truncated-body",
        "last-byte-missing",
        "trailing-zero",
        "trailing-text",
        "garbage-ff",
        "garbage-short",
        "wrong-schema-id",
        "magic-1",
        "magic-255",
        "json",
        "schema-id-0",
        "schema-id-7",
        "schema-id-max",
    ],
)
def test_corrupt_input_reason(data: bytes | None, reason: str) -> None:
    assert _reason(data).reason == reason


def test_bad_magic_byte_detail_says_which_byte() -> None:
    assert _reason(b"\xff" + VALID[1:]).detail == "first byte is 255, expected 0"


def test_schema_id_of_a_non_event_schema() -> None:
    details = json.loads(json.dumps(event_schema("DeathRegistered").schema["fields"][5]["type"]))
    codec = Codec(FixedResolver({55: _parsed(details)}))
    with pytest.raises(DecodeError) as caught:
        codec.decode(frame(55, VALID[5:]))
    assert caught.value.reason == "unknown-event-type"


def _set_nino(record: dict[str, Any]) -> None:
    record["death"]["deceased"]["identifiers"]["nino"] = "QQ123456C"


def _set_postcode(record: dict[str, Any]) -> None:
    record["death"]["deceased"]["address"]["postcode"] = "ZZ99 9ZZ"


def _set_dob_after_death(record: dict[str, Any]) -> None:
    record["death"]["deceased"]["date_of_birth"] = date(2024, 3, 12)


def _set_registration_before_death(record: dict[str, Any]) -> None:
    record["death"]["date_of_registration"] = date(2024, 3, 1)


def _set_register(record: dict[str, Any]) -> None:
    record["entry"]["register"] = "BIRTH"


def _set_version(record: dict[str, Any]) -> None:
    record["version"] = 0


def _set_empty_name(record: dict[str, Any]) -> None:
    record["death"]["deceased"]["family_name"] = "   "


@pytest.mark.parametrize(
    ("mutate", "field", "rule", "value"),
    [
        (_set_nino, "death.deceased.identifiers.nino", "NINO prefix", "QQ123456C"),
        (_set_postcode, "death.deceased.address.postcode", "postcode", "ZZ99 9ZZ"),
        (_set_dob_after_death, "death", "date_of_death is before date_of_birth", "2024-03-12"),
        (_set_registration_before_death, "death", "date_of_registration is before date_of_death", "2024-03-01"),
        (_set_register, "(record)", "entry.register must be DEATH", None),
        (_set_version, "version", "must be at least 1", None),
        (_set_empty_name, "death.deceased.family_name", "must not be empty", None),
    ],
    ids=["nino", "postcode", "born-after-death", "registered-before-death", "register", "version", "empty-name"],
)
def test_valid_avro_breaking_a_model_rule_is_a_contract_violation(
    mutate: Any, field: str, rule: str, value: str | None
) -> None:
    error = _reason(raw_message(make_death(), mutate))
    assert error.reason == "contract-violation"
    assert error.detail.startswith(f"{field}: ")
    assert rule in error.detail
    if value is not None:
        assert value not in str(error)
    assert NINO not in str(error)
    assert "Morgan" not in str(error)
    assert isinstance(error.__cause__, ValidationError)
    assert value is None or value not in str(error.__cause__)


def test_contract_violation_inside_a_correction_names_the_field() -> None:
    correction = make_correction(of=make_death())

    def mutate(record: dict[str, Any]) -> None:
        record["corrected"][1]["deceased"]["identifiers"]["nhs_number"] = "9434765918"

    error = _reason(raw_message(correction, mutate))
    assert error.reason == "contract-violation"
    # only the kind the details are (not all four union members): one error, named by its path
    assert error.detail == (
        "corrected.DeathDetails.deceased.identifiers.nhs_number: NHS number check digit (modulus 11) does not match"
    )
    assert "9434765918" not in str(error)


def test_correction_details_of_no_known_kind() -> None:
    correction = make_correction(of=make_death())
    text = _model_error(
        lambda: RegistrationCorrected.model_validate({**dict(correction), "corrected": {"place": "Leeds"}})
    )
    assert "corrected\n  not birth, death, marriage or civil partnership details" in text


# --- model rules: each names its field or rule -------------------------------------------------------------------


def _model_error(build: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        build()
    text = str(caught.value)
    assert "input_value" not in text  # the models hide inputs: values are personal data
    return text


def test_entry_register_must_match_the_event_type() -> None:
    cases: list[tuple[RegistrationEvent, Register]] = [
        (make_death(), Register.BIRTH),
        (make_birth(), Register.DEATH),
        (make_marriage(), Register.CIVIL_PARTNERSHIP),
        (make_civil_partnership(), Register.MARRIAGE),
    ]
    for event, register in cases:
        model = type(event)
        fields = {**dict(event), "entry": make_entry(register)}
        text = _model_error(lambda model=model, fields=fields: model(**fields))
        assert f"entry.register must be {model.register_of_type.value} for {model.event_type}" in text


def test_registration_is_version_1() -> None:
    assert "registration's version must be 1" in _model_error(lambda: make_death(version=2))


@pytest.mark.parametrize("register", [Register.BIRTH, Register.MARRIAGE, Register.CIVIL_PARTNERSHIP])
def test_correction_details_must_be_of_the_entry_register(register: Register) -> None:
    correction = make_correction(of=make_death())
    text = _model_error(lambda: RegistrationCorrected(**{**dict(correction), "entry": make_entry(register)}))
    assert "corrected details must be of the same kind as entry.register" in text


def test_correction_of_a_death_with_birth_details_is_refused() -> None:
    birth_details = make_birth().birth
    text = _model_error(lambda: make_correction(of=make_death(), corrected=birth_details))
    assert "corrected details must be of the same kind as entry.register" in text


@pytest.mark.parametrize("version", [0, 1])
def test_correction_version_must_be_2_or_more(version: int) -> None:
    text = _model_error(lambda: make_correction(of=make_death(), version=version))
    assert "version" in text


def test_correction_version_1_names_the_rule() -> None:
    text = _model_error(lambda: make_correction(of=make_death(), version=1))
    assert "a correction's version must be 2 or more" in text


def test_void_version_must_be_2_or_more() -> None:
    assert "a void's version must be 2 or more" in _model_error(lambda: make_void(of=make_death(), version=1))


def test_version_must_fit_an_avro_int() -> None:
    text = _model_error(lambda: make_void(of=make_death(), version=2**31))
    assert "version" in text
    assert make_void(of=make_death(), version=2**31 - 1).version == 2**31 - 1


def test_date_of_death_before_date_of_birth() -> None:
    text = _model_error(lambda: make_death(date_of_birth=date(2024, 3, 11), date_of_death=date(2024, 3, 10)))
    assert "date_of_death is before date_of_birth" in text
    assert "2024-03-11" not in text


def test_date_of_registration_before_date_of_death() -> None:
    text = _model_error(lambda: make_death(date_of_death=date(2024, 3, 10), date_of_registration=date(2024, 3, 9)))
    assert "date_of_registration is before date_of_death" in text


def test_death_on_the_day_of_birth_registered_the_same_day_is_valid() -> None:
    event = make_death(
        date_of_birth=date(2024, 3, 10), date_of_death=date(2024, 3, 10), date_of_registration=date(2024, 3, 10)
    )
    assert CODEC.decode(CODEC.encode(event)) == event


def test_birth_rules() -> None:
    assert "date_of_registration is before the birth" in _model_error(
        lambda: make_birth(date_of_birth=date(2024, 3, 15), date_of_registration=date(2024, 3, 14))
    )
    assert "child.date_of_birth is required" in _model_error(
        lambda: make_birth(child=make_person("Olivia", "Morgan", None))
    )


def test_marriage_and_partnership_registered_after_the_ceremony() -> None:
    assert "date_of_registration is before the marriage" in _model_error(
        lambda: make_marriage(date_of_marriage=date(2024, 3, 9), date_of_registration=date(2024, 3, 8))
    )
    assert "date_of_registration is before the formation" in _model_error(
        lambda: make_civil_partnership(date_of_formation=date(2024, 3, 2), date_of_registration=date(2024, 3, 1))
    )


def test_recorded_at_must_carry_a_time_zone() -> None:
    text = _model_error(lambda: make_death(recorded_at=datetime(2024, 3, 14, 9, 30)))
    assert "recorded_at" in text


def test_entry_reference_requires_its_register() -> None:
    # "register" shadows ABCMeta.register: unless declared with Field(), pydantic would take the method as default
    text = _model_error(
        lambda: EntryReference(  # type: ignore[call-arg]
            registration_district="Leeds",
            sub_district="Leeds North",
            register_number=1,
            entry_number=1,
            year_of_registration=2024,
        )
    )
    assert "register\n  Field required" in text


def test_unknown_fields_are_refused() -> None:
    death = make_death()
    text = _model_error(lambda: DeathRegistered(**dict(death), cause_of_death="x"))  # type: ignore[call-arg]
    assert "cause_of_death" in text
    assert "Extra inputs are not permitted" in text


def test_void_round_trip_keeps_reason() -> None:
    void = next(event for event in EXAMPLES if isinstance(event, RegistrationVoided))
    decoded = CODEC.decode(CODEC.encode(void))
    assert isinstance(decoded, RegistrationVoided)
    assert decoded.reason is void.reason
