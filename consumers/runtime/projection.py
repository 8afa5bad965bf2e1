"""A department's projection of the contract: the Avro schema of what its agreement allows, and its encoding.

Why derived schemas: a department's topic must not carry a withheld field even as an empty slot, so the router writes
each event with the contract's schema minus every field the agreement does not name (per department and event type).
The projection is registered under the department topic's own subject (``<department topic>-<record full name>``,
TopicRecordNameStrategy, the compatibility rule of ``schema-compatibility.yaml``). A department reads it with the
contract's schema as reader: Avro resolution fills the defaults of the withheld optional fields (the agreement
loader has already refused any agreement that leaves out a required one).

Named types nested in a projection are renamed by where they sit (``uk.gov.civreg.projected.death.deceased.Person``):
Person is projected differently as a deceased person and as a surviving partner, and Avro matches records by their
unqualified name, so the contract's reader still resolves them.
"""

from __future__ import annotations

import dataclasses
import io
import json
import struct
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

import fastavro

from consumers.runtime.agreements import Agreement
from schemas.avro_writer import RecordWriter, compile_writer
from schemas.catalogue import NAMESPACE, event_schema, named_types
from schemas.codec import MAGIC_BYTE, Codec, to_avro
from schemas.models import DETAILS_REGISTER, Event
from schemas.registry import RegistrySchemaResolver, subject_name
from schemas.topics import Register, department_topic

__all__ = ["Projection", "ProjectionWriter", "projection", "projection_subject"]

_HEADER = struct.Struct(">BI")
_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
_BRANCH_REGISTER = {model.__name__: register for model, register in DETAILS_REGISTER.items()}
PROJECTED = f"{NAMESPACE}.projected"


@dataclass(frozen=True)
class Projection:
    """One department's schema for one event type."""

    department: str
    event_type: str
    full_name: str
    schema: dict[str, Any]
    parsed: dict[str, Any]
    kept: frozenset[str] = frozenset()
    """The agreed leaf paths and every record on the way to them."""
    writer: RecordWriter = dataclasses.field(init=False, repr=False, compare=False)
    """Compiled for this schema: it reads only the projection's fields, so the whole event's record is its input."""
    branches: dict[str, str] = dataclasses.field(init=False, repr=False, compare=False)
    """A correction's details: the contract's branch full name -> this projection's (renamed) one."""

    disclosure_plan: _Plan = dataclasses.field(init=False, repr=False, compare=False)
    """Each projected field with its dotted path, and the plan of its fields when it is a record."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "writer", compile_writer(self.parsed))
        object.__setattr__(self, "branches", _branch_names(self.schema))
        object.__setattr__(self, "disclosure_plan", _plan(self.schema, ""))

    @cached_property
    def schema_str(self) -> str:
        """Compact JSON text (what is registered); worked out once, the router asks for it per delivery."""
        return json.dumps(self.schema, separators=(",", ":"), sort_keys=True)

    def record(self, event: Event) -> dict[str, Any]:
        """``event`` (already minimised by the agreement) as this projection's record: only the agreed fields."""
        projected = _value(to_avro(event), self.schema)
        assert isinstance(projected, dict)
        return projected

    def encode(self, event: Event, record: dict[str, Any] | None = None) -> tuple[bytes, list[str]]:
        """The Avro body of ``event`` (validated when decoded; not minimised) cut to this projection, and the leaf
        paths it discloses: no model is rebuilt or validated again.

        The bytes equal those of ``record(agreement.minimise(event))`` written by fastavro: the compiled writer
        takes from each record only the projection's fields, and minimising (removing fields, then validating the
        rest again) changes no kept value. The disclosed paths are those with a value among the kept ones, what
        ``Agreement.disclosed`` finds in the minimised event (``tests/contract/test_projection_plan.py``).
        ``record`` is ``to_avro(event)`` when the caller has it already (the router: once per event for all lanes);
        it is not changed.
        """
        record = to_avro(event) if record is None else record
        corrected = record.get("corrected")
        if type(corrected) is tuple:  # the contract's branch name -> the projection's (a copy: record is shared)
            record = {**record, "corrected": (self.branches[corrected[0]], corrected[1])}
        found: list[str] = []
        _disclosed(record, self.disclosure_plan, found)
        found.sort()
        return self.writer(record), found


def projection_subject(department: str, event_type: str, prefix: str) -> str:
    """The registry subject of a department's projection of ``event_type``."""
    return subject_name(department_topic(department, prefix), event_schema(event_type).full_name)


@cache
def _projection(department: str, event_type: str, kept: frozenset[str], registers: frozenset[Register]) -> Projection:
    raw = json.loads(json.dumps(event_schema(event_type).schema))  # the standalone schema, copied
    schema = _record(raw, "", kept, registers, root=True)
    parsed = fastavro.parse_schema(schema, named_schemas={})
    assert isinstance(parsed, dict)
    return Projection(department, event_type, event_schema(event_type).full_name, schema, parsed, kept)


def projection(agreement: Agreement, event_type: str) -> Projection:
    """The projection of ``event_type`` under ``agreement`` (worked out once)."""
    return _projection(agreement.department, event_type, agreement.kept_paths(event_type), agreement.registers)


def _definition(node: Any) -> Any:
    """A named type's definition wherever the standalone schema only refers to it by name."""
    if isinstance(node, str) and node not in _PRIMITIVES:
        return named_types()[node]
    return node


def _record(
    node: dict[str, Any], path: str, kept: frozenset[str], registers: frozenset[Register], *, root: bool = False
) -> dict[str, Any]:
    fields = []
    for field in node["fields"]:
        field_path = f"{path}{field['name']}"
        if field_path not in kept:
            continue
        projected = {**field, "type": _type(field["type"], field_path, kept, registers)}
        if "default" in field and isinstance(field["default"], dict):
            names = {f["name"] for f in _definition(projected["type"]).get("fields", [])}
            projected["default"] = {k: v for k, v in field["default"].items() if k in names}
        fields.append(projected)
    name = node["name"].split(".")[-1]
    full_name = f"{node.get('namespace', NAMESPACE)}.{name}" if root else f"{PROJECTED}.{path or 'root'}{name}"
    result = {key: value for key, value in node.items() if key not in ("fields", "name", "namespace")}
    return {**result, "name": full_name, "fields": fields}


def _type(node: Any, path: str, kept: frozenset[str], registers: frozenset[Register]) -> Any:
    node = _definition(node)
    if isinstance(node, list):
        branches = []
        for branch in node:
            definition = _definition(branch)
            if isinstance(definition, dict) and definition.get("type") == "record":
                register = _BRANCH_REGISTER.get(definition["name"].split(".")[-1])
                if register is not None and register not in registers:
                    continue  # a correction's details of a register the department does not receive
                namespaced = path if register is None else f"{path}.{definition['name'].split('.')[-1]}"
                branches.append(_record(definition, f"{path}.", kept, registers) | _named(definition, namespaced))
            else:
                branches.append(_type(branch, path, kept, registers))
        return branches
    if isinstance(node, dict):
        kind = node.get("type")
        if kind == "record":
            return _record(node, f"{path}.", kept, registers) | _named(node, path)
        if kind in ("enum", "fixed"):
            return {**{k: v for k, v in node.items() if k != "namespace"}, **_named(node, path)}
        if kind == "array":
            return {**node, "items": _type(node["items"], path, kept, registers)}
        if kind == "map":
            return {**node, "values": _type(node["values"], path, kept, registers)}
    return node


def _named(node: dict[str, Any], path: str) -> dict[str, Any]:
    """A unique full name for a named type by where it sits (its unqualified name unchanged, for resolution)."""
    return {"name": f"{PROJECTED}.{path}.{node['name'].split('.')[-1]}"}


def _value(value: Any, schema: Any) -> Any:
    """``value`` (a contract record as ``to_avro`` makes it) cut down to ``schema``."""
    if isinstance(schema, list):
        if value is None:
            return None
        if isinstance(value, tuple):  # a union branch named by the contract's full name
            wanted = value[0].split(".")[-1]
            branch = next(b for b in schema if isinstance(b, dict) and b["name"].split(".")[-1] == wanted)
            return (branch["name"], _value(value[1], branch))
        for branch in schema:
            if isinstance(branch, dict) and branch.get("type") == "record" and isinstance(value, dict):
                return _value(value, branch)
        return value
    if isinstance(schema, dict) and schema.get("type") == "record":
        return {field["name"]: _value(value.get(field["name"]), field["type"]) for field in schema["fields"]}
    return value


def _branch_names(schema: dict[str, Any]) -> dict[str, str]:
    """For a correction's projection: each details branch's contract full name -> its projected full name."""
    names: dict[str, str] = {}
    for item in schema["fields"]:
        if isinstance(item["type"], list):
            for branch in item["type"]:
                if isinstance(branch, dict) and branch.get("type") == "record":
                    names[f"{NAMESPACE}.{branch['name'].split('.')[-1]}"] = branch["name"]
    return names


_Plan = tuple[tuple[str, str, Any], ...]
"""(field name, dotted path, what is inside): None for a leaf, a plan for a record, and for a union of records a
dict of branch full name -> plan."""


def _plan(record: dict[str, Any], prefix: str) -> _Plan:
    """The disclosure plan of a projection's record schema (named types are inlined in a projection)."""
    plan: list[tuple[str, str, Any]] = []
    for item in record["fields"]:
        path = f"{prefix}{item['name']}"
        kind = item["type"]
        records = [
            b for b in (kind if isinstance(kind, list) else [kind]) if isinstance(b, dict) and b.get("type") == "record"
        ]
        if not records:
            plan.append((item["name"], path, None))
        elif isinstance(kind, list) and len(records) > 1:
            plan.append((item["name"], path, {b["name"]: _plan(b, f"{path}.") for b in records}))
        else:
            plan.append((item["name"], path, _plan(records[0], f"{path}.")))
    return tuple(plan)


def _disclosed(data: dict[str, Any], plan: _Plan, found: list[str]) -> None:
    """The projected leaf paths of ``data`` (an Avro record of the whole event) that hold a value, into ``found``:
    what ``Agreement.disclosed`` finds in the minimised event."""
    for name, path, inner in plan:
        value = data.get(name)
        if value is None:
            continue
        if inner is None:
            if value != []:
                found.append(path)
        elif type(value) is tuple:  # a union of records, the branch named by tuple notation
            _disclosed(value[1], inner[value[0]] if isinstance(inner, dict) else inner, found)
        else:
            _disclosed(value, inner, found)


class ProjectionWriter:
    """Encodes a department's events for its topic: the projection's schema and registry id, wire format.

    Without a registry (unit tests, a bare local broker) the minimised event is written with the contract's schema
    and local id: withheld fields travel as nulls, never as values.
    """

    def __init__(self, codec: Codec, prefix: str) -> None:
        self.codec = codec
        self.prefix = prefix
        resolver = codec.resolver
        self._registry = resolver if isinstance(resolver, RegistrySchemaResolver) else None
        self._headers: dict[tuple[str, str, frozenset[str]], bytes] = {}
        # (department, event type) -> its projection: one router holds one agreement per department.
        self._plans: dict[tuple[str, str], Projection] = {}

    @property
    def projects(self) -> bool:
        """Whether ``project`` applies: with a registry, events are written with their projection's schema."""
        return self._registry is not None

    def project(
        self, agreement: Agreement, event: Event, record: dict[str, Any] | None = None
    ) -> tuple[bytes, list[str]]:
        """Wire-format bytes of ``event`` (decoded and validated, not minimised) for the department's topic, and
        the paths it discloses; needs a registry (``projects``). The fast path: no minimised model is built.
        ``record``: ``to_avro(event)`` if the caller has it (read, never changed)."""
        key = (agreement.department, event.event_type)
        projected = self._plans.get(key)
        if projected is None:
            projected = self._plans[key] = projection(agreement, event.event_type)
        body, disclosed = projected.encode(event, record)
        return self._header(agreement, projected) + body, disclosed

    def _header(self, agreement: Agreement, projected: Projection) -> bytes:
        """The 5-byte header of a projection; its schema id asked of the registry once per writer (a projection
        is fixed for the life of a process: its agreement is loaded at start)."""
        key = (agreement.department, projected.event_type, projected.kept)
        header = self._headers.get(key)
        if header is None:
            assert self._registry is not None
            subject = projection_subject(agreement.department, projected.event_type, self.prefix)
            schema_id = self._registry.schema_id_for(subject, projected.schema_str)
            header = self._headers[key] = _HEADER.pack(MAGIC_BYTE, schema_id)
        return header

    def encode(self, agreement: Agreement, event: Event) -> bytes:
        """Wire-format bytes of ``event`` (already minimised by ``agreement``) for the department's topic."""
        topic = department_topic(agreement.department, self.prefix)
        if self._registry is None:
            return self.codec.encode(event, topic)
        projected = projection(agreement, event.event_type)
        buffer = io.BytesIO()
        buffer.write(self._header(agreement, projected))
        fastavro.schemaless_writer(buffer, projected.parsed, projected.record(event))
        return buffer.getvalue()
