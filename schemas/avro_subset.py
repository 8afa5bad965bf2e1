"""Reading a writer schema that is a field subset of the reader's without fastavro's schema resolution.

Why: a department's topic carries projections, whose schemas are the event's schema with the fields its
agreement does not allow taken out. Reading them with Avro schema resolution (fastavro's ``reader_schema``) walks
both schemas in Python for every field of every message, about twice the cost of reading with the writer schema
alone. When the writer is a pure subset of the reader (every writer field is in the reader with the same type,
every named type, enum and union the same, and every reader field the writer lacks has a simple default), Avro's
resolution rules give exactly the writer's record plus the reader's defaults for the missing fields. That is what
``subset_filler`` builds, once per writer schema; anything else (type promotions, aliases, changed enums or unions,
defaults that are records, bytes or logical types) returns None and the caller resolves as before.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

__all__ = ["Filler", "subset_filler"]

Filler = Callable[[dict[str, Any]], dict[str, Any]]
"""Adds the reader's defaults to a record read with the writer schema (in place; returns it)."""

_SIMPLE_DEFAULTS = (type(None), bool, int, float, str)
_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})


class _NotSubset(Exception):
    """The writer is not a plain field subset of the reader: resolve with fastavro."""


def subset_filler(writer: dict[str, Any], reader: dict[str, Any]) -> Filler | None:
    """What to add to a record read with ``writer`` alone so it equals the record Avro resolution against
    ``reader`` gives; None when that is not a plain field subset (the caller then uses schema resolution).

    Both are fastavro-parsed schemas (``fastavro.parse_schema``: named types once, then by name).
    """
    names = (_named(writer), _named(reader))
    try:
        fill = _node(writer, reader, names, {})
    except _NotSubset:
        return None

    def filler(record: dict[str, Any]) -> dict[str, Any]:
        if fill is not None:
            fill(record)
        return record

    return filler


_Fill = Callable[[Any], None] | None
"""Fills one decoded value in place; None when the value needs nothing."""


def _in_progress(value: Any) -> None:
    """Marks a record type whose fill is being built (a use of it inside itself is a recursive type)."""


_IN_PROGRESS: _Fill = _in_progress


def _named(schema: dict[str, Any]) -> dict[str, Any]:
    named: dict[str, Any] = schema.get("__named_schemas") or {}
    return named


def _definition(node: Any, named: dict[str, Any]) -> Any:
    """A named type referred to by name is its definition; anything else is itself."""
    if isinstance(node, str) and node not in _PRIMITIVES:
        if node not in named:
            raise _NotSubset
        return named[node]
    return node


def _node(writer: Any, reader: Any, names: tuple[dict[str, Any], dict[str, Any]], seen: dict[str, _Fill]) -> _Fill:
    writer, reader = _definition(writer, names[0]), _definition(reader, names[1])
    if isinstance(writer, list) or isinstance(reader, list):
        return _union(writer, reader, names, seen)
    if isinstance(writer, str) or isinstance(reader, str):
        if writer != reader:  # a promotion (int -> long ...) or another type: resolution decides
            raise _NotSubset
        return None
    kind = writer.get("type")
    if kind != reader.get("type"):
        raise _NotSubset
    if kind == "record":
        return _record(writer, reader, names, seen)
    if kind == "array":
        return _each(_node(writer["items"], reader["items"], names, seen), lambda values: values)
    if kind == "map":
        return _each(_node(writer["values"], reader["values"], names, seen), lambda mapping: mapping.values())
    if kind == "enum":
        if _unqualified(writer) != _unqualified(reader) or writer.get("symbols") != reader.get("symbols"):
            raise _NotSubset
        return None
    if _plain(writer) != _plain(reader):  # fixed, logical types, primitives written as {"type": ...}
        raise _NotSubset
    return None


def _each(fill: _Fill, items: Callable[[Any], Any]) -> _Fill:
    """Fill every item of an array or value of a map."""
    if fill is None:
        return None
    each = fill

    def fill_each(container: Any) -> None:
        for item in items(container):
            if item is not None:
                each(item)

    return fill_each


def _unqualified(node: dict[str, Any]) -> str:
    """A named type's name without its namespace: a projection's types live in their own namespace."""
    return str(node.get("name", "")).rsplit(".", 1)[-1]


def _plain(node: dict[str, Any]) -> dict[str, Any]:
    """A node without its documentation and fastavro's bookkeeping keys."""
    return {key: value for key, value in node.items() if key != "doc" and not key.startswith("__")}


def _union(writer: Any, reader: Any, names: tuple[dict[str, Any], dict[str, Any]], seen: dict[str, _Fill]) -> _Fill:
    if not (isinstance(writer, list) and isinstance(reader, list)) or len(writer) != len(reader):
        raise _NotSubset
    fills = [_node(w, r, names, seen) for w, r in zip(writer, reader, strict=True)]
    branches = [_definition(branch, names[1]) for branch in reader]
    records = [i for i, branch in enumerate(branches) if isinstance(branch, dict) and branch.get("type") == "record"]
    needed = [i for i, fill in enumerate(fills) if fill is not None]
    if not needed:
        return None
    if (
        len(records) != 1
        or needed != records
        or any(isinstance(branch, dict) and branch.get("type") in ("map", "array") for branch in branches)
    ):
        raise _NotSubset  # which branch a dict belongs to would be a guess
    fill = fills[records[0]]
    assert fill is not None

    def fill_branch(value: Any) -> None:
        if isinstance(value, dict):
            fill(value)

    return fill_branch


def _record(
    writer: dict[str, Any], reader: dict[str, Any], names: tuple[dict[str, Any], dict[str, Any]], seen: dict[str, _Fill]
) -> _Fill:
    name = reader.get("name", "")
    if _unqualified(writer) != _unqualified(reader):  # Avro matches named types by unqualified name
        raise _NotSubset
    if name in seen:  # the same named type used again: its fill was built at its first use
        if seen[name] is _IN_PROGRESS:
            raise _NotSubset  # a recursive type: not worth the care here
        return seen[name]
    seen[name] = _IN_PROGRESS
    writer_fields = {field["name"]: field for field in writer["fields"]}
    reader_fields = {field["name"]: field for field in reader["fields"]}
    if not writer_fields.keys() <= reader_fields.keys():
        raise _NotSubset  # resolution drops a field the reader lacks; a plain read would keep it
    defaults: dict[str, Any] = {}
    nested: list[tuple[str, Callable[[Any], None]]] = []
    for field_name, field in reader_fields.items():
        if field.get("aliases"):
            raise _NotSubset
        if field_name not in writer_fields:
            if "default" not in field:
                raise _NotSubset
            defaults[field_name] = _default(field["default"], field["type"], names[1])
            continue
        fill = _node(writer_fields[field_name]["type"], field["type"], names, seen)
        if fill is not None:
            nested.append((field_name, fill))
    if not defaults and not nested:
        return None

    def fill_record(record: dict[str, Any]) -> None:
        for field_name, default in defaults.items():
            # A record's default is copied for each record, so no two decoded records share one dict.
            record[field_name] = copy.deepcopy(default) if isinstance(default, dict) else default
        for field_name, fill in nested:
            value = record[field_name]
            if value is not None:
                fill(value)

    seen[name] = fill_record
    return fill_record


def _default(value: Any, node: Any, named: dict[str, Any]) -> Any:
    """A missing field's default as fastavro would decode it; _NotSubset when it would convert it (a logical type,
    an enum, bytes, a union's non-null branch, a record of anything else)."""
    node = _definition(node, named)
    if value is None or (isinstance(value, _SIMPLE_DEFAULTS) and _primitive(node, named)):
        return value
    if isinstance(node, dict) and node.get("type") == "record" and isinstance(value, dict):
        fields = {field["name"]: field["type"] for field in node["fields"]}
        if value.keys() != fields.keys():
            raise _NotSubset
        return {name: _default(value[name], fields[name], named) for name in fields}
    raise _NotSubset


def _primitive(node: Any, named: dict[str, Any]) -> bool:
    """A plain primitive type (no logical type): its JSON default is the decoded value as it stands."""
    node = _definition(node, named)
    return isinstance(node, str) and node in _PRIMITIVES and node != "bytes"
