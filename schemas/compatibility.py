"""Avro schema compatibility, rule by rule, with messages that name the field and the rule that breaks.

Why our own checker when the registry has one: ``civreg schemas check`` must also work with no registry (against a
git revision), and a registry's refusal rarely says which field or why. fastavro could only tell "this data does
not read", not which rule a change breaks. The rules are the Avro specification's schema resolution (a reader
schema reading data written with a writer schema); the levels are the Confluent ones:

- BACKWARD: the new schema reads data written with the previous one (consumers upgrade first);
- FORWARD: the previous schema reads data written with the new one (producers upgrade first);
- FULL: both; ``_TRANSITIVE``: against every earlier version, not only the latest.

Pure functions over schema JSON; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "AvroSchema",
    "CompatibilityLevel",
    "Incompatibility",
    "Violation",
    "check_evolution",
    "incompatibilities",
]

_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_NAMED = frozenset({"record", "error", "enum", "fixed"})
# Writer type -> reader types that can read it (the specification's promotions).
_PROMOTIONS: dict[str, frozenset[str]] = {
    "int": frozenset({"long", "float", "double"}),
    "long": frozenset({"float", "double"}),
    "float": frozenset({"double"}),
    "string": frozenset({"bytes"}),
    "bytes": frozenset({"string"}),
}


class CompatibilityLevel(StrEnum):
    """A registry compatibility level (Confluent names; Apicurio and Karapace use the same)."""

    NONE = "NONE"
    BACKWARD = "BACKWARD"
    BACKWARD_TRANSITIVE = "BACKWARD_TRANSITIVE"
    FORWARD = "FORWARD"
    FORWARD_TRANSITIVE = "FORWARD_TRANSITIVE"
    FULL = "FULL"
    FULL_TRANSITIVE = "FULL_TRANSITIVE"

    @property
    def backward(self) -> bool:
        """The new schema must read data written with earlier versions."""
        return self.value.startswith(("BACKWARD", "FULL"))

    @property
    def forward(self) -> bool:
        """Earlier versions must read data written with the new schema."""
        return self.value.startswith(("FORWARD", "FULL"))

    @property
    def transitive(self) -> bool:
        """Checked against every earlier version, not only the latest."""
        return self.value.endswith("_TRANSITIVE")


@dataclass(frozen=True)
class Incompatibility:
    """One broken resolution rule: where (a dotted field path) and which rule. Never holds data values."""

    path: str
    rule: str
    detail: str

    def __str__(self) -> str:
        where = f"field '{self.path}'" if self.path else "the record itself"
        return f"{where}: {self.detail} [{self.rule}]"


@dataclass(frozen=True)
class Violation:
    """A compatibility level broken against one earlier version, in one direction."""

    level: CompatibilityLevel
    direction: str
    against: str
    problem: Incompatibility

    def __str__(self) -> str:
        if self.direction == "backward":
            why = f"the new schema cannot read data written with {self.against}"
        else:
            why = f"consumers on {self.against} cannot read data written with the new schema"
        return f"{self.level.value} broken ({self.direction}: {why}): {self.problem}"


class AvroSchema:
    """A schema's JSON plus the table of its named types, so references by name can be followed.

    ``extra_types`` supplies named types defined elsewhere (the shared ``avro/types`` files of a git revision);
    a standalone schema (what a registry stores) needs none.
    """

    def __init__(self, schema: Any, extra_types: Mapping[str, Any] | None = None) -> None:
        self.schema = schema
        self.names: dict[str, tuple[dict[str, Any], str]] = {}
        for definition in (extra_types or {}).values():
            _collect(definition, "", self.names)
        _collect(schema, "", self.names)

    @property
    def full_name(self) -> str | None:
        """Full name of a named top-level schema (a record's), else None."""
        kind, node, namespace = _resolve(self.schema, "", self.names)
        return _full_name(node["name"], namespace) if kind in _NAMED else None


def _full_name(name: str, namespace: str) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _collect(node: Any, namespace: str, names: dict[str, tuple[dict[str, Any], str]]) -> None:
    """Record every named definition in ``node`` under its full name, with the namespace its children inherit."""
    if isinstance(node, list):
        for branch in node:
            _collect(branch, namespace, names)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    if kind in _NAMED:
        full = _full_name(node["name"], node.get("namespace", namespace))
        inner = full.rsplit(".", 1)[0] if "." in full else ""
        names.setdefault(full, (node, inner))
        for field in node.get("fields", []):
            _collect(field["type"], inner, names)
    elif kind == "array":
        _collect(node["items"], namespace, names)
    elif kind == "map":
        _collect(node["values"], namespace, names)
    elif isinstance(kind, (dict, list)):
        _collect(kind, namespace, names)


def _resolve(node: Any, namespace: str, names: Mapping[str, tuple[dict[str, Any], str]]) -> tuple[str, Any, str]:
    """(kind, node, namespace for its children): follows references, unwraps ``{"type": "string"}``."""
    if isinstance(node, list):
        return "union", node, namespace
    if isinstance(node, str):
        if node in _PRIMITIVES:
            return node, {"type": node}, namespace
        found = names.get(_full_name(node, namespace)) or names.get(node)
        if found is None:
            raise ValueError(f"schema refers to unknown type {node!r}")
        definition, inner = found
        return definition["type"], definition, inner
    kind = node.get("type")
    if kind in _PRIMITIVES:
        return kind, node, namespace
    if kind in _NAMED:
        full = _full_name(node["name"], node.get("namespace", namespace))
        return kind, node, full.rsplit(".", 1)[0] if "." in full else ""
    if kind in ("array", "map"):
        return kind, node, namespace
    return _resolve(kind, namespace, names)


def _describe(kind: str, node: Any, namespace: str) -> str:
    if kind in _NAMED:
        return f"{kind} {_full_name(node['name'], node.get('namespace', namespace))}"
    if kind == "union":
        return "union"
    logical = node.get("logicalType") if isinstance(node, dict) else None
    return f"{kind} ({logical})" if logical else kind


class _Checker:
    """Walks a reader and a writer schema together, collecting every broken rule."""

    def __init__(self, reader: AvroSchema, writer: AvroSchema, reader_label: str, writer_label: str) -> None:
        self.reader = reader
        self.writer = writer
        self.r_label = reader_label
        self.w_label = writer_label
        self.found: list[Incompatibility] = []
        self._seen: set[tuple[int, int]] = set()

    def _r(self, node: Any, namespace: str) -> tuple[str, Any, str]:
        return _resolve(node, namespace, self.reader.names)

    def _w(self, node: Any, namespace: str) -> tuple[str, Any, str]:
        return _resolve(node, namespace, self.writer.names)

    def _add(self, path: str, rule: str, detail: str) -> None:
        self.found.append(Incompatibility(path, rule, detail))

    def _matches(self, reader: tuple[str, Any, str], writer: tuple[str, Any, str]) -> bool:
        """The specification's shallow match that picks a union branch."""
        r_kind, r_node, r_ns = reader
        w_kind, w_node, w_ns = writer
        if w_kind in _PRIMITIVES:
            return r_kind == w_kind or r_kind in _PROMOTIONS.get(w_kind, frozenset())
        if r_kind != w_kind:
            return False
        if r_kind in _NAMED:
            return _short(r_node["name"]) == _short(w_node["name"]) or self._aliased(r_node, r_ns, w_node, w_ns)
        return True

    @staticmethod
    def _aliased(r_node: dict[str, Any], r_ns: str, w_node: dict[str, Any], w_ns: str) -> bool:
        w_full = _full_name(w_node["name"], w_node.get("namespace", w_ns))
        aliases = {_full_name(alias, r_ns) for alias in r_node.get("aliases", [])}
        return w_full in aliases or _short(w_full) in {_short(alias) for alias in aliases}

    def check(self, r_node: Any, r_ns: str, w_node: Any, w_ns: str, path: str) -> None:
        reader = self._r(r_node, r_ns)
        writer = self._w(w_node, w_ns)
        r_kind, r_def, r_inner = reader
        w_kind, w_def, w_inner = writer
        if w_kind == "union":
            for branch in w_def:
                if r_kind == "union":
                    w_branch = self._w(branch, w_inner)
                    match = next((b for b in r_def if self._matches(self._r(b, r_inner), w_branch)), None)
                    if match is None:
                        self._add(
                            path,
                            "union-branch-missing",
                            f"{self.w_label} may write {_describe(*w_branch)}, which is not a branch of "
                            f"{self.r_label}'s union",
                        )
                    else:
                        self.check(match, r_inner, branch, w_inner, path)
                else:
                    self.check(r_def, r_inner, branch, w_inner, path)
            return
        if r_kind == "union":
            match = next((b for b in r_def if self._matches(self._r(b, r_inner), writer)), None)
            if match is None:
                self._add(
                    path,
                    "type-changed",
                    f"{self.w_label} writes {_describe(*writer)}, which is not a branch of {self.r_label}'s union",
                )
            else:
                self.check(match, r_inner, w_def, w_inner, path)
            return
        if not self._matches(reader, writer):
            self._add(
                path,
                "type-changed",
                f"{self.w_label} writes {_describe(*writer)}, which {self.r_label}'s {_describe(*reader)} cannot read",
            )
            return
        if r_kind in ("record", "error"):
            self._record(r_def, r_inner, w_def, w_inner, path)
        elif r_kind == "enum":
            missing = [symbol for symbol in w_def["symbols"] if symbol not in r_def["symbols"]]
            if missing and "default" not in r_def:
                self._add(
                    path,
                    "enum-symbol-unknown",
                    f"{self.w_label} may write symbol(s) {', '.join(missing)}, which {self.r_label} lacks "
                    "and it has no default symbol",
                )
        elif r_kind == "fixed" and r_def["size"] != w_def["size"]:
            self._add(
                path, "fixed-size-changed", f"size {w_def['size']} in {self.w_label}, {r_def['size']} in {self.r_label}"
            )
        elif r_kind == "array":
            self.check(r_def["items"], r_inner, w_def["items"], w_inner, f"{path}[]")
        elif r_kind == "map":
            self.check(r_def["values"], r_inner, w_def["values"], w_inner, f"{path}{{}}")

    def _record(self, r_def: dict[str, Any], r_ns: str, w_def: dict[str, Any], w_ns: str, path: str) -> None:
        key = (id(r_def), id(w_def))
        if key in self._seen:  # a recursive type: this pair is being checked further up
            return
        self._seen.add(key)
        writer_fields = {field["name"]: field for field in w_def["fields"]}
        for field in r_def["fields"]:
            name = field["name"]
            where = f"{path}.{name}" if path else name
            written = writer_fields.get(name) or next(
                (writer_fields[alias] for alias in field.get("aliases", []) if alias in writer_fields), None
            )
            if written is not None:
                self.check(field["type"], r_ns, written["type"], w_ns, where)
            elif "default" not in field:
                self._add(
                    where,
                    "field-missing-without-default",
                    f"{self.r_label} requires it (no default) but {self.w_label} does not write it",
                )


def incompatibilities(
    reader: AvroSchema, writer: AvroSchema, *, reader_label: str = "the reader", writer_label: str = "the writer"
) -> list[Incompatibility]:
    """Every rule that stops ``reader`` from reading data written with ``writer``; empty when it can."""
    checker = _Checker(reader, writer, reader_label, writer_label)
    checker.check(reader.schema, "", writer.schema, "", "")
    return checker.found


def check_evolution(
    new: AvroSchema, previous: Sequence[tuple[str, AvroSchema]], level: CompatibilityLevel
) -> list[Violation]:
    """What ``level`` forbids in ``new`` given ``previous`` versions (oldest first, each with a label)."""
    if level is CompatibilityLevel.NONE or not previous:
        return []
    against = previous if level.transitive else previous[-1:]
    violations: list[Violation] = []
    for label, old in against:
        if level.backward:
            for problem in incompatibilities(new, old, reader_label="the new schema", writer_label=label):
                violations.append(Violation(level, "backward", label, problem))
        if level.forward:
            for problem in incompatibilities(old, new, reader_label=label, writer_label="the new schema"):
                violations.append(Violation(level, "forward", label, problem))
    return violations
