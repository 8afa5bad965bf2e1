"""Check and publish the contract's schemas: ``civreg schemas check`` and ``civreg schemas register``.

Check compares the working tree's schemas with what consumers may already hold: every version the registry has
under each subject, or, with no registry, the schemas at a git revision. The rules are
``schemas.compatibility``'s; each subject's level comes from ``deploy/schema-compatibility.yaml``. Why check
before registering: a refusal at publish time (or in production) is too late and the registry's message rarely
names the field; the check runs in CI and names subject, field and rule.

Register sets each subject's compatibility level from the policy first (so the rule holds from version 1 on any
registry, whatever its global default), then registers the schema. Besides the contract's subjects it registers
each department's projections, derived from the agreements, under the subjects the router writes with
(``<prefix>.department.<name>-<record>``, keyed ``department.<name>-<record>`` in the policy): an operator
publishes them ahead of the router, checked, and production runs the router with auto-registration off.
The registry is the authority: if it refuses, the refusal is reported with this checker's field-level explanation
next to it.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from civreg.errors import CivregError
from consumers.runtime.agreements import Agreement
from consumers.runtime.projection import projection, projection_subject
from deploy.schema_policy import CompatibilityPolicy, load_policy
from schemas.acknowledgements import ACTION_TAKEN
from schemas.catalogue import AVRO_DIR, EVENT_TYPES
from schemas.compatibility import AvroSchema, CompatibilityLevel, Violation, check_evolution
from schemas.registry import (
    ContractSubject,
    RegistryError,
    RegistrySchemaResolver,
    SchemaRefused,
    contract_schema,
    contract_subjects,
)
from schemas.topics import department_topic

__all__ = [
    "CheckReport",
    "GitSchemaError",
    "RegisterReport",
    "RegisteredSubject",
    "SubjectCheck",
    "check_against_git",
    "check_against_registry",
    "projection_subjects",
    "register_schemas",
    "working_tree_schemas",
]


class GitSchemaError(CivregError, RuntimeError):
    """The schemas at a git revision cannot be read (not a repository, unknown revision)."""


@dataclass(frozen=True)
class SubjectCheck:
    """One subject's verdict: the level applied, what it was compared with, what breaks."""

    subject: ContractSubject
    level: CompatibilityLevel
    compared_with: tuple[str, ...]
    violations: tuple[Violation, ...]

    @property
    def ok(self) -> bool:
        """No rule of the level is broken."""
        return not self.violations

    def problems(self) -> list[str]:
        """One line per broken rule, naming the subject."""
        return [f"subject {self.subject.subject}: {violation}" for violation in self.violations]


@dataclass
class CheckReport:
    """Every subject's verdict against one source (a registry or a git revision)."""

    source: str
    checks: list[SubjectCheck] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every subject passes."""
        return all(check.ok for check in self.checks)

    def problems(self) -> list[str]:
        """Every broken rule of every subject."""
        return [line for check in self.checks for line in check.problems()]


@dataclass(frozen=True)
class RegisteredSubject:
    """What ``register`` did for one subject."""

    subject: ContractSubject
    level: CompatibilityLevel
    schema_id: int | None
    version: int | None
    status: str  # "registered", "unchanged" or "refused"
    error: str | None = None


@dataclass
class RegisterReport:
    """Every subject ``register`` handled."""

    url: str
    subjects: list[RegisteredSubject] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing was refused."""
        return all(item.status != "refused" for item in self.subjects)


def working_tree_schemas() -> dict[str, AvroSchema]:
    """This checkout's schema of every event type and of ActionTaken (standalone, as registered)."""
    return {event_type: AvroSchema(contract_schema(event_type).schema) for event_type in (*EVENT_TYPES, ACTION_TAKEN)}


def _status(exc: Exception) -> int | None:
    code = getattr(exc, "http_status_code", None)
    return code if isinstance(code, int) else None


def _registry_versions(resolver: RegistrySchemaResolver, subject: str) -> list[tuple[int, AvroSchema]]:
    """Every version under ``subject``, oldest first; empty for a subject the registry does not have."""
    from confluent_kafka.schema_registry.error import SchemaRegistryError

    client = resolver.client
    try:
        versions: list[int] = resolver.call(lambda: client.get_versions(subject))
    except SchemaRegistryError as exc:
        if _status(exc) == 404:
            return []
        raise RegistryError(f"listing the versions of subject {subject} failed: {exc}") from exc
    found: list[tuple[int, AvroSchema]] = []
    for version in sorted(versions):
        registered = resolver.call(partial(client.get_version, subject, version))
        found.append((version, AvroSchema(json.loads(registered.schema.schema_str))))
    return found


def check_against_registry(
    resolver: RegistrySchemaResolver,
    topic_prefix: str,
    *,
    policy: CompatibilityPolicy | None = None,
    current: Mapping[str, AvroSchema] | None = None,
) -> CheckReport:
    """Check ``current`` (default: the working tree) against every registered version of each subject."""
    policy = policy or load_policy()
    current = current or working_tree_schemas()
    report = CheckReport(resolver.url)
    for subject in contract_subjects(topic_prefix):
        level = policy.level_for(subject.key)
        previous = [(f"version {version}", schema) for version, schema in _registry_versions(resolver, subject.subject)]
        violations = check_evolution(current[subject.event_type], previous, level)
        report.checks.append(SubjectCheck(subject, level, tuple(label for label, _ in previous), tuple(violations)))
    return report


def _git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise GitSchemaError(f"git {' '.join(args)} failed: {result.stderr.strip()[:300]}")
    return result.stdout


def _schemas_at(rev: str, repo: Path, avro_path: str) -> dict[str, AvroSchema]:
    """The event schemas at ``rev``, with that revision's shared types; event types missing there are left out."""
    listing = _git(repo, "ls-tree", "-r", "--name-only", rev, "--", f"{avro_path}/").splitlines()
    types: dict[str, Any] = {}
    events: dict[str, Any] = {}
    for path in listing:
        if not path.endswith(".avsc"):
            continue
        schema = json.loads(_git(repo, "show", f"{rev}:{path}"))
        if path.startswith(f"{avro_path}/types/"):
            types[f"{schema['namespace']}.{schema['name']}"] = schema
        elif path.startswith((f"{avro_path}/events/", f"{avro_path}/acknowledgements/")):
            events[Path(path).stem] = schema
    return {event_type: AvroSchema(schema, types) for event_type, schema in events.items()}


def _repo_and_path(repo: Path | None) -> tuple[Path, str]:
    """The repository holding the schemas and their path inside it (``schemas/avro`` in this project)."""
    if repo is not None:
        return repo, "schemas/avro"
    top = Path(_git(AVRO_DIR, "rev-parse", "--show-toplevel").strip())
    return top, AVRO_DIR.resolve().relative_to(top.resolve()).as_posix()


def check_against_git(
    rev: str,
    topic_prefix: str,
    *,
    repo: Path | None = None,
    policy: CompatibilityPolicy | None = None,
    current: Mapping[str, AvroSchema] | None = None,
) -> CheckReport:
    """Check ``current`` (default: the working tree) against the schemas at git revision ``rev``.

    A revision is one earlier version, so transitive and non-transitive levels check the same here.
    """
    policy = policy or load_policy()
    current = current or working_tree_schemas()
    root, avro_path = _repo_and_path(repo)
    _git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    before = _schemas_at(rev, root, avro_path)
    report = CheckReport(f"git {rev}")
    for subject in contract_subjects(topic_prefix):
        level = policy.level_for(subject.key)
        old = before.get(subject.event_type)
        previous = [] if old is None else [(f"git {rev}", old)]
        violations = check_evolution(current[subject.event_type], previous, level)
        report.checks.append(SubjectCheck(subject, level, tuple(label for label, _ in previous), tuple(violations)))
    return report


def projection_subjects(
    agreements: Mapping[str, Agreement], topic_prefix: str
) -> list[tuple[ContractSubject, str, AvroSchema]]:
    """Each department's projection of each agreed event type: its subject (the one the router writes with), its
    schema text as the router registers it, and that schema for the compatibility checker."""
    found: list[tuple[ContractSubject, str, AvroSchema]] = []
    for name, agreement in sorted(agreements.items()):
        topic = department_topic(name, topic_prefix)
        for event_type in sorted(agreement.event_types):
            derived = projection(agreement, event_type)
            subject = projection_subject(name, event_type, topic_prefix)
            key = subject[len(topic_prefix) + 1 :]
            found.append(
                (ContractSubject(topic, event_type, subject, key), derived.schema_str, AvroSchema(derived.schema))
            )
    return found


def _register_one(
    resolver: RegistrySchemaResolver,
    subject: ContractSubject,
    level: CompatibilityLevel,
    current: AvroSchema,
    schema_str: str | None = None,
) -> RegisteredSubject:
    from confluent_kafka.schema_registry import Schema
    from confluent_kafka.schema_registry.error import SchemaRegistryError

    client = resolver.client
    name = subject.subject
    schema = Schema(schema_str or contract_schema(subject.event_type).schema_str, "AVRO")
    resolver.call(lambda: client.set_compatibility(subject_name=name, level=level.value))
    status = "unchanged"
    try:
        resolver.call(lambda: client.lookup_schema(name, schema))
    except SchemaRegistryError as exc:
        if _status(exc) != 404:
            raise RegistryError(f"looking up subject {name} failed: {exc}") from exc
        status = "registered"
    if status == "registered":
        try:
            resolver.call(lambda: client.register_schema(name, schema))
        except SchemaRegistryError as exc:
            refused = SchemaRefused(name, str(getattr(exc, "error_message", exc)))
            previous = [(f"version {v}", s) for v, s in _registry_versions(resolver, name)]
            ours = "; ".join(str(v) for v in check_evolution(current, previous, level))
            detail = ours or "(civreg's checker finds no rule broken)"
            return RegisteredSubject(subject, level, None, None, "refused", f"{refused}. civreg check: {detail}")
    registered = resolver.call(lambda: client.lookup_schema(name, schema))
    return RegisteredSubject(subject, level, registered.schema_id, registered.version, status)


def register_schemas(
    resolver: RegistrySchemaResolver,
    topic_prefix: str,
    *,
    policy: CompatibilityPolicy | None = None,
    agreements: Mapping[str, Agreement] | None = None,
) -> RegisterReport:
    """Set each subject's level from the policy, then register this checkout's schema under it; with
    ``agreements``, each department's projection too (the policy's key: ``department.<name>-<record>``)."""
    policy = policy or load_policy()
    current = working_tree_schemas()
    report = RegisterReport(resolver.url)
    for subject in contract_subjects(topic_prefix):
        level = policy.level_for(subject.key)
        report.subjects.append(_register_one(resolver, subject, level, current[subject.event_type]))
    for subject, schema_str, schema in projection_subjects(agreements or {}, topic_prefix):
        level = policy.level_for(subject.key)
        report.subjects.append(_register_one(resolver, subject, level, schema, schema_str))
    return report
