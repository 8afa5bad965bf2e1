"""Topic names: part of the contract, so publishers and departments cannot disagree.

One topic per event family (the register an entry belongs to). Corrections and voids of an entry travel on the
topic of the entry's register, keyed by the entry reference, so every event of one entry lands on one partition in
order.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "Register",
    "acknowledgement_topic",
    "dead_letter_topic",
    "department_topic",
    "disclosure_topic",
    "registration_topic",
    "registration_topics",
    "router_group",
]


class Register(StrEnum):
    """The four registers kept by register offices; one event family and one topic each."""

    BIRTH = "BIRTH"
    DEATH = "DEATH"
    MARRIAGE = "MARRIAGE"
    CIVIL_PARTNERSHIP = "CIVIL_PARTNERSHIP"


_FAMILY_SUFFIX: dict[Register, str] = {
    Register.BIRTH: "births",
    Register.DEATH: "deaths",
    Register.MARRIAGE: "marriages",
    Register.CIVIL_PARTNERSHIP: "civil-partnerships",
}


def registration_topic(register: Register, prefix: str = "civreg") -> str:
    """Topic carrying every event of entries in ``register``, e.g. ``civreg.registrations.deaths``."""
    return f"{prefix}.registrations.{_FAMILY_SUFFIX[register]}"


def registration_topics(prefix: str = "civreg") -> dict[Register, str]:
    """All registration topics by register."""
    return {register: registration_topic(register, prefix) for register in Register}


def dead_letter_topic(department: str, prefix: str = "civreg") -> str:
    """A department's dead-letter topic: messages it could not decode or apply, with the reason in headers."""
    return f"{prefix}.dead-letter.{department}"


def acknowledgement_topic(prefix: str = "civreg") -> str:
    """Where departments publish what they did with each event (no personal data)."""
    return f"{prefix}.acknowledgements"


def department_topic(department: str, prefix: str = "civreg") -> str:
    """A department's own topic: only its agreed events, projected to its agreed fields, written by the router.

    Nobody but the department (and the router that writes it) may read it; ACLs are generated from the agreements.
    """
    return f"{prefix}.department.{department}"


def disclosure_topic(prefix: str = "civreg") -> str:
    """The disclosure ledger: one record per event delivered to a department, written in the router's transaction."""
    return f"{prefix}.disclosures"


def router_group(prefix: str = "civreg") -> str:
    """Consumer group (and transactional id prefix) of the router that writes the department topics."""
    return f"{prefix}.router"
