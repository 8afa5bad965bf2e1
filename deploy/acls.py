"""Who may do what on the bus: principals and ACLs generated from the data-sharing agreements and the topic names.

Why generated: an ACL written by hand drifts from the agreement it enforces. ``acl_rules`` is a pure function
(departments + topic prefix -> bindings); ``apply_acls`` makes a cluster hold exactly those bindings (creates the
missing, deletes the stale ones on the bus's resources), and ``kafka_users`` renders the same bindings as Strimzi
``KafkaUser`` resources (``deploy/k8s/users.yaml``, checked by a test).

Principals (``user_prefix`` + role; locally no prefix, in Kubernetes ``civreg-``):

- ``register-office``: writes the registration topics, nothing else (reads nothing).
- ``router``: reads the registration topics in its groups (one per department lane, ``<prefix>.router.<department>``),
  writes every department topic, the disclosure ledger and its own dead-letter topic in transactions (transactional
  ids under the router's group name); reads its dead-letter topic back (``civreg dead-letters list -d router``).
- each department (``tax``, ...): reads its own department topic in its own group; writes its dead-letter topic
  and the acknowledgements; reads its own dead-letter topic (``civreg dead-letters list``, run as the department).
- ``operator``: read-only metadata and lag (describes the cluster, topics, groups and topic configs) and reads the
  acknowledgements (``civreg trace``; they hold no personal data). Never a personal-data topic.
- ``admin``: super user (broker config ``super.users``), needs no ACL: applies topics, users and ACLs, and runs
  ``civreg dead-letters redrive`` (it writes to topics only the router writes).

Nobody else, and no anonymous client, gets anything: the broker runs with ``allow.everyone.if.no.acl.found=false``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialUpsertion,
)

from civreg.errors import CivregError
from civreg.kafka_config import error_text
from deploy.local.kafka import LocalKafka
from schemas.topics import (
    acknowledgement_topic,
    dead_letter_topic,
    department_topic,
    disclosure_topic,
    registration_topics,
    router_group,
)

__all__ = [
    "K8S_USER_PREFIX",
    "OPERATOR",
    "REGISTER_OFFICE",
    "ROUTER",
    "AclApplyError",
    "AclReport",
    "AclRule",
    "Pattern",
    "Resource",
    "acl_rules",
    "agreement_departments",
    "apply_acls",
    "binding_key",
    "current_acls",
    "ensure_scram_users",
    "kafka_users",
    "kafka_users_yaml",
    "principals",
    "secure_local_broker",
    "to_binding",
]

REGISTER_OFFICE = "register-office"
ROUTER = "router"
OPERATOR = "operator"
K8S_USER_PREFIX = "civreg-"
"""KafkaUser names in ``deploy/k8s`` (and so their principals and Secrets): ``civreg-tax``, ``civreg-router``."""


class AclApplyError(CivregError, RuntimeError):
    """The cluster refused or could not be asked to change its ACLs or users; the message says which and why."""


class Resource(StrEnum):
    """The Kafka resource types the bus's ACLs use (Strimzi's spelling)."""

    TOPIC = "topic"
    GROUP = "group"
    CLUSTER = "cluster"
    TRANSACTIONAL_ID = "transactionalId"


class Pattern(StrEnum):
    """Whether an ACL names one resource or every resource whose name starts with it."""

    LITERAL = "literal"
    PREFIXED = "prefix"


@dataclass(frozen=True, order=True)
class AclRule:
    """One ALLOW binding: ``principal`` may do ``operation`` on a resource (from any host)."""

    principal: str
    resource: Resource
    name: str
    pattern: Pattern
    operation: str  # Kafka's operation name: Read, Write, Describe, DescribeConfigs, IdempotentWrite


_CLUSTER_NAME = "kafka-cluster"


def _topic(principal: str, name: str, *operations: str, pattern: Pattern = Pattern.LITERAL) -> list[AclRule]:
    return [AclRule(principal, Resource.TOPIC, name, pattern, op) for op in operations]


def _group(principal: str, name: str, *operations: str, pattern: Pattern = Pattern.LITERAL) -> list[AclRule]:
    return [AclRule(principal, Resource.GROUP, name, pattern, op) for op in operations]


def _cluster(principal: str, *operations: str) -> list[AclRule]:
    return [AclRule(principal, Resource.CLUSTER, _CLUSTER_NAME, Pattern.LITERAL, op) for op in operations]


def principals(departments: Iterable[str], user_prefix: str = "") -> list[str]:
    """Every principal that needs a login: the roles, then one per department (the admin is the broker's own)."""
    return [f"{user_prefix}{role}" for role in (REGISTER_OFFICE, ROUTER, OPERATOR, *sorted(set(departments)))]


def department_group(department: str, prefix: str) -> str:
    """A department's consumer group (``Department.group_id``: the same name as its topic, another resource)."""
    return f"{prefix}.department.{department}"


def dead_letter_reader_groups(prefix: str) -> str:
    """Prefix of the throw-away groups ``civreg dead-letters list`` reads with (assigned, never committed)."""
    return f"{prefix}.dead-letter-reader."


def trace_group(prefix: str) -> str:
    """The group id ``civreg trace`` reads the acknowledgements with (assigned, never committed)."""
    return f"{prefix}.trace"


def acl_rules(departments: Iterable[str], prefix: str, user_prefix: str = "") -> list[AclRule]:
    """Every ALLOW binding of the bus, sorted; anything not listed is denied.

    ``departments`` come from the agreements (``agreement_departments``): a department without an agreement gets
    no principal and no access at all.
    """
    rules: list[AclRule] = []
    registrations = sorted(registration_topics(prefix).values())
    office = f"{user_prefix}{REGISTER_OFFICE}"
    for topic in registrations:
        rules += _topic(office, topic, "Describe", "Write")
    rules += _cluster(office, "IdempotentWrite")

    router = f"{user_prefix}{ROUTER}"
    for topic in registrations:
        rules += _topic(router, topic, "Describe", "Read")
    # one lane per department: group and transactional id ``<prefix>.router.<department>`` (consumers.routing)
    rules += _group(router, router_group(prefix), "Read", pattern=Pattern.PREFIXED)
    for department in sorted(set(departments)):
        rules += _topic(router, department_topic(department, prefix), "Describe", "Write")
    rules += _topic(router, disclosure_topic(prefix), "Describe", "Write")
    # its dead-letter topic: written in its transactions, read back by ``civreg dead-letters list -d router``
    rules += _topic(router, dead_letter_topic(ROUTER, prefix), "Describe", "Read", "Write")
    rules += _group(router, dead_letter_reader_groups(prefix), "Read", pattern=Pattern.PREFIXED)
    rules += [
        AclRule(router, Resource.TRANSACTIONAL_ID, router_group(prefix), Pattern.PREFIXED, op)
        for op in ("Describe", "Write")
    ]
    rules += _cluster(router, "IdempotentWrite")

    for department in sorted(set(departments)):
        principal = f"{user_prefix}{department}"
        rules += _topic(principal, department_topic(department, prefix), "Describe", "Read")
        rules += _group(principal, department_group(department, prefix), "Read")
        rules += _topic(principal, dead_letter_topic(department, prefix), "Describe", "Read", "Write")
        rules += _group(principal, dead_letter_reader_groups(prefix), "Read", pattern=Pattern.PREFIXED)
        rules += _topic(principal, acknowledgement_topic(prefix), "Describe", "Write")
        rules += _cluster(principal, "IdempotentWrite")

    operator = f"{user_prefix}{OPERATOR}"
    rules += _cluster(operator, "Describe")
    rules += _topic(operator, f"{prefix}.", "Describe", "DescribeConfigs", pattern=Pattern.PREFIXED)
    rules += _group(operator, f"{prefix}.", "Describe", pattern=Pattern.PREFIXED)
    rules += _topic(operator, acknowledgement_topic(prefix), "Read")
    rules += _group(operator, trace_group(prefix), "Read")
    return sorted(set(rules))


def agreement_departments(directory: Path) -> list[str]:
    """The departments that have an agreement file in ``directory`` (its ``department`` key), sorted."""
    found: list[str] = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise AclApplyError(f"cannot read data-sharing agreement {path}: {exc}") from exc
        name = raw.get("department") if isinstance(raw, dict) else None
        if not isinstance(name, str) or not name.strip():
            raise AclApplyError(f"{path.name}: 'department' must be non-empty text")
        found.append(name.strip())
    return sorted(found)


# Kubernetes (Strimzi) -------------------------------------------------------------------------------------------


def kafka_users(departments: Iterable[str], prefix: str = "civreg", namespace: str = "civreg") -> list[dict[str, Any]]:
    """One Strimzi ``KafkaUser`` (SCRAM-SHA-512, simple authorization) per principal, with ``acl_rules``' bindings."""
    departments = sorted(set(departments))
    rules = acl_rules(departments, prefix, user_prefix=K8S_USER_PREFIX)
    users: list[dict[str, Any]] = []
    for principal in principals(departments, K8S_USER_PREFIX):
        grouped: dict[tuple[Resource, str, Pattern], list[str]] = {}
        for rule in rules:
            if rule.principal == principal:
                grouped.setdefault((rule.resource, rule.name, rule.pattern), []).append(rule.operation)
        acls: list[dict[str, Any]] = []
        for (resource, name, pattern), operations in grouped.items():
            spec: dict[str, Any] = {"type": resource.value}
            if resource is not Resource.CLUSTER:
                spec.update({"name": name, "patternType": pattern.value})
            acls.append({"resource": spec, "operations": sorted(operations)})
        labels = {"strimzi.io/cluster": "civreg", "app.kubernetes.io/part-of": "civreg"}
        role = principal.removeprefix(K8S_USER_PREFIX)
        if role in departments:
            labels["civreg/department"] = role
        users.append(
            {
                "apiVersion": "kafka.strimzi.io/v1beta2",
                "kind": "KafkaUser",
                "metadata": {"name": principal, "namespace": namespace, "labels": labels},
                "spec": {
                    "authentication": {"type": "scram-sha-512"},
                    "authorization": {"type": "simple", "acls": acls},
                },
            }
        )
    return users


_K8S_HEADER = """\
# GENERATED by `civreg acls k8s > deploy/k8s/users.yaml` from deploy/agreements/ and schemas/topics.py (deploy/acls.py);
# do not edit: tests/unit/test_acls.py fails when this file and the generator disagree.
# One KafkaUser (SCRAM-SHA-512) per principal with exactly the ACLs deploy/acls.py grants: each department reads only
# its own department topic in its own group and writes its dead-letter topic and the acknowledgements; the router
# reads the registration topics and writes the department topics and the disclosure ledger in transactions; the
# register offices only write the registration topics; operators only describe (and read the acknowledgements).
# Strimzi's User Operator creates a Secret of the same name holding the password (key: password).
"""


def kafka_users_yaml(departments: Iterable[str], prefix: str = "civreg") -> str:
    """``deploy/k8s/users.yaml``: the generated ``KafkaUser`` resources with their header."""
    documents = [
        yaml.safe_dump(user, sort_keys=False, default_flow_style=False) for user in kafka_users(departments, prefix)
    ]
    return _K8S_HEADER + "---\n".join(documents)


# The secure local broker ---------------------------------------------------------------------------------------


def secure_local_broker(kafka: LocalKafka, departments: Iterable[str], timeout: float = 30.0) -> AclReport:
    """Give every principal a SCRAM login on the secure local broker and apply the bus's ACLs (idempotent)."""
    if kafka.security is None:
        raise AclApplyError("the local broker runs without security; start it with 'civreg dev up --secure'")
    departments = sorted(set(departments))
    passwords = kafka.security.ensure_users(principals(departments))
    admin = AdminClient(kafka.admin_client_config())
    ensure_scram_users(admin, {name: passwords[name] for name in principals(departments)}, timeout)
    return apply_acls(admin, acl_rules(departments, kafka.settings.topic_prefix), kafka.settings.topic_prefix, timeout)


# Applying to a cluster ------------------------------------------------------------------------------------------

_RESOURCE_TYPES = {
    Resource.TOPIC: ResourceType.TOPIC,
    Resource.GROUP: ResourceType.GROUP,
    Resource.CLUSTER: ResourceType.BROKER,
    Resource.TRANSACTIONAL_ID: ResourceType.TRANSACTIONAL_ID,
}
_PATTERNS = {Pattern.LITERAL: ResourcePatternType.LITERAL, Pattern.PREFIXED: ResourcePatternType.PREFIXED}
_OPERATIONS = {
    "Read": AclOperation.READ,
    "Write": AclOperation.WRITE,
    "Describe": AclOperation.DESCRIBE,
    "DescribeConfigs": AclOperation.DESCRIBE_CONFIGS,
    "IdempotentWrite": AclOperation.IDEMPOTENT_WRITE,
}


def to_binding(rule: AclRule) -> AclBinding:
    """The Kafka admin API's form of ``rule``."""
    return AclBinding(
        _RESOURCE_TYPES[rule.resource],
        rule.name,
        _PATTERNS[rule.pattern],
        f"User:{rule.principal}",
        "*",
        _OPERATIONS[rule.operation],
        AclPermissionType.ALLOW,
    )


def binding_key(binding: AclBinding) -> tuple[Any, ...]:
    """What makes two bindings the same (AclBinding itself does not compare by value in every version)."""
    return (
        binding.restype,
        binding.name,
        binding.resource_pattern_type,
        binding.principal,
        binding.host,
        binding.operation,
        binding.permission_type,
    )


@dataclass(frozen=True)
class AclReport:
    """What ``apply_acls`` changed."""

    created: tuple[AclBinding, ...]
    deleted: tuple[AclBinding, ...]
    unchanged: int


def current_acls(admin: AdminClient, timeout: float = 10.0) -> list[AclBinding]:
    """Every ACL binding the cluster holds."""
    anything: Any = None  # the filter's "any name/principal/host" (its stubs say str)
    everything = AclBindingFilter(
        ResourceType.ANY,
        anything,
        ResourcePatternType.ANY,
        anything,
        anything,
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
    try:
        found: list[AclBinding] = admin.describe_acls(everything, request_timeout=timeout).result()
    except KafkaException as exc:
        raise AclApplyError(f"cannot read the cluster's ACLs: {error_text(exc)}") from exc
    return found


def _ours(binding: AclBinding, prefix: str) -> bool:
    """A binding on the bus's resources (named under the prefix, or the cluster), which ``apply_acls`` manages."""
    return binding.restype == ResourceType.BROKER or str(binding.name).startswith(f"{prefix}.")


def apply_acls(admin: AdminClient, rules: Sequence[AclRule], prefix: str, timeout: float = 10.0) -> AclReport:
    """Make the cluster hold exactly ``rules`` on the bus's resources: create the missing, delete the stale ones.

    Idempotent: a second run changes nothing. Bindings on resources outside ``<prefix>.`` are left alone.
    """
    wanted = {binding_key(binding): binding for binding in map(to_binding, rules)}
    existing = {binding_key(binding): binding for binding in current_acls(admin, timeout) if _ours(binding, prefix)}
    missing = [binding for key, binding in wanted.items() if key not in existing]
    stale = [binding for key, binding in existing.items() if key not in wanted]
    try:
        if missing:
            for future in admin.create_acls(missing, request_timeout=timeout).values():
                future.result()
        if stale:
            filters = [
                AclBindingFilter(
                    b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation, b.permission_type
                )
                for b in stale
            ]
            for future in admin.delete_acls(filters, request_timeout=timeout).values():
                future.result()
    except KafkaException as exc:
        raise AclApplyError(f"the cluster refused an ACL change: {error_text(exc)}") from exc
    return AclReport(created=tuple(missing), deleted=tuple(stale), unchanged=len(wanted) - len(missing))


def ensure_scram_users(admin: AdminClient, passwords: dict[str, str], timeout: float = 10.0) -> None:
    """Create or update one SCRAM-SHA-512 login per principal (``passwords`` never leave this call)."""
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192)
    upserts: list[UserScramCredentialAlteration] = [
        UserScramCredentialUpsertion(name, info, password.encode("utf-8")) for name, password in passwords.items()
    ]
    if not upserts:
        return
    try:
        for future in admin.alter_user_scram_credentials(upserts, request_timeout=timeout).values():
            future.result()
    except KafkaException as exc:
        raise AclApplyError(f"the cluster refused a SCRAM login change: {error_text(exc)}") from exc
