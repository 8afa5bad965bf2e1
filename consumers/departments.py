"""Every department the bus knows, by name (``schemas.departments`` lists the names the topics are made for).

Adding a department is one package, a line here (two with letters) and its name in ``schemas.departments``.
"""

from __future__ import annotations

from typing import Any

from consumers import dvla, electoral, passports, pensions, tax
from consumers.kit.letters import LettersDue
from consumers.runtime import Department
from consumers.suppression import department as suppression
from schemas.departments import DEPARTMENT_NAMES

__all__ = ["CORRESPONDENCE", "DEPARTMENTS", "department_named"]

DEPARTMENTS: dict[str, Department[Any]] = {
    department.name: department
    for department in (
        suppression,
        tax.department,
        pensions.department,
        dvla.department,
        electoral.department,
        passports.department,
    )
}
if tuple(DEPARTMENTS) != DEPARTMENT_NAMES:  # the roster the topics and agreements are made for
    raise RuntimeError("consumers/departments.py and schemas/departments.py list different departments")

CORRESPONDENCE: dict[str, LettersDue[Any]] = {
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
