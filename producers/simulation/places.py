"""Where registrations happen: registration districts, their towns and postcodes, addresses, and the places
(hospitals, venues, churches, care homes, hospices) entries name.

Why a module of its own: the people, the per-register builders and the departments' customer records all draw
places the same way. District and town names are real (public geography, not personal data); street names are
common ones, house numbers and inward postcodes random but well formed.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from dataclasses import dataclass
from itertools import accumulate

from schemas.models import Address

__all__ = [
    "CARE_HOMES",
    "CHURCHES",
    "DISTRICTS",
    "HOSPICES",
    "HOSPITALS",
    "VENUES",
    "District",
    "Locality",
    "choose_district",
    "make_address",
    "postcode",
    "words",
]


def words(text: str) -> tuple[str, ...]:
    """A word list written compactly as one comma-separated string."""
    return tuple(text.split(", "))


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
_INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"

HOSPITALS = ("General Hospital", "Royal Infirmary", "University Hospital", "District General Hospital")
VENUES = words(
    "The Grange Hotel, Oakwood Hall, The Old Barn, The Assembly Rooms, Town Hall, Riverside House, "
    "The Manor House, Castle Hotel, The Orangery, Abbey Gardens"
)
CHURCHES = words(
    "St Mary's Church, St Peter's Church, All Saints Church, Holy Trinity Church, St Michael's Church, "
    "Central Methodist Church, St Joseph's Catholic Church, Baptist Chapel, Central Mosque"
)
CARE_HOMES = ("Beech", "Rose", "Meadow", "Oak", "Ashlea", "Willow")
HOSPICES = ("St Luke's Hospice", "St Catherine's Hospice", "St Christopher's Hospice", "Marie Curie Hospice")


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
