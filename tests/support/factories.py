"""Small deterministic builders of valid events of every type, for any test that needs one.

Every builder returns a validated model; keyword arguments override the parts tests usually vary. Event ids are
derived from what makes the event distinct (type, entry, version), so the same call always gives the same event and
different entries or versions never share an id. Pass ``event_id=`` for anything else.

    death = make_death(nino="AB123456C")
    fixed = make_correction(of=death, place_of_death="Leeds General Infirmary")
    undone = make_void(of=fixed)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import NAMESPACE_URL, UUID, uuid5

if TYPE_CHECKING:
    from consumers.runtime.agreements import Agreement

from schemas.models import (
    Address,
    BirthDetails,
    BirthRegistered,
    CivilPartnershipDetails,
    CivilPartnershipRegistered,
    CorrectionKind,
    DeathDetails,
    DeathRegistered,
    EntryReference,
    Event,
    Identifiers,
    MaritalStatus,
    MarriageDetails,
    MarriageRegistered,
    Partner,
    Person,
    Register,
    RegistrationCorrected,
    RegistrationVoided,
    Sex,
    SurvivingPartner,
    SurvivorRelationship,
    VoidReason,
)

__all__ = [
    "DISTRICT",
    "DRIVING_LICENCE_NUMBER",
    "NHS_NUMBER",
    "NINO",
    "PASSPORT_NUMBER",
    "POSTCODE",
    "RECORDED_AT",
    "REGISTER_OFFICE",
    "Details",
    "all_event_examples",
    "details_of",
    "event_id_for",
    "make_address",
    "make_birth",
    "make_civil_partnership",
    "make_correction",
    "make_death",
    "make_entry",
    "make_identifiers",
    "make_marriage",
    "make_partner",
    "make_person",
    "make_void",
]

# Valid identifiers (none belongs to a real person): HMRC's own example QQ123456C is NOT valid (Q is never a
# prefix letter), 943 476 5919 is the NHS's published test number.
NINO = "AB123456C"
NHS_NUMBER = "9434765919"
DRIVING_LICENCE_NUMBER = "MORGA753116SM9IJ"
PASSPORT_NUMBER = "123456789"
POSTCODE = "LS1 3AD"

DISTRICT = "Leeds"
SUB_DISTRICT = "Leeds North"
REGISTER_OFFICE = "Leeds Register Office"
RECORDED_AT = datetime(2024, 3, 14, 9, 30, tzinfo=UTC)

Details = BirthDetails | DeathDetails | MarriageDetails | CivilPartnershipDetails

_UNSET: Any = object()


def event_id_for(event_type: str, entry: EntryReference, version: int, salt: str = "") -> UUID:
    """The deterministic id the builders give an event."""
    return uuid5(NAMESPACE_URL, f"civreg-test:{event_type}:{entry.key}:{version}:{salt}")


def make_entry(
    register: Register,
    entry_number: int = 1,
    district: str = DISTRICT,
    *,
    year: int = 2024,
    sub_district: str = SUB_DISTRICT,
    register_number: int = 1,
) -> EntryReference:
    """An entry reference in ``register``, registered in ``year`` (the builders pass their date's year)."""
    return EntryReference(
        registration_district=district,
        sub_district=sub_district,
        register=register,
        register_number=register_number,
        entry_number=entry_number,
        year_of_registration=year,
    )


def make_identifiers(
    nino: str | None = NINO,
    nhs_number: str | None = NHS_NUMBER,
    driving_licence_number: str | None = DRIVING_LICENCE_NUMBER,
    passport_number: str | None = PASSPORT_NUMBER,
) -> Identifiers:
    """Identifiers, all known by default; pass None for the unknown ones."""
    return Identifiers(
        nino=nino,
        nhs_number=nhs_number,
        driving_licence_number=driving_licence_number,
        passport_number=passport_number,
    )


def make_address(lines: tuple[str, ...] = ("1 Park Row",), town: str = "Leeds", postcode: str = POSTCODE) -> Address:
    """A usual address."""
    return Address(lines=list(lines), town=town, postcode=postcode)


def make_person(
    given_names: str = "Margaret Anne",
    family_name: str = "Morgan",
    date_of_birth: date | None = date(1941, 11, 3),
    sex: Sex | None = Sex.FEMALE,
    identifiers: Identifiers | None = None,
    address: Address | None = _UNSET,
    **identifier_overrides: str | None,
) -> Person:
    """A person; ``nino=...`` etc. override single identifiers, ``identifiers=Identifiers()`` knows none."""
    if identifiers is None:
        identifiers = make_identifiers(**identifier_overrides)
    elif identifier_overrides:
        raise TypeError("pass either identifiers= or single identifier overrides, not both")
    return Person(
        given_names=given_names,
        family_name=family_name,
        date_of_birth=date_of_birth,
        sex=sex,
        identifiers=identifiers,
        address=make_address() if address is _UNSET else address,
    )


def make_partner(
    person: Person | None = None,
    condition: MaritalStatus = MaritalStatus.SINGLE,
    surname_after: str | None = None,
    occupation: str | None = "Teacher",
) -> Partner:
    """One party to a marriage or civil partnership."""
    return Partner(
        person=person or make_person(),
        condition=condition,
        surname_after=surname_after,
        occupation=occupation,
    )


def _envelope(
    event_type: str,
    entry: EntryReference,
    version: int,
    event_id: UUID | None,
    recorded_at: datetime | None,
    register_office: str,
) -> dict[str, Any]:
    return {
        "event_id": event_id or event_id_for(event_type, entry, version),
        "entry": entry,
        "version": version,
        "recorded_at": recorded_at or RECORDED_AT,
        "register_office": register_office,
    }


def make_birth(
    *,
    entry_number: int = 1,
    register_number: int = 1,
    district: str = DISTRICT,
    child: Person | None = None,
    date_of_birth: date = date(2024, 2, 20),
    date_of_registration: date = date(2024, 3, 14),
    place_of_birth: str = "St James's University Hospital, Leeds",
    stillbirth: bool = False,
    mother: Person | None = _UNSET,
    second_parent: Person | None = None,
    version: int = 1,
    event_id: UUID | None = None,
    recorded_at: datetime | None = None,
    register_office: str = REGISTER_OFFICE,
) -> BirthRegistered:
    """A birth registration; the child has no identifiers yet (none are issued at birth)."""
    entry = make_entry(
        Register.BIRTH, entry_number, district, year=date_of_registration.year, register_number=register_number
    )
    details = BirthDetails(
        date_of_registration=date_of_registration,
        child=child or make_person("Olivia Rose", "Morgan", date_of_birth, Sex.FEMALE, identifiers=Identifiers()),
        place_of_birth=place_of_birth,
        stillbirth=stillbirth,
        mother=make_person("Sarah Jane", "Morgan", date(1994, 6, 1)) if mother is _UNSET else mother,
        second_parent=second_parent,
    )
    return BirthRegistered(
        **_envelope("BirthRegistered", entry, version, event_id, recorded_at, register_office), birth=details
    )


def make_death(
    *,
    entry_number: int = 1,
    register_number: int = 1,
    district: str = DISTRICT,
    deceased: Person | None = None,
    date_of_death: date = date(2024, 3, 10),
    date_of_registration: date = date(2024, 3, 14),
    place_of_death: str = "Leeds General Infirmary",
    marital_status: MaritalStatus | None = MaritalStatus.WIDOWED,
    version: int = 1,
    event_id: UUID | None = None,
    recorded_at: datetime | None = None,
    register_office: str = REGISTER_OFFICE,
    **person_overrides: Any,
) -> DeathRegistered:
    """A death registration; ``nino=...``, ``date_of_birth=...`` etc. shape the deceased."""
    if deceased is not None and person_overrides:
        raise TypeError("pass either deceased= or person overrides, not both")
    entry = make_entry(
        Register.DEATH, entry_number, district, year=date_of_registration.year, register_number=register_number
    )
    details = DeathDetails(
        date_of_registration=date_of_registration,
        deceased=deceased or make_person(**person_overrides),
        date_of_death=date_of_death,
        place_of_death=place_of_death,
        marital_status=marital_status,
    )
    return DeathRegistered(
        **_envelope("DeathRegistered", entry, version, event_id, recorded_at, register_office), death=details
    )


def _default_couple() -> tuple[Partner, Partner]:
    first = make_partner(
        make_person("Emily", "Clarke", date(1990, 5, 17), nino="CE654321A", nhs_number=None),
        MaritalStatus.SINGLE,
        surname_after="Hughes",
        occupation="Nurse",
    )
    second = make_partner(
        make_person(
            "Thomas",
            "Hughes",
            date(1988, 9, 2),
            Sex.MALE,
            nino="JH112233B",
            nhs_number=None,
            driving_licence_number=None,
            passport_number=None,
        ),
        MaritalStatus.DIVORCED,
        occupation="Electrician",
    )
    return first, second


def make_marriage(
    *,
    entry_number: int = 1,
    register_number: int = 1,
    district: str = DISTRICT,
    party_1: Partner | None = None,
    party_2: Partner | None = None,
    date_of_marriage: date = date(2024, 3, 9),
    date_of_registration: date = date(2024, 3, 9),
    place_of_marriage: str = "Leeds Town Hall",
    version: int = 1,
    event_id: UUID | None = None,
    recorded_at: datetime | None = None,
    register_office: str = REGISTER_OFFICE,
) -> MarriageRegistered:
    """A marriage registration; party 1 takes party 2's surname."""
    default_1, default_2 = _default_couple()
    entry = make_entry(
        Register.MARRIAGE, entry_number, district, year=date_of_registration.year, register_number=register_number
    )
    details = MarriageDetails(
        date_of_registration=date_of_registration,
        date_of_marriage=date_of_marriage,
        place_of_marriage=place_of_marriage,
        party_1=party_1 or default_1,
        party_2=party_2 or default_2,
    )
    return MarriageRegistered(
        **_envelope("MarriageRegistered", entry, version, event_id, recorded_at, register_office),
        marriage=details,
    )


def make_civil_partnership(
    *,
    entry_number: int = 1,
    register_number: int = 1,
    district: str = DISTRICT,
    partner_1: Partner | None = None,
    partner_2: Partner | None = None,
    date_of_formation: date = date(2024, 3, 2),
    date_of_registration: date = date(2024, 3, 2),
    place_of_formation: str = "Harewood House, Leeds",
    version: int = 1,
    event_id: UUID | None = None,
    recorded_at: datetime | None = None,
    register_office: str = REGISTER_OFFICE,
) -> CivilPartnershipRegistered:
    """A civil partnership registration; partner 2 was previously a civil partner."""
    entry = make_entry(
        Register.CIVIL_PARTNERSHIP,
        entry_number,
        district,
        year=date_of_registration.year,
        register_number=register_number,
    )
    details = CivilPartnershipDetails(
        date_of_registration=date_of_registration,
        date_of_formation=date_of_formation,
        place_of_formation=place_of_formation,
        partner_1=partner_1
        or make_partner(
            make_person("David", "Patel", date(1979, 1, 23), Sex.MALE, nino="PR445566D", address=None),
            occupation=None,
        ),
        partner_2=partner_2
        or make_partner(
            make_person("Owen", "Evans", date(1975, 12, 30), Sex.MALE, nino="WE778899A", address=None),
            MaritalStatus.FORMER_CIVIL_PARTNER,
            surname_after="Evans-Patel",
            occupation="Architect",
        ),
    )
    return CivilPartnershipRegistered(
        **_envelope("CivilPartnershipRegistered", entry, version, event_id, recorded_at, register_office),
        civil_partnership=details,
    )


def details_of(event: Event) -> Details:
    """The details an event carries (a correction's corrected details); a void carries none."""
    for name in ("birth", "death", "marriage", "civil_partnership", "corrected"):
        details = getattr(event, name, None)
        if details is not None:
            return details  # type: ignore[no-any-return]
    raise TypeError(f"{type(event).__name__} carries no details")


def make_correction(
    *,
    of: Event,
    kind: CorrectionKind = CorrectionKind.CLERICAL_ERROR,
    corrected: Details | None = None,
    version: int | None = None,
    event_id: UUID | None = None,
    recorded_at: datetime | None = None,
    register_office: str = REGISTER_OFFICE,
    **changes: Any,
) -> RegistrationCorrected:
    """A correction of the entry ``of`` is about (a registration or an earlier correction).

    ``corrected`` replaces the details whole; otherwise ``changes`` amend top-level detail fields of ``of``'s
    details (e.g. ``place_of_death=...``). The version defaults to the next one, the time to a day later.
    """
    if corrected is None:
        current = details_of(of)
        corrected = type(current).model_validate({**dict(current), **changes})
    elif changes:
        raise TypeError("pass either corrected= or field changes, not both")
    version = version if version is not None else of.version + 1
    envelope = _envelope(
        "RegistrationCorrected",
        of.entry,
        version,
        event_id,
        recorded_at or of.recorded_at + timedelta(days=1),
        register_office,
    )
    return RegistrationCorrected(**envelope, kind=kind, corrected=corrected)


def make_void(
    *,
    of: Event,
    reason: VoidReason = VoidReason.ENTERED_IN_ERROR,
    version: int | None = None,
    event_id: UUID | None = None,
    recorded_at: datetime | None = None,
    register_office: str = REGISTER_OFFICE,
) -> RegistrationVoided:
    """A void of the entry ``of`` is about; the version defaults to the next one, the time to a day later."""
    version = version if version is not None else of.version + 1
    envelope = _envelope(
        "RegistrationVoided",
        of.entry,
        version,
        event_id,
        recorded_at or of.recorded_at + timedelta(days=1),
        register_office,
    )
    return RegistrationVoided(**envelope, reason=reason)


def all_event_examples() -> list[Event]:
    """Valid events of every type and register, optional fields both filled and empty, in publishing order.

    They form consistent histories: no two share an entry and version, and each correction or void follows the
    latest version of its entry.
    """
    birth = make_birth(second_parent=make_person("James", "Morgan", date(1992, 8, 14), Sex.MALE))
    stillbirth = make_birth(entry_number=2, stillbirth=True, mother=None)
    death = make_death()
    bare_death = make_death(
        entry_number=2,
        deceased=make_person("John", "Smith", None, None, identifiers=Identifiers(), address=None),
        marital_status=None,
    )
    widowed = make_death(
        entry_number=3,
        deceased=make_person("Arthur", "Morgan", date(1938, 4, 1), Sex.MALE, nino="JH112233B", nhs_number=None),
        marital_status=MaritalStatus.MARRIED,
    )
    survivor = SurvivingPartner(person=make_person(), relationship=SurvivorRelationship.SPOUSE)
    widowed = widowed.model_copy(
        update={"death": DeathDetails.model_validate({**dict(widowed.death), "surviving_partner": survivor})}
    )
    marriage = make_marriage()
    duplicate_marriage = make_marriage(entry_number=2)
    partnership = make_civil_partnership()
    birth_corrected = make_correction(of=birth, place_of_birth="Leeds General Infirmary")
    death_corrected = make_correction(of=death, place_of_death="St James's University Hospital, Leeds")
    death_corrected_again = make_correction(
        of=death_corrected, kind=CorrectionKind.FACTUAL_ERROR, date_of_death=date(2024, 3, 9)
    )
    return [
        birth,
        stillbirth,
        death,
        bare_death,
        widowed,
        marriage,
        duplicate_marriage,
        partnership,
        birth_corrected,
        death_corrected,
        death_corrected_again,
        make_correction(of=marriage, place_of_marriage="Civic Hall, Leeds"),
        make_correction(of=partnership, kind=CorrectionKind.FACTUAL_ERROR, place_of_formation="Leeds"),
        make_void(of=death_corrected_again, reason=VoidReason.COURT_ORDER),
        make_void(of=bare_death),
        make_void(of=duplicate_marriage, reason=VoidReason.DUPLICATE_ENTRY),
    ]


def projected_events(agreement: Agreement, events: Iterable[Event]) -> Iterator[Event]:
    """The events a router projects for ``agreement``: neither withheld nor withdrawn (a birth turned stillbirth)."""
    for event in events:
        if agreement.withheld_because(event) is None and not agreement.withdraws(event):
            yield event
