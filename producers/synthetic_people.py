"""Synthetic people for simulations: names, addresses and identifiers that pass the contract's validators.

Why a module of its own: the registration simulator, the mailing-list generator and (later) simulated department
registers must all draw people the same way, so that a department's record of someone matches what a register
office published about them. Nothing here is real personal data: names come from Faker's en_GB word lists,
identifiers are random but well formed, postcodes are random inward codes in real outward districts.

Every draw goes through the ``random.Random`` passed in, so a seed fixes the output (for a given Faker version,
whose word lists are used as data only; Faker's own generator is never called).
"""

from __future__ import annotations

import random
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from itertools import accumulate

from faker.providers.person.en_GB import Provider as _FakerPersonEnGb

from schemas.identifiers import nhs_check_digit
from schemas.models import Address, EntryReference, Identifiers, MaritalStatus, Person, Sex

__all__ = [
    "DISTRICTS",
    "District",
    "Locality",
    "SyntheticPerson",
    "add_years",
    "choose_district",
    "driving_licence_number",
    "make_address",
    "make_person",
    "nhs_number",
    "nino",
    "occupation",
    "passport_number",
    "postcode",
    "random_family_name",
    "random_given_names",
    "words",
]


@dataclass(frozen=True)
class Locality:
    """A post town and some of its real outward postcode districts."""

    town: str
    outward_codes: tuple[str, ...]


@dataclass(frozen=True)
class District:
    """A registration district (real name, not personal data) with its register offices' localities.

    ``weight`` is roughly its population in tens of thousands, so busy districts register more.
    """

    name: str
    weight: int
    localities: tuple[Locality, ...]

    def register_office(self, locality: Locality) -> str:
        """The register office serving ``locality``: one per town in county districts, one per borough or city."""
        if len(self.localities) == 1:
            return f"{self.name} Register Office"
        return f"{locality.town} Register Office"

    def sub_district(self, locality: Locality) -> str:
        """The registration sub-district serving ``locality`` (one per register office, named like it)."""
        return self.name if len(self.localities) == 1 else locality.town


def _district(name: str, weight: int, *localities: tuple[str, str]) -> District:
    return District(name, weight, tuple(Locality(town, tuple(codes.split())) for town, codes in localities))


DISTRICTS: tuple[District, ...] = (
    _district("Westminster", 20, ("London", "W1 W2 SW1A SW1P SW1V NW8")),
    _district("Camden", 21, ("London", "NW1 NW3 NW5 NW6 WC1")),
    _district("Kensington and Chelsea", 14, ("London", "W8 W10 W11 SW3 SW5 SW10")),
    _district("Hackney", 26, ("London", "E5 E8 E9 N16")),
    _district("Tower Hamlets", 31, ("London", "E1 E2 E3 E14")),
    _district("Lambeth", 32, ("London", "SE11 SE27 SW2 SW4 SW9")),
    _district("Southwark", 31, ("London", "SE1 SE5 SE15 SE22")),
    _district("Croydon", 39, ("Croydon", "CR0 CR2 CR7 SE25")),
    _district("Barnet", 39, ("London", "N3 N12 NW4 NW7"), ("Barnet", "EN4 EN5")),
    _district("Ealing", 37, ("London", "W5 W7 W13 UB6")),
    _district("Birmingham", 114, ("Birmingham", "B5 B8 B11 B13 B14 B15 B17 B23 B29 B31 B44")),
    _district("Coventry", 35, ("Coventry", "CV1 CV2 CV3 CV4 CV5 CV6")),
    _district("Leeds", 81, ("Leeds", "LS1 LS6 LS7 LS8 LS11 LS12 LS15 LS17 LS28")),
    _district("Sheffield", 56, ("Sheffield", "S1 S2 S5 S6 S7 S10 S11 S17")),
    _district("Bradford", 55, ("Bradford", "BD1 BD3 BD5 BD7 BD9 BD10"), ("Keighley", "BD20 BD21")),
    _district("Manchester", 55, ("Manchester", "M1 M4 M8 M13 M14 M20 M40")),
    _district("Liverpool", 49, ("Liverpool", "L1 L4 L8 L15 L17 L25")),
    _district("Bristol", 47, ("Bristol", "BS1 BS3 BS5 BS6 BS7 BS9 BS16")),
    _district("Newcastle upon Tyne", 30, ("Newcastle upon Tyne", "NE1 NE2 NE3 NE4 NE5 NE6 NE7")),
    _district("Nottingham", 32, ("Nottingham", "NG1 NG2 NG3 NG5 NG7 NG8")),
    _district("Leicester", 37, ("Leicester", "LE1 LE2 LE3 LE4 LE5")),
    _district("Kirklees", 44, ("Huddersfield", "HD1 HD2 HD3 HD4 HD5"), ("Dewsbury", "WF12 WF13")),
    _district("Wakefield", 35, ("Wakefield", "WF1 WF2 WF4"), ("Pontefract", "WF8 WF9")),
    _district("York", 20, ("York", "YO1 YO10 YO24 YO31")),
    _district(
        "North Yorkshire", 61, ("Harrogate", "HG1 HG2"), ("Scarborough", "YO11 YO12"), ("Northallerton", "DL6 DL7")
    ),
    _district("Cumberland", 27, ("Carlisle", "CA1 CA2 CA3"), ("Workington", "CA14")),
    _district("Northumberland", 32, ("Morpeth", "NE61"), ("Hexham", "NE46"), ("Alnwick", "NE66")),
    _district("Lancashire", 125, ("Preston", "PR1 PR2"), ("Lancaster", "LA1"), ("Burnley", "BB10 BB11")),
    _district("Cornwall", 57, ("Truro", "TR1"), ("St Austell", "PL25"), ("Penzance", "TR18")),
    _district("Devon", 81, ("Exeter", "EX1 EX2 EX4"), ("Barnstaple", "EX31 EX32"), ("Newton Abbot", "TQ12")),
    _district("Plymouth", 27, ("Plymouth", "PL1 PL2 PL3 PL4 PL5 PL6")),
    _district("Norfolk", 92, ("Norwich", "NR1 NR2 NR3 NR4 NR7"), ("King's Lynn", "PE30"), ("Great Yarmouth", "NR30")),
    _district("Cambridgeshire", 68, ("Cambridge", "CB1 CB2 CB4"), ("Huntingdon", "PE29"), ("Ely", "CB6 CB7")),
    _district("Oxfordshire", 73, ("Oxford", "OX1 OX2 OX3 OX4"), ("Banbury", "OX16"), ("Abingdon", "OX14")),
    _district(
        "Kent",
        157,
        ("Maidstone", "ME14 ME15 ME16"),
        ("Canterbury", "CT1 CT2"),
        ("Ashford", "TN23 TN24"),
        ("Margate", "CT9"),
    ),
    _district("Essex", 150, ("Chelmsford", "CM1 CM2"), ("Colchester", "CO1 CO2 CO3 CO4"), ("Basildon", "SS14 SS16")),
    _district(
        "Hampshire",
        140,
        ("Winchester", "SO22 SO23"),
        ("Basingstoke", "RG21 RG22 RG24"),
        ("Aldershot", "GU11 GU12"),
        ("Andover", "SP10"),
    ),
    _district("Surrey", 120, ("Guildford", "GU1 GU2"), ("Woking", "GU21 GU22"), ("Epsom", "KT17 KT18 KT19")),
    _district("Brighton and Hove", 28, ("Brighton", "BN1 BN2"), ("Hove", "BN3")),
    _district("Cardiff", 37, ("Cardiff", "CF10 CF11 CF14 CF23 CF24")),
    _district("Swansea", 24, ("Swansea", "SA1 SA2 SA5 SA6")),
    _district("Newport", 16, ("Newport", "NP19 NP20")),
    _district("Wrexham", 14, ("Wrexham", "LL11 LL12 LL13")),
    _district("Carmarthenshire", 19, ("Carmarthen", "SA31"), ("Llanelli", "SA14 SA15")),
    _district("Gwynedd", 12, ("Caernarfon", "LL55"), ("Bangor", "LL57"), ("Dolgellau", "LL40")),
    _district("Powys", 13, ("Brecon", "LD3"), ("Llandrindod Wells", "LD1"), ("Welshpool", "SY21")),
)
_DISTRICT_CUM_WEIGHTS = tuple(accumulate(district.weight for district in DISTRICTS))


def words(text: str) -> tuple[str, ...]:
    """A word list written compactly as one comma-separated string."""
    return tuple(text.split(", "))


_STREET_STEMS = words(
    "Church, Station, Victoria, Park, Mill, Queen's, King's, Albert, Manor, Green, Oak, Elm, Ash, Beech, "
    "Chestnut, Willow, Meadow, Orchard, Windmill, Castle, Bridge, School, North, South, West, New, "
    "Springfield, Highfield, Coronation, Jubilee, St John's, St Mary's, Priory, Abbey, Market, Chapel, "
    "Cedar, Holly, Rowan, Hawthorn, Clarence, Grange, Vicarage, Poplar, Heather, Brook, Valley, Hill, "
    "Mount Pleasant, York, Lancaster, Windsor, Stanley, Alexandra"
)
_STREET_SUFFIXES = words(
    "Road, Road, Road, Street, Street, Avenue, Lane, Close, Drive, Way, Crescent, Gardens, Terrace, Grove, "
    "Place, Court, Mews, Walk, Rise, View"
)
_OCCUPATIONS = words(
    "Teacher, Nurse, Software Developer, Accountant, Electrician, Plumber, Carpenter, Retail Assistant, "
    "Shop Manager, Care Worker, Police Officer, Firefighter, Paramedic, Doctor, Pharmacist, Engineer, "
    "Civil Servant, Solicitor, Chef, Hairdresser, Lorry Driver, Bus Driver, Warehouse Operative, "
    "Administrator, Receptionist, Graphic Designer, Marketing Manager, Sales Executive, Student, Mechanic, "
    "Farmer, Gardener, Architect, Dental Nurse, Social Worker, Teaching Assistant, Bank Clerk, "
    "Project Manager, Research Scientist, Musician, Photographer, Estate Agent, Baker, Builder, Cleaner, "
    "Veterinary Nurse, Journalist, Postal Worker, Retired, Unemployed"
)
_INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
# NINO prefixes: first letter never D F I Q U V, second never D F I O Q U V; some pairs never issued and some
# (CR, FY, MW, NC, PP, PY, PZ) kept for administrative use, so a realistic generator avoids them all.
_NINO_FIRST = "ABCEGHJKLMNOPRSTWXYZ"
_NINO_SECOND = "ABCEGHJKLMNPRSTWXYZ"
_NINO_EXCLUDED = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ", "CR", "FY", "MW", "NC", "PP", "PY", "PZ"})
_NINO_PREFIXES = tuple(a + b for a in _NINO_FIRST for b in _NINO_SECOND if a + b not in _NINO_EXCLUDED)


@cache
def _names() -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[float, ...]]:
    """Faker's en_GB first names (unweighted) and surnames with their frequency weights."""
    surnames: dict[str, float] = dict(_FakerPersonEnGb.last_names)
    return (
        tuple(_FakerPersonEnGb.first_names_female),
        tuple(_FakerPersonEnGb.first_names_male),
        tuple(surnames),
        tuple(accumulate(surnames.values())),
    )


@dataclass
class SyntheticPerson:
    """The truth about one simulated person; events carry a projection of it (some identifiers left out).

    Mutable because life goes on during a simulation: marriage changes a surname and status, a registered death
    marks the person deceased, and a voided death brings them back.
    """

    person_id: str
    given_names: str
    family_name: str
    date_of_birth: date
    sex: Sex
    address: Address
    nino: str | None = None
    nhs_number: str | None = None
    driving_licence_number: str | None = None
    passport_number: str | None = None
    marital_status: MaritalStatus = MaritalStatus.SINGLE
    occupation: str | None = None
    previous_family_names: list[str] = field(default_factory=list)
    stillborn: bool = False
    date_of_death: date | None = None
    death_entry: EntryReference | None = None
    death_registered: bool = False
    death_voided: bool = False
    widowed_from: MaritalStatus | None = None
    """MARRIED or CIVIL_PARTNER when a registered death of their spouse or civil partner names them as survivor (the
    status before it, and again if that death is voided)."""

    @property
    def is_deceased(self) -> bool:
        """Dead as far as the registrations published so far say (a voided death does not count)."""
        return self.stillborn or (self.death_registered and not self.death_voided)

    @property
    def identifiers(self) -> Identifiers:
        """Every identifier this person holds."""
        return Identifiers(
            nino=self.nino,
            nhs_number=self.nhs_number,
            driving_licence_number=self.driving_licence_number,
            passport_number=self.passport_number,
        )

    def age_on(self, day: date) -> int:
        """Whole years of age on ``day``."""
        born = self.date_of_birth
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))

    def to_person(self, identifiers: Identifiers | None = None, *, with_address: bool = True) -> Person:
        """The person as an entry records them; ``identifiers`` defaults to all of theirs."""
        return Person(
            given_names=self.given_names,
            family_name=self.family_name,
            date_of_birth=self.date_of_birth,
            sex=self.sex,
            identifiers=self.identifiers if identifiers is None else identifiers,
            address=self.address if with_address else None,
        )


def add_years(day: date, years: int) -> date:
    """``day`` moved by whole years; 29 February becomes 28 February in common years."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def choose_district(rng: random.Random) -> tuple[District, Locality]:
    """A district weighted by population, and one of its localities."""
    index = bisect_right(_DISTRICT_CUM_WEIGHTS, rng.random() * _DISTRICT_CUM_WEIGHTS[-1])
    district = DISTRICTS[min(index, len(DISTRICTS) - 1)]
    return district, rng.choice(district.localities)


def postcode(rng: random.Random, locality: Locality) -> str:
    """A well-formed postcode in one of the locality's real outward codes (the inward code is random)."""
    inward = f"{rng.randrange(10)}{rng.choice(_INWARD_LETTERS)}{rng.choice(_INWARD_LETTERS)}"
    return f"{rng.choice(locality.outward_codes)} {inward}"


def make_address(rng: random.Random, locality: Locality) -> Address:
    """A plausible house or flat address in ``locality``."""
    stem = rng.choice(_STREET_STEMS)
    street = "High Street" if rng.random() < 0.04 else f"{stem} {rng.choice(_STREET_SUFFIXES)}"
    number = max(1, int(rng.expovariate(1 / 40)))
    flat = [f"Flat {rng.randint(1, 24)}"] if rng.random() < 0.15 else []
    return Address(lines=[*flat, f"{number} {street}"], town=locality.town, postcode=postcode(rng, locality))


def random_given_names(rng: random.Random, sex: Sex) -> str:
    """One to three given names, usually two."""
    female, male, _, _ = _names()
    pool = female if sex is Sex.FEMALE else male if sex is Sex.MALE else rng.choice((female, male))
    count = rng.choices((1, 2, 3), weights=(35, 58, 7))[0]
    names: list[str] = []
    while len(names) < count:
        name = rng.choice(pool)
        if name not in names:
            names.append(name)
    return " ".join(names)


def random_family_name(rng: random.Random) -> str:
    """A surname weighted by its frequency in Faker's en_GB list."""
    _, _, surnames, cum_weights = _names()
    return rng.choices(surnames, cum_weights=cum_weights)[0]


def nino(rng: random.Random) -> str:
    """A National Insurance number with an issued-looking prefix, e.g. ``JK123456B``."""
    return f"{rng.choice(_NINO_PREFIXES)}{rng.randrange(1_000_000):06d}{rng.choice('ABCD')}"


def nhs_number(rng: random.Random) -> str:
    """A 10-digit NHS number in an England and Wales range (400-499, 600-708) with its modulus 11 check digit."""
    while True:
        first_three = rng.randrange(400, 500) if rng.random() < 0.5 else rng.randrange(600, 709)
        first_nine = f"{first_three}{rng.randrange(1_000_000):06d}"
        check = nhs_check_digit(first_nine)
        if check is not None:
            return f"{first_nine}{check}"


def driving_licence_number(rng: random.Random, family_name: str, given_names: str, born: date, sex: Sex) -> str:
    """The DVLA driver number: surname (5, padded with 9), decade, month (+50 for women), day, year digit,
    two initials (padded with 9), the usual 9, and two check characters (random here)."""
    letters = re.sub(r"[^A-Z]", "", family_name.upper())
    if letters.startswith("MAC"):
        letters = "MC" + letters[3:]
    surname = (letters[:5]).ljust(5, "9")
    month = born.month + (50 if sex is Sex.FEMALE else 0)
    initials = "".join(name[0] for name in given_names.upper().split()[:2]).ljust(2, "9")
    check = "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(2))
    return f"{surname}{born.year % 100 // 10}{month:02d}{born.day:02d}{born.year % 10}{initials}9{check}"


def passport_number(rng: random.Random) -> str:
    """A 9-digit UK passport number."""
    return f"{rng.randrange(100_000_000, 1_000_000_000)}"


def occupation(rng: random.Random, age: int) -> str:
    """An occupation plausible for ``age``."""
    if age >= 68 and rng.random() < 0.8:
        return "Retired"
    if age < 23 and rng.random() < 0.5:
        return "Student"
    return rng.choice(_OCCUPATIONS[:-2])


def make_person(
    rng: random.Random,
    person_id: str,
    *,
    sex: Sex,
    date_of_birth: date,
    on: date,
    locality: Locality,
    family_name: str | None = None,
    address: Address | None = None,
) -> SyntheticPerson:
    """A person born on ``date_of_birth`` with the identifiers someone of their age on ``on`` usually holds.

    Everyone gets an NHS number; a NINO from 16; a driving licence for about three quarters of adults (fewer of
    the very old); a passport for about three quarters of people.
    """
    given_names = random_given_names(rng, sex)
    surname = family_name or random_family_name(rng)
    age = on.year - date_of_birth.year - ((on.month, on.day) < (date_of_birth.month, date_of_birth.day))
    person = SyntheticPerson(
        person_id=person_id,
        given_names=given_names,
        family_name=surname,
        date_of_birth=date_of_birth,
        sex=sex,
        address=address or make_address(rng, locality),
        nhs_number=nhs_number(rng),
    )
    if age >= 16:
        person.nino = nino(rng)
    licence_share = 0.0 if age < 17 else 0.35 if age >= 85 else 0.6 if age >= 70 else 0.78
    if rng.random() < licence_share:
        person.driving_licence_number = driving_licence_number(rng, surname, given_names, date_of_birth, sex)
    if age >= 1 and rng.random() < 0.75:
        person.passport_number = passport_number(rng)
    return person
