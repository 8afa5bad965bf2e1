"""Loads the ``.avsc`` files into standalone schemas, one per event type.

Shared named types (Person, EntryReference, ...) live once in ``avro/types/``; each event schema in
``avro/events/`` refers to them by full name. ``standalone_schema`` inlines each named type at its first use, which
is the self-contained form a Confluent-compatible registry stores and any Avro implementation can read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import fastavro

__all__ = [
    "AVRO_DIR",
    "EVENT_TYPES",
    "NAMESPACE",
    "EventSchema",
    "event_schema",
    "event_schemas",
    "named_types",
]

AVRO_DIR = Path(__file__).parent / "avro"
NAMESPACE = "uk.gov.civreg"
EVENT_TYPES: tuple[str, ...] = (
    "BirthRegistered",
    "DeathRegistered",
    "MarriageRegistered",
    "CivilPartnershipRegistered",
    "RegistrationCorrected",
    "RegistrationVoided",
)
_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


@dataclass(frozen=True)
class EventSchema:
    """One event type's schema: the JSON a registry stores and the fastavro-parsed form used to encode."""

    event_type: str
    full_name: str
    schema: dict[str, Any]
    parsed: dict[str, Any]

    @property
    def schema_str(self) -> str:
        """Compact JSON text of the standalone schema (what is registered)."""
        return json.dumps(self.schema, separators=(",", ":"))


@cache
def named_types() -> dict[str, dict[str, Any]]:
    """Shared named types by full name, as written in ``avro/types``."""
    types: dict[str, dict[str, Any]] = {}
    for path in sorted((AVRO_DIR / "types").glob("*.avsc")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        types[f"{schema['namespace']}.{schema['name']}"] = schema
    return types


def _inline(node: Any, defined: set[str]) -> Any:
    """Replace references to shared named types by their definition at first use (depth first)."""
    if isinstance(node, str):
        if node in _PRIMITIVES or node in defined:
            return node
        definition = named_types().get(node)
        if definition is None:
            raise ValueError(f"schema refers to unknown type {node!r}")
        defined.add(node)
        return _inline(definition, defined)
    if isinstance(node, list):
        return [_inline(branch, defined) for branch in node]
    if isinstance(node, dict):
        kind = node.get("type")
        if kind in ("record", "error"):
            defined.add(f"{node.get('namespace', NAMESPACE)}.{node['name']}")
            fields = [{**field, "type": _inline(field["type"], defined)} for field in node["fields"]]
            return {**node, "fields": fields}
        if kind in ("enum", "fixed"):
            defined.add(f"{node.get('namespace', NAMESPACE)}.{node['name']}")
            return node
        if kind == "array":
            return {**node, "items": _inline(node["items"], defined)}
        if kind == "map":
            return {**node, "values": _inline(node["values"], defined)}
        if isinstance(kind, (dict, list)) or (isinstance(kind, str) and kind not in _PRIMITIVES):
            return {**node, "type": _inline(kind, defined)}
        return node
    raise TypeError(f"unexpected schema node {node!r}")


def standalone_schema(raw: dict[str, Any]) -> dict[str, Any]:
    """A self-contained copy of ``raw`` with every shared named type inlined once."""
    result: dict[str, Any] = _inline(raw, set())
    return result


@cache
def event_schema(event_type: str) -> EventSchema:
    """The schema of one event type, e.g. ``event_schema("DeathRegistered")``."""
    if event_type not in EVENT_TYPES:
        raise KeyError(f"unknown event type {event_type!r}; known: {', '.join(EVENT_TYPES)}")
    raw = json.loads((AVRO_DIR / "events" / f"{event_type}.avsc").read_text(encoding="utf-8"))
    schema = standalone_schema(raw)
    parsed = fastavro.parse_schema(schema)
    assert isinstance(parsed, dict)
    return EventSchema(event_type, f"{raw['namespace']}.{raw['name']}", schema, parsed)


def event_schemas() -> dict[str, EventSchema]:
    """Every event type's schema."""
    return {event_type: event_schema(event_type) for event_type in EVENT_TYPES}
