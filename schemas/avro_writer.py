"""An Avro binary writer compiled once per schema: the same bytes as fastavro's ``schemaless_writer``, in a third
of its time for this project's events.

Why: fastavro's writer interprets the schema for every record, and for a union such as ``["null", Person]`` it
chooses the branch by validating the value against each branch, a full recursive walk. Our records have been
validated by the models already (or decoded from Avro), so the branch and every field's type are known:
``compile_writer`` turns the schema into one straight-line Python function per record type (``exec`` of source
generated from the schema only, never from data) that appends each field's encoding to a ``bytearray``.

Same bytes: Avro's binary encoding of a value is unique, and logical types go through fastavro's own converters
(``fastavro.write.LOGICAL_WRITERS``), so the output equals fastavro's byte for byte;
``tests/contract/test_avro_writer.py`` checks it over every event type. A union of several records (a correction's
details) takes fastavro's tuple notation ``(branch full name, record)``; any value the compiled code does not
expect there (or a schema with a type it does not know) has its whole record written by fastavro instead, so
nothing is guessed.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import fastavro
from fastavro.write import LOGICAL_WRITERS

__all__ = ["RecordWriter", "compile_writer"]

RecordWriter = Callable[[dict[str, Any]], bytes]
"""A compiled writer: record -> Avro body (no header)."""

_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


def _write_long(out: bytearray, value: int) -> None:
    """Avro int/long: zig-zag, then base-128 varint, low group first."""
    value = (value << 1) ^ (value >> 63)
    while value > 127:
        out.append((value & 127) | 128)
        value >>= 7
    out.append(value)


def _varint(value: int) -> bytes:
    out = bytearray()
    _write_long(out, value)
    return bytes(out)


class _Compiler:
    """Builds the source of one function per record type and the constants it uses."""

    def __init__(self, named: dict[str, Any]) -> None:
        self.named = named  # full name -> definition (fastavro's parsed schema refers to a repeat by name)
        self.functions: dict[str, str] = {}  # full name -> generated function name
        self.sources: list[str] = []
        self.constants: dict[str, Any] = {
            "_long": _write_long,
            # fastavro's own converters (the ones its writer uses), so logical values become the same numbers.
            "_date": LOGICAL_WRITERS["int-date"],
            "_millis": LOGICAL_WRITERS["long-timestamp-millis"],
            "_uuid": LOGICAL_WRITERS["string-uuid"],
        }
        self._counter = 0

    def _name(self, stem: str) -> str:
        self._counter += 1
        return f"_{stem}_{self._counter}"

    def _constant(self, value: Any, stem: str) -> str:
        name = self._name(stem)
        self.constants[name] = value
        return name

    def record(self, schema: dict[str, Any]) -> str:
        """The generated function writing a record of ``schema`` (compiled once per full name)."""
        full_name = schema["name"]
        if full_name in self.functions:
            return self.functions[full_name]
        self.named.setdefault(full_name, schema)
        function = self.functions[full_name] = self._name("record")
        lines = [f"def {function}(d, o):"]
        for field in schema["fields"]:
            var = self._name("v")
            key = repr(field["name"])
            if "default" in field:
                default = self._constant(field["default"], "default")
                lines.append(f"    {var} = d.get({key}, {default})")
            elif self._nullable(field["type"]):
                lines.append(f"    {var} = d.get({key})")
            else:
                lines.append(f"    {var} = d[{key}]")
            lines.extend(self.value(field["type"], var, "    "))
        if len(lines) == 1:
            lines.append("    pass")
        self.sources.append("\n".join(lines))
        return function

    def _nullable(self, schema: Any) -> bool:
        return schema == "null" or (isinstance(schema, list) and "null" in schema)

    def value(self, schema: Any, var: str, indent: str) -> list[str]:
        """Statements writing ``var`` (a local of the generated code) as ``schema``."""
        if isinstance(schema, str):
            if schema in _PRIMITIVES:
                return self._primitive(schema, var, indent)
            return self.value(self.named[schema], var, indent)
        if isinstance(schema, list):
            return self._union(schema, var, indent)
        kind = schema["type"]
        logical = schema.get("logicalType")
        if kind == "record":
            return [f"{indent}{self.record(schema)}({var}, o)"]
        if kind == "enum":
            self.named.setdefault(schema["name"], schema)
            table = self._constant({s: _varint(i) for i, s in enumerate(schema["symbols"])}, "enum")
            return [f"{indent}o += {table}[{var}]"]
        if kind == "array":
            item = self._name("i")
            return [
                f"{indent}if {var}:",
                f"{indent}    _long(o, len({var}))",
                f"{indent}    for {item} in {var}:",
                *self.value(schema["items"], item, indent + "        "),
                f"{indent}o.append(0)",
            ]
        if logical == "date" and kind == "int":
            return [f"{indent}_long(o, _date({var}, None))"]
        if logical == "timestamp-millis" and kind == "long":
            return [f"{indent}_long(o, _millis({var}, None))"]
        if logical == "uuid" and kind == "string":
            return [f"{indent}{var} = _uuid({var}, None)", *self._primitive("string", var, indent)]
        if isinstance(kind, str) and kind in _PRIMITIVES and logical is None:
            return self._primitive(kind, var, indent)
        return self._fastavro(schema, var, indent)

    def _primitive(self, kind: str, var: str, indent: str) -> list[str]:
        if kind == "null":
            return []
        if kind == "boolean":
            return [f"{indent}o.append(1 if {var} else 0)"]
        if kind in ("int", "long"):  # small numbers (most entry and version numbers) without a call
            return [
                f"{indent}if 0 <= {var} < 64:",
                f"{indent}    o.append({var} << 1)",
                f"{indent}else:",
                f"{indent}    _long(o, {var})",
            ]
        if kind == "string":
            data = self._name("b")
            return [
                f"{indent}{data} = {var}.encode()",
                f"{indent}if len({data}) < 64:",
                f"{indent}    o.append(len({data}) << 1)",
                f"{indent}else:",
                f"{indent}    _long(o, len({data}))",
                f"{indent}o += {data}",
            ]
        return self._fastavro(kind, var, indent)

    def _union(self, branches: list[Any], var: str, indent: str) -> list[str]:
        others = [b for b in branches if b != "null"]
        if len(others) == 1 and len(branches) == 2:
            null, other = branches.index("null"), 1 - branches.index("null")
            return [
                f"{indent}if {var} is None:",
                f"{indent}    o += {_varint(null)!r}",
                f"{indent}else:",
                f"{indent}    o += {_varint(other)!r}",
                *self.value(branches[other], var, indent + "    "),
            ]
        # Several records: fastavro's tuple notation names the branch; any other value goes to fastavro whole.
        names = {self._branch_name(b): i for i, b in enumerate(branches) if self._branch_name(b) is not None}
        if len(names) != len(branches):
            raise _Unsupported("a union of other than records, or of null and one type")
        table = self._constant(names, "branches")
        index = self._name("index")
        lines = [
            f"{indent}if type({var}) is not tuple or {var}[0] not in {table}:",
            f"{indent}    raise _Unexpected",
            f"{indent}{index} = {table}[{var}[0]]",
            f"{indent}_long(o, {index})",
            f"{indent}{var} = {var}[1]",
        ]
        for position, branch in enumerate(branches):
            lines.append(f"{indent}{'if' if position == 0 else 'elif'} {index} == {position}:")
            lines.extend(self.value(branch, var, indent + "    "))
        return lines

    def _branch_name(self, branch: Any) -> str | None:
        definition = self.named.get(branch, branch) if isinstance(branch, str) else branch
        if isinstance(definition, dict) and definition.get("type") in ("record", "enum", "fixed"):
            name: str = definition["name"]
            return name
        return None

    def _fastavro(self, schema: Any, var: str, indent: str) -> list[str]:
        raise _Unsupported(f"type {schema!r}")


class _Unsupported(Exception):
    """The schema has a type the compiler does not write: fastavro writes every record of it."""


class _Unexpected(Exception):
    """A value the compiled code does not expect (a union of records without tuple notation): fastavro writes
    that record, so it decides exactly as it always did."""


def _fastavro_writer(parsed: Any) -> RecordWriter:
    def write(record: dict[str, Any]) -> bytes:
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, parsed, record)
        return buffer.getvalue()

    return write


def compile_writer(schema: dict[str, Any]) -> RecordWriter:
    """A writer for records of ``schema`` (a record schema, parsed by fastavro or as written)."""
    if schema.get("type") != "record":
        raise ValueError("compile_writer takes a record schema")
    parsed = fastavro.parse_schema(schema, named_schemas={})
    slow = _fastavro_writer(parsed)
    compiler = _Compiler({})
    try:
        top = compiler.record(schema)
    except _Unsupported:
        return slow
    source = "\n\n".join(compiler.sources)
    namespace: dict[str, Any] = {**compiler.constants, "_Unexpected": _Unexpected}
    exec(compile(source, f"<avro writer {schema['name']}>", "exec"), namespace)  # noqa: S102 - schema-built source
    write_record = namespace[top]

    def write(record: dict[str, Any]) -> bytes:
        out = bytearray()
        try:
            write_record(record, out)
        except _Unexpected:
            return slow(record)
        return bytes(out)

    write.__doc__ = f"Avro body of a {schema['name']} record."
    return write
