"""Data-sharing agreements: which event types and which fields a department may receive, and under which law.

Why allow-lists: an agreement names what a department MAY receive (as the Dutch BRP authorisation table does);
everything else is withheld by default, so a field added to the contract later reaches no department until its
agreement names it. Agreements are deployment files (``agreements/<department>.yaml`` under ``CIVREG_CONFIG_DIR``)
that data protection officers read and sign off, not code; the router (``civreg route``) enforces them once, before
anything leaves for a department's own topic, so a department's process never holds what it may not see:

    department: dvla
    controller: Driver and Vehicle Licensing Agency
    purpose: cancel the driving licence of a person who died; ...
    legal_gateway: Registration Service Act 1953 s19AA; Road Traffic Act 1988 s99
    event_types: [DeathRegistered, RegistrationCorrected, RegistrationVoided]
    stillbirths: false
    fields:
      shared:                      # every agreed event type that has these fields
        - event_id
        - entry.{registration_district,sub_district,register,register_number,entry_number,year_of_registration}
      DeathRegistered:
        - death.deceased.{given_names,family_name,date_of_birth}
      RegistrationVoided: [reason]

- Fields are dotted paths from the event down to a leaf (``death.deceased.identifiers.nino``); ``{a,b}`` lists
  alternatives. There are no wildcards, on purpose: a pattern can only ever name fields that exist when it is
  written. Naming a record (``death.deceased``) is refused: its fields are named one by one.
- For ``RegistrationCorrected`` the paths of ``corrected`` are those of the details of the agreed registers
  (``corrected.deceased.family_name``).
- Checked at load, with the file and line: unknown event types or fields, a missing legal gateway, a required field
  of the contract left out (the projection must still decode as the contract's event).
- An event of a type outside the agreement, or a stillbirth for a department that has no use for one, is
  *withheld*: not delivered, counted as withheld.
- A correction that turns a birth into a stillbirth is the exception: the department may have acted on the live
  birth (a Child Benefit invitation), so it receives the correction as a *withdrawal* of the entry, a
  ``RegistrationVoided`` with the correction's envelope (event id, entry, version, time, office) and nothing of the
  stillbirth, and its void rule undoes what the birth did (or finds nothing to undo). It is a ``Withdrawal``, not a
  registrar's void: the entry still stands, so a later correction back to a live birth applies the birth again.
"""

from __future__ import annotations

import itertools
import re
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import yaml
from pydantic import BaseModel

from civreg.errors import CivregError
from civreg.settings import PACKAGED_CONFIG
from schemas.models import (
    DETAILS_REGISTER,
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
    "WITHDRAWAL_HEADER",
    "Agreement",
    "AgreementError",
    "Withdrawal",
    "agreement_for",
    "contract_paths",
    "field_paths",
    "load_agreement",
    "load_agreements",
]

AGREEMENTS_DIR = PACKAGED_CONFIG.agreements_dir
"""The copies installed with civreg; a service reads ``settings.config_files.agreements_dir``."""

WITHDRAWAL_HEADER = "civreg-withdrawal"
"""Header of a ``RegistrationVoided`` on a department topic that is a ``Withdrawal``."""
WITHHELD_TYPE = "not-in-agreement"
WITHHELD_STILLBIRTH = "stillbirth"
SHARED = "shared"

_REGISTER_OF_TYPE = {model.event_type: register for register, model in REGISTRATION_EVENTS.items()}
_FOLLOW_UPS = frozenset({"RegistrationCorrected", "RegistrationVoided"})
_KEYS = frozenset({"department", "controller", "purpose", "legal_gateway", "event_types", "stillbirths", "fields"})


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
    fields_allowed: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Per agreed event type, the leaf paths the department may receive."""

    # Enforcement ------------------------------------------------------------------------------------------

    def receives(self, register: Register, event_type: str) -> bool:
        """Whether the router sends this department events of ``event_type`` from ``register``'s topic at all (the
        allow-list; a stillbirth may still be withheld, see ``withheld_because``). ``civreg trace`` asks the same."""
        return event_type in self.event_types and register in self.registers

    def withheld_because(self, event: Event) -> str | None:
        """Why ``event`` must not reach the department at all, or None when it may."""
        if not self.receives(event.family, event.event_type):
            return WITHHELD_TYPE
        if not self.stillbirths and _is_stillbirth(event) and not self.withdraws(event):
            return WITHHELD_STILLBIRTH
        return None

    def minimise(self, event: Event) -> Event:
        """``event`` with only the fields this agreement allows (the same object when nothing is removed).

        A correction to a stillbirth the department may not see becomes a withdrawal of the entry (see above).
        """
        if self.withdraws(event):
            return _withdrawal(event)
        kept = self.kept_paths(event.event_type)
        data = event.model_dump(mode="python")
        if not _project(data, "", kept):
            return event
        return type(event).model_validate(data)

    def kept_paths(self, event_type: str) -> frozenset[str]:
        """The allowed leaves of ``event_type`` and every record on the way to them."""
        return _with_ancestors(self.fields_allowed.get(event_type, frozenset()))

    def disclosed(self, event: Event) -> list[str]:
        """The leaf paths with a value in ``event`` as delivered (after ``minimise``): what a disclosure records."""
        found: list[str] = []
        _present(event.model_dump(mode="python"), "", found)
        return sorted(found)

    def withdraws(self, event: Event) -> bool:
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
    On a department's topic it is a ``RegistrationVoided`` with the header ``civreg-withdrawal``.
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


@cache  # the router asks per delivery; an agreement has a handful of allow-lists
def _with_ancestors(leaves: frozenset[str]) -> frozenset[str]:
    kept = set(leaves)
    for leaf in leaves:
        parts = leaf.split(".")
        kept.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return frozenset(kept)


def _project(data: dict[str, Any], prefix: str, kept: frozenset[str]) -> int:
    """Delete from ``data`` (in place) every key whose path is not kept; return how many were deleted."""
    removed = 0
    for key in list(data):
        path = f"{prefix}{key}"
        if path not in kept:
            if data[key] is not None:
                removed += 1
            del data[key]
        elif isinstance(data[key], dict):
            removed += _project(data[key], f"{path}.", kept)
    return removed


def _present(data: dict[str, Any], prefix: str, found: list[str]) -> None:
    for key, value in data.items():
        if isinstance(value, dict):
            _present(value, f"{prefix}{key}.", found)
        elif value is not None and value != []:
            found.append(f"{prefix}{key}")


# The contract's field paths, to check agreements against ------------------------------------------------------


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
    """Every dotted field path of ``model`` and whether the field itself is optional (may be withheld)."""
    paths: dict[str, bool] = {}
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        paths[path] = not info.is_required()
        for nested in _models_in(info.annotation):
            paths.update(field_paths(nested, f"{path}."))
    return paths


def contract_paths(event_type: str, registers: frozenset[Register]) -> dict[str, bool]:
    """The paths of ``event_type`` a department of ``registers`` can meet (a correction's details: only theirs)."""
    if event_type != RegistrationCorrected.event_type:
        return field_paths(EVENT_MODELS[event_type])
    paths: dict[str, bool] = {}
    for name, info in RegistrationCorrected.model_fields.items():
        paths[name] = not info.is_required()
        for nested in _models_in(info.annotation):
            if name == "corrected" and DETAILS_REGISTER[nested] not in registers:  # type: ignore[index]
                continue
            paths.update(field_paths(nested, f"{name}."))
    return paths


def _required_problems(event_type: str, registers: frozenset[Register], kept: frozenset[str]) -> list[str]:
    """Required fields of a kept record (or of the event) that are not kept: the projection would not decode."""
    models: list[tuple[type[BaseModel], str]] = [(EVENT_MODELS[event_type], "")]
    missing: list[str] = []
    while models:
        model, prefix = models.pop()
        for name, info in model.model_fields.items():
            path = f"{prefix}{name}"
            if info.is_required() and path not in kept:
                missing.append(path)
            if path in kept:
                for nested in _models_in(info.annotation):
                    if (
                        model is RegistrationCorrected
                        and name == "corrected"
                        and DETAILS_REGISTER[nested] not in registers  # type: ignore[index]
                    ):
                        continue
                    models.append((nested, f"{path}."))
    return sorted(set(missing))


_BRACES = re.compile(r"\{([^{}]*)\}")


def _expand(pattern: str) -> list[str]:
    """``a.{b,c}.d`` -> ``a.b.d``, ``a.c.d`` (any number of brace groups)."""
    pieces = _BRACES.split(pattern)
    literals, choices = pieces[0::2], [[c.strip() for c in group.split(",")] for group in pieces[1::2]]
    expanded = []
    for combination in itertools.product(*choices):
        text = literals[0]
        for choice, literal in zip(combination, literals[1:], strict=True):
            text += choice + literal
        expanded.append(text)
    return expanded


# Loading ----------------------------------------------------------------------------------------------------


class _Marks:
    """Line numbers of an agreement's YAML nodes, so an error says where to look."""

    def __init__(self, node: yaml.Node | None, where: str) -> None:
        self.root = node
        self.where = where

    def node(self, *keys: str, key_itself: bool = False) -> yaml.Node | None:
        node = self.root
        for key in keys:
            if not isinstance(node, yaml.MappingNode):
                return None
            pair = next(((k, value) for k, value in node.value if getattr(k, "value", None) == key), None)
            node = None if pair is None else pair[0 if key_itself and key == keys[-1] else 1]
        return node

    def at(self, *keys: str, item: int | None = None, key_itself: bool = False) -> str:
        """``file:line`` of the value under ``keys`` (item ``item`` of a list; the key itself), or of the file."""
        node = self.node(*keys, key_itself=key_itself)
        if item is not None and isinstance(node, yaml.SequenceNode) and item < len(node.value):
            node = node.value[item]
        if node is None:
            return self.where
        return f"{self.where}:{node.start_mark.line + 1}"


def _text(raw: dict[str, Any], key: str, marks: _Marks) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise AgreementError(f"{marks.at(key)}: '{key}' must be non-empty text")
    return " ".join(value.split())


def _allowed_fields(
    raw: Any, event_types: frozenset[str], registers: frozenset[Register], marks: _Marks
) -> dict[str, frozenset[str]]:
    """Each agreed event type's allowed leaves, checked against the contract."""
    if not isinstance(raw, dict) or not raw:
        raise AgreementError(f"{marks.at('fields')}: 'fields' must map event types (and '{SHARED}') to field lists")
    paths = {event_type: contract_paths(event_type, registers) for event_type in event_types}
    leaves = {
        event_type: {p for p in found if not any(q.startswith(f"{p}.") for q in found)}
        for event_type, found in paths.items()
    }
    allowed: dict[str, set[str]] = {event_type: set() for event_type in event_types}
    for raw_key, patterns in raw.items():
        key = str(raw_key)
        if key != SHARED and key not in event_types:
            known = "unknown event type" if key not in EVENT_MODELS else "event type not in 'event_types'"
            raise AgreementError(f"{marks.at('fields', key, key_itself=True)}: fields for {key}: {known}")
        if not isinstance(patterns, list) or not all(isinstance(p, str) and p for p in patterns):
            raise AgreementError(f"{marks.at('fields', key)}: fields of {key} must be a list of field paths")
        targets = sorted(event_types) if key == SHARED else [key]
        for index, pattern in enumerate(patterns):
            line = marks.at("fields", key, item=index)
            if "*" in pattern:
                raise AgreementError(f"{line}: {pattern!r}: no wildcards; name each field ('{{a,b}}' lists several)")
            for path in _expand(pattern):
                hits = [t for t in targets if path in leaves[t]]
                if not hits:
                    records = [t for t in targets if path in paths[t]]
                    if records:
                        raise AgreementError(f"{line}: {path!r} is a record of {records[0]}: name its fields")
                    raise AgreementError(f"{line}: {path!r} is not a field of {' or '.join(targets)}")
                for target in hits:
                    allowed[target].add(path)
    result = {event_type: frozenset(found) for event_type, found in allowed.items()}
    for event_type in sorted(event_types):
        missing = _required_problems(event_type, registers, _with_ancestors(result[event_type]))
        if missing:
            where = marks.at("fields", event_type) if marks.node("fields", event_type) else marks.at("fields")
            raise AgreementError(
                f"{where}: {event_type} leaves out required field(s) {', '.join(missing[:3])}: the contract "
                "requires them, so the department's copy would not decode (the contract, not the agreement, would "
                "have to change)"
            )
    return result


def load_agreement(path: Path) -> Agreement:
    """Parse and check one agreement file; a malformed one fails here, before anything is routed."""
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
        raw = yaml.safe_load(text)
        marks = _Marks(yaml.compose(text, Loader=yaml.SafeLoader), where)
    except (OSError, yaml.YAMLError) as exc:
        raise AgreementError(f"cannot read data-sharing agreement {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise AgreementError(f"{where}: expected a mapping")
    if unexpected := sorted(set(map(str, raw)) - _KEYS):
        raise AgreementError(
            f"{marks.at(unexpected[0], key_itself=True)}: unknown key(s) {', '.join(unexpected)}; "
            f"known: {', '.join(sorted(_KEYS))}"
        )
    department = _text(raw, "department", marks)
    types_raw = raw.get("event_types")
    if not isinstance(types_raw, list) or not types_raw:
        raise AgreementError(f"{marks.at('event_types')}: 'event_types' must be a non-empty list")
    for index, event_type in enumerate(types_raw):
        if str(event_type) not in EVENT_MODELS:
            raise AgreementError(f"{marks.at('event_types', item=index)}: unknown event types {event_type}")
    event_types = frozenset(str(t) for t in types_raw)
    if not event_types - _FOLLOW_UPS:
        raise AgreementError(f"{marks.at('event_types')}: agrees only corrections and voids, of no register")
    stillbirths = raw.get("stillbirths")
    if not isinstance(stillbirths, bool):
        raise AgreementError(f"{marks.at('stillbirths')}: 'stillbirths' must be true or false")
    legal_gateway = _text(raw, "legal_gateway", marks)
    registers = frozenset(_REGISTER_OF_TYPE[t] for t in event_types if t in _REGISTER_OF_TYPE)
    return Agreement(
        department=department,
        controller=_text(raw, "controller", marks),
        purpose=_text(raw, "purpose", marks),
        legal_gateway=legal_gateway,
        event_types=event_types,
        stillbirths=stillbirths,
        fields_allowed=_allowed_fields(raw.get("fields"), event_types, registers, marks),
    )


def agreement_for(department: str, directory: Path = AGREEMENTS_DIR) -> Agreement:
    """The agreement of ``department``; without one a department receives nothing, so it cannot start."""
    path = directory / f"{department}.yaml"
    if not path.exists():
        raise AgreementError(f"department {department!r} has no data-sharing agreement ({path} is missing)")
    return load_agreement(path)


def load_agreements(directory: Path = AGREEMENTS_DIR) -> dict[str, Agreement]:
    """Every agreement in ``directory`` by department: what the router delivers.

    A directory with no agreement is an error, not an empty roster: a router (or ``agreements validate``) pointed at
    the wrong CIVREG_CONFIG_DIR would otherwise deliver nothing and still report success.
    """
    paths = sorted(directory.glob("*.yaml"))
    if not paths:
        raise AgreementError(f"{directory}: no agreement (*.yaml) found; check CIVREG_CONFIG_DIR")
    agreements = [load_agreement(path) for path in paths]
    return {agreement.department: agreement for agreement in agreements}
