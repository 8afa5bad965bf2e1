"""Pydantic models that mirror the Avro schemas field for field (a test walks both so they cannot drift).

Models validate what Avro cannot: identifier formats, date order, and that an event's details match its register.
Validation messages name the rule, never the value.
"""

from __future__ import annotations

import re
import warnings
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Self
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    field_validator,
    model_validator,
)

from schemas.identifiers import (
    normalise_driving_licence_number,
    normalise_nhs_number,
    normalise_nino,
    normalise_passport_number,
    normalise_postcode,
)
from schemas.topics import Register

__all__ = [
    "CLOCK_SKEW",
    "MAX_AGE_YEARS",
    "MAX_MOTHER_AGE_AT_BIRTH",
    "MAX_SECOND_PARENT_AGE_AT_BIRTH",
    "MIN_AGE_TO_MARRY",
    "MIN_PARENT_AGE_AT_BIRTH",
    "Address",
    "BirthDetails",
    "BirthRegistered",
    "CivilPartnershipDetails",
    "CivilPartnershipRegistered",
    "CorrectionKind",
    "DeathDetails",
    "DeathRegistered",
    "EntryReference",
    "Event",
    "Identifiers",
    "MaritalStatus",
    "MarriageDetails",
    "MarriageRegistered",
    "Partner",
    "Person",
    "Register",
    "RegistrationCorrected",
    "RegistrationEvent",
    "RegistrationVoided",
    "Sex",
    "SurvivingPartner",
    "SurvivorRelationship",
    "VoidReason",
    "age_on",
    "latest_registration_date",
]

# ---- plausibility limits: wide enough for every real entry, narrow enough to catch a wrong century -------------

MAX_AGE_YEARS = 125
"""Oldest plausible age: the oldest verified person lived 122 years 164 days (Jeanne Calment, 1875-1997)."""
MIN_PARENT_AGE_AT_BIRTH = 10
"""Youngest plausible parent: documented mothers under 10 are a handful of medical extremes worldwide."""
MAX_MOTHER_AGE_AT_BIRTH = 75
"""Oldest plausible mother: the oldest reported births (after IVF) were to women of about 70 to 74."""
MAX_SECOND_PARENT_AGE_AT_BIRTH = 100
"""Oldest plausible second parent: the oldest reported fathers were in their nineties."""
MIN_AGE_TO_MARRY = 16
"""The lowest legal age to marry or form a civil partnership in England and Wales (18 since 27 February 2023;
16 with consent before, and corrections of those entries still arrive)."""
CLOCK_SKEW = timedelta(days=1)
"""How far past today (UTC) a date of registration may be: an office ahead of UTC is already on tomorrow."""


_CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f]")
"""Unicode category Cc, exactly: one regex search instead of a category look-up per character."""


def _one_line_of_text(value: str) -> str:
    """No control characters (NUL, newline, ...): names and places are one line, and PostgreSQL refuses NUL."""
    if _CONTROL_CHARACTERS.search(value):
        raise ValueError("must be one line of text without control characters")
    return value


Text = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), AfterValidator(_one_line_of_text)
]
Nino = Annotated[str, AfterValidator(normalise_nino)]
NhsNumber = Annotated[str, AfterValidator(normalise_nhs_number)]
DrivingLicenceNumber = Annotated[str, AfterValidator(normalise_driving_licence_number)]
PassportNumber = Annotated[str, AfterValidator(normalise_passport_number)]
Postcode = Annotated[str, AfterValidator(normalise_postcode)]


class _Record(BaseModel):
    # hide_input_in_errors: str(ValidationError) would otherwise quote the value, i.e. personal data, into logs.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


class Sex(StrEnum):
    """Sex as recorded in the entry."""

    FEMALE = "FEMALE"
    MALE = "MALE"
    INDETERMINATE = "INDETERMINATE"


class MaritalStatus(StrEnum):
    """Marital or civil partnership status."""

    SINGLE = "SINGLE"
    MARRIED = "MARRIED"
    CIVIL_PARTNER = "CIVIL_PARTNER"
    WIDOWED = "WIDOWED"
    SURVIVING_CIVIL_PARTNER = "SURVIVING_CIVIL_PARTNER"
    DIVORCED = "DIVORCED"
    FORMER_CIVIL_PARTNER = "FORMER_CIVIL_PARTNER"


class SurvivorRelationship(StrEnum):
    """How the survivor was related to the deceased at the death."""

    SPOUSE = "SPOUSE"
    CIVIL_PARTNER = "CIVIL_PARTNER"


class CorrectionKind(StrEnum):
    """Why an entry was corrected."""

    CLERICAL_ERROR = "CLERICAL_ERROR"
    FACTUAL_ERROR = "FACTUAL_ERROR"


class VoidReason(StrEnum):
    """Why an entry was voided; a voided death means the person is not dead."""

    ENTERED_IN_ERROR = "ENTERED_IN_ERROR"
    DUPLICATE_ENTRY = "DUPLICATE_ENTRY"
    COURT_ORDER = "COURT_ORDER"


FIRST_REGISTRATION_YEAR = 1837
"""Civil registration in England and Wales began on 1 July 1837: no entry is older."""


def _key_part(text: str) -> str:
    """``text`` with ``%`` and ``/`` escaped, so ``/`` separates the parts of a key unambiguously."""
    return text.replace("%", "%25").replace("/", "%2F")


def _registered_in_entry_year(entry: EntryReference, details: BaseModel) -> None:
    """An entry's year of registration is part of its identity: the details must have been registered in it."""
    registered: date = getattr(details, "date_of_registration")  # noqa: B009 (every details kind has it)
    if registered.year != entry.year_of_registration:
        raise ValueError("entry.year_of_registration must be the year of date_of_registration")


# "register" is the domain's word and the Avro field name; it shadows ABCMeta.register, which models never use.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message='Field name "register"', category=UserWarning)

    class EntryReference(_Record):
        """One register entry, unique for all time as the General Register Office identifies it.

        Entry numbers restart every year in every register of every sub-district, so district, register and entry
        number alone repeat each year; the sub-district, register number and year of registration make it unique.
        """

        registration_district: Text
        sub_district: Text
        # Field() makes it required: without it pydantic takes the inherited ABCMeta.register as a default.
        register: Register = Field()
        register_number: int = Field(ge=1, le=2_147_483_647)
        entry_number: int = Field(ge=1, le=2_147_483_647)
        year_of_registration: int = Field(ge=FIRST_REGISTRATION_YEAR, le=9999)

        @property
        def key(self) -> str:
            """The Kafka message key and every store's entry key: every event of one entry shares it (so they share
            a partition and order), and no other entry has it.

            Every part of the identity is in it, the register first (``DEATH/...``, so a key tells its register);
            ``/`` and ``%`` inside the district names are escaped so no two references give the same key. It holds
            no personal data: places and numbers only.
            """
            return "/".join(
                (
                    self.register.value,
                    str(self.year_of_registration),
                    _key_part(self.registration_district),
                    _key_part(self.sub_district),
                    str(self.register_number),
                    str(self.entry_number),
                )
            )

        @staticmethod
        def register_of_key(key: str) -> Register:
            """The register an entry key (``key``) is in: stores keep keys, and some rules need only the register."""
            return Register(key.split("/", 1)[0])


class Identifiers(_Record):
    """Identifiers known for a person; each validated to its format."""

    nino: Nino | None = None
    nhs_number: NhsNumber | None = None
    driving_licence_number: DrivingLicenceNumber | None = None
    passport_number: PassportNumber | None = None


class Address(_Record):
    """Usual address."""

    lines: list[Text] = Field(min_length=1, max_length=5)
    town: Text
    postcode: Postcode


class Person(_Record):
    """A person named in an entry."""

    given_names: Text
    family_name: Text
    date_of_birth: date | None = None
    sex: Sex | None = None
    identifiers: Identifiers = Identifiers()
    address: Address | None = None


def _not_before(later: date, earlier: date | None, rule: str) -> None:
    if earlier is not None and later < earlier:
        raise ValueError(rule)


def age_on(date_of_birth: date, day: date) -> int:
    """Whole years of age on ``day`` (negative when born after it)."""
    return day.year - date_of_birth.year - ((day.month, day.day) < (date_of_birth.month, date_of_birth.day))


def latest_registration_date() -> date:
    """The latest date of registration accepted now: today in UTC plus ``CLOCK_SKEW``."""
    return datetime.now(UTC).date() + CLOCK_SKEW


def _registered_by_now(date_of_registration: date) -> None:
    if date_of_registration > latest_registration_date():
        raise ValueError("date_of_registration is in the future (after today)")


def _age_within(person: Person | None, who: str, at: tuple[date, str], ages: tuple[int, int]) -> None:
    """Refuse an age at an event (its date and name) outside ``ages``; ``who`` is the person's field path."""
    if person is None or person.date_of_birth is None:
        return
    (day, event), (low, high) = at, ages
    age = age_on(person.date_of_birth, day)
    if age < low:
        raise ValueError(f"{who}.date_of_birth gives an age under {low} at the {event}")
    if age > high:
        raise ValueError(f"{who}.date_of_birth gives an age over {high} at the {event}")


class BirthDetails(_Record):
    """A birth entry."""

    date_of_registration: date
    child: Person
    place_of_birth: Text
    stillbirth: bool = False
    mother: Person | None = None
    second_parent: Person | None = None

    @model_validator(mode="after")
    def _dates_in_order(self) -> Self:
        if self.child.date_of_birth is None:
            raise ValueError("child.date_of_birth is required in a birth entry")
        _not_before(self.date_of_registration, self.child.date_of_birth, "date_of_registration is before the birth")
        _registered_by_now(self.date_of_registration)
        birth = (self.child.date_of_birth, "birth")
        _age_within(self.mother, "mother", birth, (MIN_PARENT_AGE_AT_BIRTH, MAX_MOTHER_AGE_AT_BIRTH))
        _age_within(
            self.second_parent, "second_parent", birth, (MIN_PARENT_AGE_AT_BIRTH, MAX_SECOND_PARENT_AGE_AT_BIRTH)
        )
        return self


class SurvivingPartner(_Record):
    """The deceased's surviving spouse or civil partner (Tell Us Once asks for them too)."""

    person: Person
    relationship: SurvivorRelationship

    @property
    def status(self) -> MaritalStatus:
        """The survivor's marital status from the death on."""
        if self.relationship is SurvivorRelationship.CIVIL_PARTNER:
            return MaritalStatus.SURVIVING_CIVIL_PARTNER
        return MaritalStatus.WIDOWED


# The deceased's status that each kind of survivor implies, when the entry records one.
_STATUS_WITH_SURVIVOR = {
    SurvivorRelationship.SPOUSE: MaritalStatus.MARRIED,
    SurvivorRelationship.CIVIL_PARTNER: MaritalStatus.CIVIL_PARTNER,
}


class DeathDetails(_Record):
    """A death entry, without cause of death (health data never travels on this bus)."""

    date_of_registration: date
    deceased: Person
    date_of_death: date
    place_of_death: Text
    marital_status: MaritalStatus | None = None
    surviving_partner: SurvivingPartner | None = None

    @model_validator(mode="after")
    def _survivor_fits_marital_status(self) -> Self:
        """A spouse survives a married person, a civil partner a civil partner: anything else is a slip."""
        survivor = self.surviving_partner
        if survivor is not None and self.marital_status is not None:
            implied = _STATUS_WITH_SURVIVOR[survivor.relationship]
            if self.marital_status is not implied:
                raise ValueError(
                    f"surviving_partner.relationship {survivor.relationship.value} requires marital_status "
                    f"{implied.value} (or none)"
                )
        return self

    @model_validator(mode="after")
    def _dates_in_order(self) -> Self:
        _not_before(self.date_of_death, self.deceased.date_of_birth, "date_of_death is before date_of_birth")
        _not_before(self.date_of_registration, self.date_of_death, "date_of_registration is before date_of_death")
        _registered_by_now(self.date_of_registration)
        _age_within(self.deceased, "deceased", (self.date_of_death, "death"), (0, MAX_AGE_YEARS))
        return self


_PARTY_AGES = (MIN_AGE_TO_MARRY, MAX_AGE_YEARS)


class Partner(_Record):
    """One party to a marriage or civil partnership."""

    person: Person
    condition: MaritalStatus
    surname_after: Text | None = None
    occupation: Text | None = None


class MarriageDetails(_Record):
    """A marriage entry."""

    date_of_registration: date
    date_of_marriage: date
    place_of_marriage: Text
    party_1: Partner
    party_2: Partner

    @model_validator(mode="after")
    def _dates_in_order(self) -> Self:
        _not_before(self.date_of_registration, self.date_of_marriage, "date_of_registration is before the marriage")
        _registered_by_now(self.date_of_registration)
        for name, party in (("party_1", self.party_1), ("party_2", self.party_2)):
            _age_within(party.person, f"{name}.person", (self.date_of_marriage, "marriage"), _PARTY_AGES)
        return self


class CivilPartnershipDetails(_Record):
    """A civil partnership entry."""

    date_of_registration: date
    date_of_formation: date
    place_of_formation: Text
    partner_1: Partner
    partner_2: Partner

    @model_validator(mode="after")
    def _dates_in_order(self) -> Self:
        _not_before(self.date_of_registration, self.date_of_formation, "date_of_registration is before the formation")
        _registered_by_now(self.date_of_registration)
        formation = (self.date_of_formation, "formation")
        for name, partner in (("partner_1", self.partner_1), ("partner_2", self.partner_2)):
            _age_within(partner.person, f"{name}.person", formation, _PARTY_AGES)
        return self


Details = BirthDetails | DeathDetails | MarriageDetails | CivilPartnershipDetails
DETAILS_REGISTER: dict[type[_Record], Register] = {
    BirthDetails: Register.BIRTH,
    DeathDetails: Register.DEATH,
    MarriageDetails: Register.MARRIAGE,
    CivilPartnershipDetails: Register.CIVIL_PARTNERSHIP,
}
_DETAILS_FIELD = {
    Register.BIRTH: "birth",
    Register.DEATH: "death",
    Register.MARRIAGE: "marriage",
    Register.CIVIL_PARTNERSHIP: "civil_partnership",
}
"""The field that holds a registration event's details, by register."""
# An Avro union decodes to a bare record, so the kind is told by a field only that kind has. Validating against
# the one kind (not all four) keeps errors to that kind's fields: 'corrected.DeathDetails.deceased...'.
_DETAILS_BY_FIELD = {
    "child": "BirthDetails",
    "deceased": "DeathDetails",
    "party_1": "MarriageDetails",
    "partner_1": "CivilPartnershipDetails",
}


def _details_kind(value: Any) -> str | None:
    if isinstance(value, BaseModel):
        return type(value).__name__
    if isinstance(value, dict):
        return next((kind for field, kind in _DETAILS_BY_FIELD.items() if field in value), None)
    return None


CorrectedDetails = Annotated[
    Annotated[BirthDetails, Tag("BirthDetails")]
    | Annotated[DeathDetails, Tag("DeathDetails")]
    | Annotated[MarriageDetails, Tag("MarriageDetails")]
    | Annotated[CivilPartnershipDetails, Tag("CivilPartnershipDetails")],
    Discriminator(
        _details_kind,
        custom_error_type="details_kind",
        custom_error_message="not birth, death, marriage or civil partnership details",
    ),
]


class Event(_Record):
    """Fields every event carries: identity, the entry it is about, its version and provenance."""

    event_type: ClassVar[str]
    event_id: UUID
    entry: EntryReference
    version: int = Field(ge=1, le=2_147_483_647)  # Avro int: fastavro would silently write a wider value
    recorded_at: AwareDatetime
    register_office: Text

    @field_validator("recorded_at")
    @classmethod
    def _to_milliseconds(cls, value: datetime) -> datetime:
        """Avro timestamp-millis keeps milliseconds; truncating here makes a round trip exact."""
        return value.replace(microsecond=value.microsecond - value.microsecond % 1000)

    @property
    def family(self) -> Register:
        """The register (event family) this event belongs to; it decides the topic."""
        return self.entry.register


class RegistrationEvent(Event):
    """An original registration: version 1 of an entry whose register matches the event type."""

    register_of_type: ClassVar[Register]

    @model_validator(mode="after")
    def _entry_matches_type(self) -> Self:
        if self.entry.register is not self.register_of_type:
            raise ValueError(f"entry.register must be {self.register_of_type.value} for {self.event_type}")
        if self.version != 1:
            raise ValueError("a registration's version must be 1 (corrections and voids come after it)")
        return self

    @model_validator(mode="after")
    def _entry_year_is_registration_year(self) -> Self:
        _registered_in_entry_year(self.entry, getattr(self, _DETAILS_FIELD[self.register_of_type]))
        return self


class BirthRegistered(RegistrationEvent):
    """A birth was registered."""

    event_type: ClassVar[str] = "BirthRegistered"
    register_of_type: ClassVar[Register] = Register.BIRTH
    birth: BirthDetails


class DeathRegistered(RegistrationEvent):
    """A death was registered."""

    event_type: ClassVar[str] = "DeathRegistered"
    register_of_type: ClassVar[Register] = Register.DEATH
    death: DeathDetails


class MarriageRegistered(RegistrationEvent):
    """A marriage was registered."""

    event_type: ClassVar[str] = "MarriageRegistered"
    register_of_type: ClassVar[Register] = Register.MARRIAGE
    marriage: MarriageDetails


class CivilPartnershipRegistered(RegistrationEvent):
    """A civil partnership was registered."""

    event_type: ClassVar[str] = "CivilPartnershipRegistered"
    register_of_type: ClassVar[Register] = Register.CIVIL_PARTNERSHIP
    civil_partnership: CivilPartnershipDetails


class RegistrationCorrected(Event):
    """An entry was corrected; ``corrected`` is the whole entry as it now stands."""

    event_type: ClassVar[str] = "RegistrationCorrected"
    kind: CorrectionKind
    corrected: CorrectedDetails

    @model_validator(mode="after")
    def _details_match_register(self) -> Self:
        if DETAILS_REGISTER[type(self.corrected)] is not self.entry.register:
            raise ValueError("corrected details must be of the same kind as entry.register")
        if self.version < 2:
            raise ValueError("a correction's version must be 2 or more (version 1 is the registration)")
        return self

    @model_validator(mode="after")
    def _entry_year_is_registration_year(self) -> Self:
        """A correction cannot move an entry to another year: the year is part of the entry's identity."""
        _registered_in_entry_year(self.entry, self.corrected)
        return self


class RegistrationVoided(Event):
    """An entry was voided (entered in error); consumers undo what they did."""

    event_type: ClassVar[str] = "RegistrationVoided"
    reason: VoidReason

    @model_validator(mode="after")
    def _version_after_registration(self) -> Self:
        if self.version < 2:
            raise ValueError("a void's version must be 2 or more (version 1 is the registration)")
        return self


AnyEvent = (
    BirthRegistered
    | DeathRegistered
    | MarriageRegistered
    | CivilPartnershipRegistered
    | RegistrationCorrected
    | RegistrationVoided
)
EVENT_MODELS: dict[str, type[Event]] = {
    model.event_type: model
    for model in (
        BirthRegistered,
        DeathRegistered,
        MarriageRegistered,
        CivilPartnershipRegistered,
        RegistrationCorrected,
        RegistrationVoided,
    )
}
REGISTRATION_EVENTS: dict[Register, type[RegistrationEvent]] = {
    model.register_of_type: model
    for model in (BirthRegistered, DeathRegistered, MarriageRegistered, CivilPartnershipRegistered)
}
"""The event type of each register's registrations (corrections and voids of any register are shared types)."""
