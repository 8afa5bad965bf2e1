"""Every department the bus knows, by name. Adding a department is one package plus a line here (two with letters)."""

from __future__ import annotations

from typing import Any

from consumers import dvla, electoral, passports, pensions, tax
from consumers.kit.letters import LettersDue
from consumers.runtime import Department
from consumers.suppression import department as suppression

__all__ = ["CORRESPONDENCE", "DEPARTMENTS", "department_named"]

DEPARTMENTS: dict[str, Department[Any]] = {
    suppression.name: suppression,
    tax.department.name: tax.department,
    pensions.department.name: pensions.department,
    dvla.department.name: dvla.department,
    electoral.department.name: electoral.department,
    passports.department.name: passports.department,
}

CORRESPONDENCE: dict[str, LettersDue] = {
    tax.department.name: tax.letters_due,
    pensions.department.name: pensions.letters_due,
    dvla.department.name: dvla.letters_due,
    electoral.department.name: electoral.letters_due,
    passports.department.name: passports.letters_due,
}
"""Each department's scheduled letters (the suppression service writes none: it filters everyone else's)."""


def department_named(name: str) -> Department[Any]:
    """The department called ``name``; the error lists the known ones."""
    try:
        return DEPARTMENTS[name]
    except KeyError:
        raise KeyError(f"unknown department {name!r}; known: {', '.join(sorted(DEPARTMENTS))}") from None
