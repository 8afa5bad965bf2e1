"""Every department the bus knows, by name. Adding a department is one module plus one line here."""

from __future__ import annotations

from typing import Any

from consumers.runtime import Department
from consumers.suppression import department as suppression

__all__ = ["DEPARTMENTS", "department_named"]

DEPARTMENTS: dict[str, Department[Any]] = {
    suppression.name: suppression,
}


def department_named(name: str) -> Department[Any]:
    """The department called ``name``; the error lists the known ones."""
    try:
        return DEPARTMENTS[name]
    except KeyError:
        raise KeyError(f"unknown department {name!r}; known: {', '.join(sorted(DEPARTMENTS))}") from None
