"""The Avro schemas and the pydantic models are one contract: walk both, field by field, and require agreement.

``contract_differences`` is the comparison; the tests at the bottom prove it notices a field added, removed,
renamed, retyped, reordered or made optional on one side only.
"""

from __future__ import annotations

import copy
import json
import re
import types
import typing
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Union, get_args, get_origin
from uuid import UUID

import fastavro
import pytest
from pydantic import AwareDatetime, BaseModel, TypeAdapter, create_model
from pydantic.fields import FieldInfo

from schemas import catalogue, models
from schemas.catalogue import EVENT_TYPES, event_schema, event_schemas, named_types, standalone_schema
from schemas.models import EVENT_MODELS

PRIMITIVES: dict[str, tuple[Any, ...]] = {
    "string": (str,),
    "int": (int,),
    "long": (int,),
    "boolean": (bool,),
    "float": (float,),
    "double": (float,),
    "bytes": (bytes,),
}
LOGICAL: dict[tuple[str, str], tuple[Any, ...]] = {
    ("int", "date"): (date,),
    ("long", "timestamp-millis"): (datetime, AwareDatetime),
    ("string", "uuid"): (UUID,),
}
ENVELOPE = ("event_id", "entry", "version", "recorded_at", "register_office")


def _unwrap(annotation: Any) -> Any:
    """The type under any ``Annotated[...]`` layers."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _union_members(annotation: Any) -> list[Any]:
    annotation = _unwrap(annotation)
    if get_origin(annotation) in (Union, types.UnionType):
        return [_unwrap(member) for member in get_args(annotation)]
    return [annotation]


def _name(node: Any) -> str:
    return node if isinstance(node, str) else json.dumps(node)[:60]


class ContractWalker:
    """Walks an Avro schema alongside a pydantic model, collecting every disagreement as 'path: what differs'."""

    def __init__(self) -> None:
        # Shared named types, so a record schema taken on its own resolves its references; a definition met
        # during the walk (e.g. in a mutated standalone schema) replaces the shared one from then on.
        self.names: dict[str, Any] = dict(named_types())
        self.differences: list[str] = []
        self.records_seen: set[str] = set()
        self.enums_seen: set[str] = set()
        self.fields_walked = 0

    def report(self, path: str, message: str) -> None:
        self.differences.append(f"{path}: {message}")

    def _resolve(self, node: Any, namespace: str) -> Any:
        if isinstance(node, str) and node not in PRIMITIVES and node != "null":
            full = node if "." in node else f"{namespace}.{node}"
            if full not in self.names:
                self.report(full, "unknown named type")
                return None
            return self.names[full]
        return node

    def record(self, schema: dict[str, Any], model: Any, path: str) -> None:
        namespace = schema.get("namespace", catalogue.NAMESPACE)
        self.names[f"{namespace}.{schema['name']}"] = schema
        self.records_seen.add(schema["name"])
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            self.report(path, f"record {schema['name']} maps to {model!r}, not a pydantic model")
            return
        if model.__name__ != schema["name"]:
            self.report(path, f"record {schema['name']} maps to model {model.__name__}")
        avro_names = [field["name"] for field in schema["fields"]]
        model_names = list(model.model_fields)
        if avro_names != model_names:
            only_avro = [name for name in avro_names if name not in model_names]
            only_model = [name for name in model_names if name not in avro_names]
            self.report(
                path,
                f"fields differ: only in Avro {only_avro}, only in {model.__name__} {only_model}, "
                f"order Avro {avro_names} vs model {model_names}",
            )
        for field in schema["fields"]:
            if field["name"] in model.model_fields:
                self.field(field, model.model_fields[field["name"]], f"{path}.{field['name']}", namespace)

    def field(self, field: dict[str, Any], info: FieldInfo, path: str, namespace: str) -> None:
        self.fields_walked += 1
        avro_type = field["type"]
        branches = avro_type if isinstance(avro_type, list) else [avro_type]
        avro_nullable = "null" in branches
        avro_optional = avro_nullable and "default" in field and field["default"] is None
        members = _union_members(info.annotation)
        model_nullable = type(None) in members
        model_optional = model_nullable and not info.is_required() and info.default is None
        if avro_nullable != model_nullable:
            self.report(path, f"nullable in Avro: {avro_nullable}, in model: {model_nullable}")
        if avro_optional != model_optional:
            self.report(path, f"optional (null, default null) in Avro: {avro_optional}, in model: {model_optional}")
        if avro_nullable and branches[0] != "null":
            self.report(path, "null must be the first branch of an optional field's union")
        self.default(field, info, path)
        self.union(
            [branch for branch in branches if branch != "null"],
            [member for member in members if member is not type(None)],
            path,
            namespace,
        )

    def default(self, field: dict[str, Any], info: FieldInfo, path: str) -> None:
        has_avro_default = "default" in field
        if has_avro_default == info.is_required():
            self.report(path, f"default in Avro: {has_avro_default}, in model: {not info.is_required()}")
            return
        if not has_avro_default:
            return
        model_default = info.get_default(call_default_factory=True)
        try:
            avro_default = TypeAdapter(typing.cast(Any, info.annotation)).validate_python(field["default"])
        except Exception as exc:
            self.report(path, f"Avro default is not a valid model value ({type(exc).__name__})")
            return
        if avro_default != model_default or type(avro_default) is not type(model_default):
            self.report(path, f"Avro default {field['default']!r} differs from model default {model_default!r}")

    def union(self, branches: list[Any], members: list[Any], path: str, namespace: str) -> None:
        if len(branches) != len(members):
            self.report(
                path,
                f"union of {len(branches)} in Avro ({', '.join(map(_name, branches))}) vs {len(members)} in model",
            )
            return
        for index, (branch, member) in enumerate(zip(branches, members, strict=True)):
            self.type(branch, member, path if len(branches) == 1 else f"{path}[{index}]", namespace)

    def type(self, node: Any, annotation: Any, path: str, namespace: str) -> None:
        node = self._resolve(node, namespace)
        annotation = _unwrap(annotation)
        if node is None:
            return
        if isinstance(node, list):
            members = _union_members(annotation)
            if ("null" in node) != (type(None) in members):
                self.report(path, "nested union nullability differs")
            self.union(
                [branch for branch in node if branch != "null"],
                [member for member in members if member is not type(None)],
                path,
                namespace,
            )
            return
        if isinstance(node, str):
            self.expect(path, node, annotation, PRIMITIVES[node])
            return
        kind = node["type"]
        logical = node.get("logicalType")
        if logical is not None:
            expected = LOGICAL.get((kind, logical))
            if expected is None:
                self.report(path, f"logical type {kind}/{logical} has no mapping in this test")
            else:
                self.expect(path, f"{kind}/{logical}", annotation, expected)
        elif kind == "record":
            self.record(node, annotation, path)
        elif kind == "enum":
            self.enum(node, annotation, path)
        elif kind == "array":
            if get_origin(annotation) is not list:
                self.report(path, f"array maps to {annotation!r}, not list[...]")
            else:
                self.type(node["items"], get_args(annotation)[0], f"{path}[]", namespace)
        elif kind == "map":
            if get_origin(annotation) is not dict or _unwrap(get_args(annotation)[0]) is not str:
                self.report(path, f"map maps to {annotation!r}, not dict[str, ...]")
            else:
                self.type(node["values"], get_args(annotation)[1], f"{path}{{}}", namespace)
        else:
            self.type(kind, annotation, path, namespace)

    def enum(self, node: dict[str, Any], annotation: Any, path: str) -> None:
        self.names[f"{node.get('namespace', catalogue.NAMESPACE)}.{node['name']}"] = node
        self.enums_seen.add(node["name"])
        if not (isinstance(annotation, type) and issubclass(annotation, StrEnum)):
            self.report(path, f"enum {node['name']} maps to {annotation!r}, not a StrEnum")
            return
        if annotation.__name__ != node["name"]:
            self.report(path, f"enum {node['name']} maps to {annotation.__name__}")
        values = [member.value for member in annotation]
        if values != node["symbols"]:
            self.report(path, f"enum {node['name']} symbols {node['symbols']} vs {annotation.__name__} {values}")

    def expect(self, path: str, avro: str, annotation: Any, allowed: tuple[Any, ...]) -> None:
        # Identity, not issubclass: bool is an int and datetime is a date, and neither may stand for the other.
        if not any(annotation is python_type for python_type in allowed):
            self.report(path, f"Avro {avro} maps to {annotation!r}, expected {' or '.join(map(repr, allowed))}")


def contract_differences(schema: dict[str, Any], model: type[BaseModel]) -> list[str]:
    """Every disagreement between an Avro record schema and a pydantic model (empty when they agree)."""
    walker = ContractWalker()
    walker.record(schema, model, schema["name"])
    return walker.differences


def _raw(event_type: str) -> dict[str, Any]:
    text = (catalogue.AVRO_DIR / "events" / f"{event_type}.avsc").read_text(encoding="utf-8")
    result: dict[str, Any] = json.loads(text)
    return result


def _all_schema_files() -> list[dict[str, Any]]:
    paths = sorted((catalogue.AVRO_DIR / "types").glob("*.avsc")) + sorted(
        (catalogue.AVRO_DIR / "events").glob("*.avsc")
    )
    return [json.loads(path.read_text(encoding="utf-8")) for path in paths]


def _field(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return next(field for field in schema["fields"] if field["name"] == name)


def _named(schema: Any, name: str) -> dict[str, Any]:
    """The inline definition of named type ``name`` inside a standalone schema."""
    if isinstance(schema, dict):
        if schema.get("name") == name and schema.get("type") in ("record", "enum"):
            return schema
        children = [*schema.get("fields", []), schema.get("type"), schema.get("items"), schema.get("values")]
    elif isinstance(schema, list):
        children = schema
    else:
        children = []
    for child in children:
        found = _named(child, name) if isinstance(child, (dict, list)) else None
        if found is not None:
            return found
    return None  # type: ignore[return-value]


# --- agreement of the real contract ------------------------------------------------------------------------------


def test_every_event_type_has_a_schema_file_and_a_model() -> None:
    files = {path.stem for path in (catalogue.AVRO_DIR / "events").glob("*.avsc")}
    assert files == set(EVENT_TYPES) == set(EVENT_MODELS)
    for event_type, model in EVENT_MODELS.items():
        assert model.event_type == event_type == model.__name__


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_standalone_schema_agrees_with_model(event_type: str) -> None:
    assert contract_differences(event_schema(event_type).schema, EVENT_MODELS[event_type]) == []


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_raw_schema_with_shared_types_agrees_with_model(event_type: str) -> None:
    assert contract_differences(_raw(event_type), EVENT_MODELS[event_type]) == []


def test_walk_reaches_every_shared_type_and_field() -> None:
    walker = ContractWalker()
    for event_type in EVENT_TYPES:
        walker.record(event_schema(event_type).schema, EVENT_MODELS[event_type], event_type)
    assert walker.differences == []
    shared = {schema["name"] for schema in named_types().values()}
    reached = walker.records_seen | walker.enums_seen
    assert shared - reached == set(), "a shared type no event uses"
    record_fields = sum(len(s["fields"]) for s in named_types().values() if s["type"] == "record")
    assert walker.fields_walked >= record_fields + 6 * len(ENVELOPE)


def test_every_shared_type_has_a_model_of_the_same_name() -> None:
    for schema in named_types().values():
        model = getattr(models, schema["name"], None)
        assert model is not None, schema["name"]
        if schema["type"] == "enum":
            assert issubclass(model, StrEnum)
            assert [member.value for member in model] == schema["symbols"]
            assert [member.name for member in model] == schema["symbols"]
        else:
            assert contract_differences(schema, model) == [], schema["name"]


def test_correction_union_branches_map_to_model_union_members_in_order() -> None:
    corrected = _field(event_schema("RegistrationCorrected").schema, "corrected")["type"]
    branch_names = [branch if isinstance(branch, str) else branch["name"] for branch in corrected]
    members = _union_members(models.RegistrationCorrected.model_fields["corrected"].annotation)
    assert [name.rsplit(".", 1)[-1] for name in branch_names] == [member.__name__ for member in members]
    assert set(members) == set(models.DETAILS_REGISTER)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_event_schema_carries_the_envelope(event_type: str) -> None:
    schema = event_schema(event_type).schema
    assert [field["name"] for field in schema["fields"][: len(ENVELOPE)]] == list(ENVELOPE)
    assert _field(schema, "event_id")["type"] == {"type": "string", "logicalType": "uuid"}
    assert _field(schema, "version")["type"] == "int"
    assert _field(schema, "recorded_at")["type"] == {"type": "long", "logicalType": "timestamp-millis"}
    assert _field(schema, "register_office")["type"] == "string"
    entry = _field(schema, "entry")["type"]
    assert (entry if isinstance(entry, str) else entry["name"]).endswith("EntryReference")
    assert issubclass(EVENT_MODELS[event_type], models.Event)


# --- data minimisation -------------------------------------------------------------------------------------------

_HEALTH_WORDS = re.compile(r"cause|diagnos|medical|disease|illness|injur|autopsy|post_?mortem|mccd|icd\d*$|icd_")


def _health_fields(node: Any, path: str = "") -> list[str]:
    """Paths of every field anywhere in ``node`` whose name suggests cause of death or other health data."""
    found: list[str] = []
    if isinstance(node, dict):
        for field in node.get("fields", []):
            field_path = f"{path}.{field['name']}"
            if _HEALTH_WORDS.search(field["name"].lower()):
                found.append(field_path)
            found += _health_fields(field["type"], field_path)
        for key in ("type", "items", "values"):
            if isinstance(node.get(key), (dict, list)):
                found += _health_fields(node[key], path)
    elif isinstance(node, list):
        for branch in node:
            found += _health_fields(branch, path)
    return found


def test_no_schema_or_model_has_a_cause_of_death_field() -> None:
    schemas = _all_schema_files() + [es.schema for es in event_schemas().values()]
    for schema in schemas:
        assert _health_fields(schema, schema["name"]) == []
    for name in models.__all__:
        model = getattr(models, name)
        if isinstance(model, type) and issubclass(model, BaseModel):
            assert [field for field in model.model_fields if _HEALTH_WORDS.search(field.lower())] == []


@pytest.mark.parametrize("name", ["cause", "cause_of_death", "causeOfDeath", "underlying_cause", "icd10", "mccd"])
def test_health_field_detector_catches_cause_of_death(name: str) -> None:
    schema = copy.deepcopy(event_schema("DeathRegistered").schema)
    details = _named(schema, "DeathDetails")
    details["fields"].append({"name": name, "type": ["null", "string"], "default": None})
    assert _health_fields(schema, "DeathRegistered") == [f"DeathRegistered.death.{name}"]


# --- every schema parses, standalone, with two Avro implementations ------------------------------------------------


def test_schema_files_parse_with_fastavro_in_dependency_order() -> None:
    named: dict[str, Any] = {}
    pending = _all_schema_files()
    while pending:
        progress = []
        for schema in pending:
            attempt = dict(named)
            try:
                fastavro.parse_schema(schema, named_schemas=attempt)
            except fastavro.schema.UnknownType:
                continue
            named.update(attempt)
            progress.append(schema)
        assert progress, f"unresolvable: {[schema['name'] for schema in pending]}"
        pending = [schema for schema in pending if schema not in progress]
    assert {f"{catalogue.NAMESPACE}.{t}" for t in EVENT_TYPES} <= set(named)


@pytest.mark.parametrize("schema", _all_schema_files(), ids=lambda schema: schema["name"])
def test_every_schema_file_inlines_to_a_standalone_schema(schema: dict[str, Any]) -> None:
    fastavro.parse_schema(standalone_schema(schema), named_schemas={})


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_event_schema_is_standalone_for_fastavro(event_type: str) -> None:
    standalone = event_schema(event_type)
    parsed: Any = fastavro.parse_schema(copy.deepcopy(standalone.schema), named_schemas={})
    assert parsed["name"] == standalone.full_name == f"{catalogue.NAMESPACE}.{event_type}"
    assert json.loads(standalone.schema_str) == standalone.schema


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_event_schema_is_standalone_for_apache_avro(event_type: str) -> None:
    avro_schema = pytest.importorskip("avro.schema")
    parsed = avro_schema.parse(event_schema(event_type).schema_str)
    assert parsed.fullname == f"{catalogue.NAMESPACE}.{event_type}"
    assert [field.name for field in parsed.fields] == list(EVENT_MODELS[event_type].model_fields)


def test_standalone_schema_defines_each_named_type_once() -> None:
    for event_type in EVENT_TYPES:
        text = event_schema(event_type).schema_str
        for full_name, schema in named_types().items():
            definitions = text.count(f'"name":"{schema["name"]}"')
            assert definitions <= 1, (event_type, full_name)


# --- the comparison notices one-sided changes --------------------------------------------------------------------


def _mutated(event_type: str, type_name: str, mutate: typing.Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    schema = copy.deepcopy(event_schema(event_type).schema)
    mutate(_named(schema, type_name) if type_name != event_type else schema)
    return schema


def _rename(name: str, new: str) -> typing.Callable[[dict[str, Any]], None]:
    def mutate(record: dict[str, Any]) -> None:
        _field(record, name)["name"] = new

    return mutate


def _remove(name: str) -> typing.Callable[[dict[str, Any]], None]:
    def mutate(record: dict[str, Any]) -> None:
        record["fields"].remove(_field(record, name))

    return mutate


def _add(field: dict[str, Any]) -> typing.Callable[[dict[str, Any]], None]:
    def mutate(record: dict[str, Any]) -> None:
        record["fields"].append(field)

    return mutate


def _set(name: str, **changes: Any) -> typing.Callable[[dict[str, Any]], None]:
    def mutate(record: dict[str, Any]) -> None:
        _field(record, name).update(changes)

    return mutate


def _drop_default(name: str) -> typing.Callable[[dict[str, Any]], None]:
    def mutate(record: dict[str, Any]) -> None:
        del _field(record, name)["default"]

    return mutate


def _swap_first_fields(record: dict[str, Any]) -> None:
    record["fields"][0], record["fields"][1] = record["fields"][1], record["fields"][0]


def _add_symbol(record: dict[str, Any]) -> None:
    record["symbols"] = [*record["symbols"], "PRESUMED_DEAD"]


def _swap_correction_branches(record: dict[str, Any]) -> None:
    branches = _field(record, "corrected")["type"]
    branches[0], branches[1] = branches[1], branches[0]


SCHEMA_MUTATIONS = {
    "field renamed": ("DeathRegistered", "DeathDetails", _rename("date_of_death", "died_on"), "died_on"),
    "field removed": ("DeathRegistered", "Person", _remove("family_name"), "family_name"),
    "field added": (
        "DeathRegistered",
        "DeathDetails",
        _add({"name": "informant", "type": ["null", "string"], "default": None}),
        "informant",
    ),
    "envelope field renamed": ("BirthRegistered", "BirthRegistered", _rename("version", "revision"), "revision"),
    "fields reordered": ("MarriageRegistered", "Partner", _swap_first_fields, "order"),
    "string to int": ("DeathRegistered", "DeathDetails", _set("place_of_death", type="int"), "place_of_death"),
    "int to boolean": ("DeathRegistered", "EntryReference", _set("entry_number", type="boolean"), "entry_number"),
    "date to string": (
        "DeathRegistered",
        "DeathDetails",
        _set("date_of_death", type="string"),
        "date_of_death",
    ),
    "date to timestamp": (
        "DeathRegistered",
        "DeathDetails",
        _set("date_of_death", type={"type": "long", "logicalType": "timestamp-millis"}),
        "date_of_death",
    ),
    "uuid to plain string": (
        "RegistrationVoided",
        "RegistrationVoided",
        _set("event_id", type="string"),
        "event_id",
    ),
    "optional made required": ("DeathRegistered", "Person", _set("sex", type="uk.gov.civreg.Sex"), "sex"),
    "required made optional": (
        "DeathRegistered",
        "Address",
        _set("town", type=["null", "string"], default=None),
        "town",
    ),
    "optional without default": ("DeathRegistered", "Identifiers", _drop_default("nino"), "nino"),
    "default changed": ("BirthRegistered", "BirthDetails", _set("stillbirth", default=True), "stillbirth"),
    "default removed": ("BirthRegistered", "Person", _drop_default("identifiers"), "identifiers"),
    "array items retyped": (
        "DeathRegistered",
        "Address",
        _set("lines", type={"type": "array", "items": "int"}),
        "lines",
    ),
    "enum symbol added": ("DeathRegistered", "MaritalStatus", _add_symbol, "symbols"),
    "record renamed": ("DeathRegistered", "DeathDetails", lambda record: record.update(name="Death"), "Death"),
    "union branches reordered": ("RegistrationCorrected", "RegistrationCorrected", _swap_correction_branches, "[0]"),
}


@pytest.mark.parametrize("case", SCHEMA_MUTATIONS)
def test_comparison_reports_a_schema_only_change(case: str) -> None:
    event_type, type_name, mutate, expected = SCHEMA_MUTATIONS[case]
    schema = _mutated(event_type, type_name, mutate)
    differences = contract_differences(schema, EVENT_MODELS[event_type])
    assert differences, f"{case} went unnoticed"
    assert any(expected in difference for difference in differences), differences


def test_comparison_reports_a_model_with_an_extra_field() -> None:
    class DeathDetails(models.DeathDetails):
        informant_relationship: str | None = None

    schema = named_types()[f"{catalogue.NAMESPACE}.DeathDetails"]
    assert contract_differences(schema, models.DeathDetails) == []
    differences = contract_differences(schema, DeathDetails)
    assert any("only in DeathDetails ['informant_relationship']" in d for d in differences), differences


def test_comparison_reports_a_model_with_a_renamed_or_missing_field() -> None:
    schema = named_types()[f"{catalogue.NAMESPACE}.Address"]
    renamed = create_model("Address", lines=(list[str], ...), town=(str, ...), post_code=(str, ...))
    missing = create_model("Address", lines=(list[str], ...), postcode=(str, ...))
    assert any("only in Avro ['postcode']" in d and "['post_code']" in d for d in contract_differences(schema, renamed))
    assert any("only in Avro ['town']" in d for d in contract_differences(schema, missing))


def test_comparison_reports_model_side_type_optionality_and_default_changes() -> None:
    schema = named_types()[f"{catalogue.NAMESPACE}.Partner"]
    good = {
        "person": (models.Person, ...),
        "condition": (models.MaritalStatus, ...),
        "surname_after": (str | None, None),
        "occupation": (str | None, None),
    }
    assert contract_differences(schema, create_model("Partner", **good)) == []  # type: ignore[call-overload]
    variants = {
        "occupation": {"occupation": (str, ...)},
        "surname_after": {"surname_after": (str | None, "Smith")},
        "condition": {"condition": (str, ...)},
        "person": {"person": (models.Identifiers, ...)},
    }
    for expected, change in variants.items():
        model = create_model("Partner", **{**good, **change})  # type: ignore[call-overload,dict-item]
        differences = contract_differences(schema, model)
        assert any(f"Partner.{expected}" in d for d in differences), (expected, differences)


def test_comparison_reports_enum_and_logical_type_changes_on_the_model_side() -> None:
    class Sex(StrEnum):
        FEMALE = "FEMALE"
        MALE = "MALE"

    person = named_types()[f"{catalogue.NAMESPACE}.Person"]
    fields = {name: (info.annotation, info) for name, info in models.Person.model_fields.items()}
    fewer_sexes = create_model("Person", **{**fields, "sex": (Sex | None, None)})  # type: ignore[call-overload]
    assert any("enum Sex symbols" in d for d in contract_differences(person, fewer_sexes))
    as_datetime = create_model("Person", **{**fields, "date_of_birth": (datetime | None, None)})  # type: ignore[call-overload]
    assert any("Person.date_of_birth" in d for d in contract_differences(person, as_datetime))
    correction = event_schema("RegistrationCorrected").schema
    envelope = {name: (info.annotation, info) for name, info in models.RegistrationCorrected.model_fields.items()}
    three = models.BirthDetails | models.DeathDetails | models.MarriageDetails
    fewer_branches = create_model("RegistrationCorrected", **{**envelope, "corrected": (three, ...)})  # type: ignore[call-overload]
    assert any("union of 4 in Avro" in d for d in contract_differences(correction, fewer_branches))
