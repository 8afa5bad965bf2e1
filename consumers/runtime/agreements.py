"""Data-sharing agreements: which event types and fields a department may receive, and under which law.

Why in the runtime: an agreement is enforced once, where events are dispatched, so no department's rules can see
more than its agreement allows however they are written. The agreements themselves are deployment files
(``agreements/<department>.yaml`` under ``CIVREG_CONFIG_DIR``) that data protection officers read and sign off,
not code:

    department: dvla
    controller: Driver and Vehicle Licensing Agency
    purpose: cancel the driving licence of a person who died; ...
    legal_gateway: Registration Service Act 1953 s19AA; Road Traffic Act 1988 s99
    event_types: [DeathRegistered, MarriageRegistered, RegistrationCorrected, RegistrationVoided]
    stillbirths: false
    fields_excluded: ["**.occupation", "**.identifiers.nhs_number"]

- An event of a type outside the agreement, or a stillbirth for a department that has no use for one, is
  *withheld*: not applied, not an outcome, counted as withheld.
- A correction that turns a birth into a stillbirth is the exception: the department may have acted on the live
  birth (a Child Benefit invitation), so it receives the correction as a *withdrawal* of the entry, a
  ``RegistrationVoided`` with the correction's envelope (event id, entry, version, time, office) and nothing of the
  stillbirth, and its void rule undoes what the birth did (or finds nothing to undo). It is a ``Withdrawal``, not a
  registrar's void: the entry still stands, so a later correction back to a live birth applies the birth again.
- Fields outside the agreement are removed before the handler sees the event. Paths are dotted field names from
  the event down (``death.deceased.identifiers.nino``); ``*`` stands for one field name, ``**`` for any number
  of them. A removed field takes the contract's default, so only optional fields can be excluded: the loader
  refuses a pattern that names a required field (the contract, not the agreement, would have to change).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import yaml
from pydantic import BaseModel

from civreg.errors import CivregError
from civreg.settings import PACKAGED_CONFIG
from schemas.models import (
    EVENT_MODELS,
    REGISTRATION_EVENTS,
    BirthDetails,
    BirthRegistered,
    Event,
    RegistrationCorrected,
    RegistrationVoided,
    VoidReason,
)
from schemas.topics import Register

if TYPE_CHECKING:
    from consumers.runtime.department import Department

__all__ = [
    "AGREEMENTS_DIR",
    "Agreement",
    "AgreementError",
    "Withdrawal",
    "agreement_for",
    "field_paths",
    "load_agreement",
]

AGREEMENTS_DIR = PACKAGED_CONFIG.agreements_dir
"""The copies installed with civreg; a service reads ``settings.config_files.agreements_dir``."""

WITHHELD_TYPE = "not-in-agreement"
WITHHELD_STILLBIRTH = "stillbirth"

_REGISTER_OF_TYPE = {model.event_type: register for register, model in REGISTRATION_EVENTS.items()}
_FOLLOW_UPS = frozenset({"RegistrationCorrected", "RegistrationVoided"})
_KEYS = frozenset(
    {"department", "controller", "purpose", "legal_gateway", "event_types", "stillbirths", "fields_excluded"}
)


class AgreementError(CivregError, ValueError):
    """An agreement file is missing, malformed, or does not fit the contract or its department."""


@dataclass(frozen=True)
class Agreement:
    """One department's data-sharing agreement."""

    department: str
    controller: str
    purpose: str
    legal_gateway: str
    event_types: frozenset[str]
    stillbirths: bool
    fields_excluded: tuple[str, ...] = ()

    # Enforcement ------------------------------------------------------------------------------------------

    def withheld_because(self, event: Event) -> str | None:
        """Why ``event`` must not reach the department at all, or None when it may."""
        if event.event_type not in self.event_types:
            return WITHHELD_TYPE
        if not self.stillbirths and _is_stillbirth(event) and not self._withdraws(event):
            return WITHHELD_STILLBIRTH
        return None

    def minimise(self, event: Event) -> Event:
        """``event`` without the fields this agreement excludes (the same object when nothing is excluded).

        A correction to a stillbirth the department may not see becomes a withdrawal of the entry (see above).
        """
        if self._withdraws(event):
            return _withdrawal(event)
        if not self.fields_excluded:
            return event
        stripped = _apply_plan(event, _strip_plan(type(event), self.fields_excluded))
        assert isinstance(stripped, type(event))
        return stripped

    def _withdraws(self, event: Event) -> bool:
        """Whether ``event`` turns a birth the department received into a stillbirth it may not see."""
        return (
            not self.stillbirths
            and isinstance(event, RegistrationCorrected)
            and _is_stillbirth(event)
            and {BirthRegistered.event_type, RegistrationVoided.event_type} <= self.event_types
        )

    # Checks -----------------------------------------------------------------------------------------------

    @property
    def registers(self) -> frozenset[Register]:
        """The registers whose topics the agreed event types travel on."""
        return frozenset(_REGISTER_OF_TYPE[t] for t in self.event_types if t in _REGISTER_OF_TYPE)

    def problems(self, department: Department[Any]) -> list[str]:
        """Every way this agreement and the department's declaration disagree (empty when they fit)."""
        found: list[str] = []
        name = department.name
        if self.department != name:
            found.append(f"agreement names department {self.department!r}, not {name!r}")
        if self.legal_gateway.split() != department.legal_gateway.split():
            found.append(f"{name}: legal gateway differs between the agreement and the department's declaration")
        if self.registers != department.registers:
            agreed = ", ".join(sorted(r.value for r in self.registers))
            declared = ", ".join(sorted(r.value for r in department.registers))
            found.append(f"{name}: agreement covers registers [{agreed}], department declares [{declared}]")
        unhandled = sorted(self.event_types - department.handlers.keys())
        if unhandled:
            found.append(f"{name}: agreed event types without a handler: {', '.join(unhandled)}")
        unagreed = sorted(department.event_types - self.event_types)
        if unagreed:
            found.append(f"{name}: handled event types outside the agreement: {', '.join(unagreed)}")
        return found


def _is_stillbirth(event: Event) -> bool:
    if isinstance(event, BirthRegistered):
        return event.birth.stillbirth
    return (
        isinstance(event, RegistrationCorrected)
        and isinstance(event.corrected, BirthDetails)
        and (event.corrected.stillbirth)
    )


class Withdrawal(RegistrationVoided):
    """An entry withdrawn from a department by its agreement (a birth corrected to a stillbirth), not voided.

    Travels and is handled as a ``RegistrationVoided`` (its void rule undoes what the birth did), but the entry
    still stands: a department's rules remember it as current, so a correction back to a live birth applies again.
    """


def _withdrawal(correction: Event) -> Withdrawal:
    """The entry withdrawn, as its department's void rule expects it: the correction's envelope, no details.

    The live birth was, for this department, entered in error; the stillbirth itself is not disclosed.
    """
    return Withdrawal(
        event_id=correction.event_id,
        entry=correction.entry,
        version=correction.version,
        recorded_at=correction.recorded_at,
        register_office=correction.register_office,
        reason=VoidReason.ENTERED_IN_ERROR,
    )


def _matches(segment: str, pattern: str) -> bool:
    return pattern in ("*", segment)


def _remove(data: Any, pattern: list[str]) -> int:
    """Delete every key of ``data`` (nested dicts and lists) that ``pattern`` reaches; return how many."""
    if isinstance(data, list):
        return sum(_remove(item, pattern) for item in data)
    if not isinstance(data, dict) or not pattern:
        return 0
    head, rest = pattern[0], pattern[1:]
    removed = 0
    if head == "**":
        removed += _remove(data, rest)
        removed += sum(_remove(value, pattern) for value in data.values())
        return removed
    for key in [key for key in data if _matches(key, head)]:
        if rest:
            removed += _remove(data[key], rest)
        elif data[key] is not None:
            del data[key]
            removed += 1
    return removed


StripPlan = dict[str, "StripPlan | None"]


@cache
def _strip_plan(model: type[BaseModel], patterns: tuple[str, ...]) -> StripPlan:
    """The fields ``patterns`` reach in ``model``, as a tree (None: set back to its default), worked out once.

    Stripping then costs a walk down these fields only, and no second validation of the event: a field at its
    default is what deleting its key and validating again (``_remove``) gives, without paying for it per message.
    """
    tree: StripPlan = {}
    split = [pattern.split(".") for pattern in patterns]
    for path in field_paths(model):
        segments = path.split(".")
        if not any(_path_matches(segments, pattern) for pattern in split):
            continue
        node: StripPlan | None = tree
        for segment in segments[:-1]:
            assert node is not None
            child = node.setdefault(segment, {})
            if child is None:  # an enclosing field is removed already
                break
            node = child
        else:
            assert node is not None
            node[segments[-1]] = None
    return tree


def _apply_plan(model: BaseModel, plan: StripPlan) -> BaseModel:
    """``model`` with the planned fields at their defaults; the same object when none of them held anything."""
    fields = type(model).model_fields
    updates: dict[str, Any] = {}
    for name, below in plan.items():
        info = fields.get(name)
        if info is None:  # a field of another member of a union
            continue
        value = getattr(model, name)
        if below is None:
            if value is not None:
                updates[name] = info.get_default(call_default_factory=True)
            continue
        new = _apply_value(value, below)
        if new is not value:
            updates[name] = new
    return model.model_copy(update=updates) if updates else model


def _apply_value(value: Any, plan: StripPlan) -> Any:
    if isinstance(value, BaseModel):
        return _apply_plan(value, plan)
    if isinstance(value, list | tuple):
        items = [_apply_value(item, plan) for item in value]
        return value if all(new is old for new, old in zip(items, value, strict=True)) else type(value)(items)
    return value


# The contract's field paths, to check patterns against ------------------------------------------------------


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    """The pydantic models an annotation can hold (through Optional, unions, lists and Annotated)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        yield from _models_in(typing.get_args(annotation)[0])
    elif origin in (Union, types.UnionType, list, tuple):
        for arg in typing.get_args(annotation):
            yield from _models_in(arg)
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation


@cache
def field_paths(model: type[BaseModel], prefix: str = "") -> dict[str, bool]:
    """Every dotted field path of ``model`` and whether the field itself is optional (may be removed)."""
    paths: dict[str, bool] = {}
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        paths[path] = not info.is_required()
        for nested in _models_in(info.annotation):
            paths.update(field_paths(nested, f"{path}."))
    return paths


def _path_matches(path: list[str], pattern: list[str]) -> bool:
    if not pattern:
        return not path
    if pattern[0] == "**":
        return any(_path_matches(path[i:], pattern[1:]) for i in range(len(path) + 1))
    return bool(path) and _matches(path[0], pattern[0]) and _path_matches(path[1:], pattern[1:])


def _check_patterns(department: str, event_types: frozenset[str], patterns: tuple[str, ...]) -> None:
    paths: dict[str, bool] = {}
    for event_type in event_types:
        paths.update(field_paths(EVENT_MODELS[event_type]))
    for pattern in patterns:
        matched = [path for path in paths if _path_matches(path.split("."), pattern.split("."))]
        if not matched:
            raise AgreementError(f"{department}: excluded field {pattern!r} matches no field of the agreed events")
        required = sorted(path for path in matched if not paths[path])
        if required:
            raise AgreementError(
                f"{department}: excluded field {pattern!r} reaches required field(s) {', '.join(required[:3])}; "
                "only optional fields can be withheld"
            )


# Loading ----------------------------------------------------------------------------------------------------


def _text(raw: dict[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise AgreementError(f"{where}: '{key}' must be non-empty text")
    return " ".join(value.split())


def load_agreement(path: Path) -> Agreement:
    """Parse and check one agreement file; a malformed one fails here, before any event is dispatched."""
    where = path.name
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise AgreementError(f"cannot read data-sharing agreement {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise AgreementError(f"{where}: expected a mapping")
    if unexpected := sorted(set(raw) - _KEYS):
        raise AgreementError(
            f"{where}: unknown key(s) {', '.join(map(str, unexpected))}; known: {', '.join(sorted(_KEYS))}"
        )
    department = _text(raw, "department", where)
    types_raw = raw.get("event_types")
    if not isinstance(types_raw, list) or not types_raw:
        raise AgreementError(f"{where}: 'event_types' must be a non-empty list")
    event_types = frozenset(str(t) for t in types_raw)
    unknown = sorted(event_types - EVENT_MODELS.keys())
    if unknown:
        raise AgreementError(f"{where}: unknown event types {', '.join(unknown)}")
    if not event_types - _FOLLOW_UPS:
        raise AgreementError(f"{where}: agrees only corrections and voids, of no register")
    stillbirths = raw.get("stillbirths")
    if not isinstance(stillbirths, bool):
        raise AgreementError(f"{where}: 'stillbirths' must be true or false")
    excluded_raw = raw.get("fields_excluded") or []
    if not isinstance(excluded_raw, list) or not all(isinstance(p, str) and p for p in excluded_raw):
        raise AgreementError(f"{where}: 'fields_excluded' must be a list of field paths")
    excluded = tuple(excluded_raw)
    _check_patterns(department, event_types, excluded)
    return Agreement(
        department=department,
        controller=_text(raw, "controller", where),
        purpose=_text(raw, "purpose", where),
        legal_gateway=_text(raw, "legal_gateway", where),
        event_types=event_types,
        stillbirths=stillbirths,
        fields_excluded=excluded,
    )


def agreement_for(department: str, directory: Path = AGREEMENTS_DIR) -> Agreement:
    """The agreement of ``department``; without one a department receives nothing, so it cannot start."""
    path = directory / f"{department}.yaml"
    if not path.exists():
        raise AgreementError(f"department {department!r} has no data-sharing agreement ({path} is missing)")
    return load_agreement(path)
