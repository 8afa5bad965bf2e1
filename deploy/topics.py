"""Declarative topics: ``topics.yaml`` (under ``CIVREG_CONFIG_DIR``) says how each kind of topic is configured, this
applies it.

Why declarative and idempotent: the same definitions serve the local broker, CI and a production cluster
(only the profile's replication differs), and ``apply_topics`` can run on every deploy: it creates what is
missing, grows partitions, sets configs that drifted, and never deletes or shrinks anything.
Topic names come from ``schemas.topics`` so publishers, departments and this file cannot disagree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

from civreg.errors import CivregError
from civreg.kafka_config import error_text, quiet_admin_config
from civreg.settings import PACKAGED_CONFIG, Settings
from schemas.departments import DEPARTMENT_NAMES
from schemas.topics import acknowledgement_topic, dead_letter_topic, registration_topics

__all__ = [
    "DEFAULT_DEPARTMENTS",
    "DEFINITIONS_PATH",
    "ApplyReport",
    "Profile",
    "TopicAction",
    "TopicApplyError",
    "TopicChange",
    "TopicDefinitionError",
    "TopicDefinitions",
    "TopicKind",
    "TopicSpec",
    "TopicState",
    "apply_topics",
    "default_profile",
    "desired_topics",
    "load_definitions",
    "topic_states",
]

DEFINITIONS_PATH = PACKAGED_CONFIG.topics
"""The copy installed with civreg; a service reads ``settings.config_files.topics``."""

DEFAULT_DEPARTMENTS = DEPARTMENT_NAMES
"""Departments consuming the bus (each has a dead-letter topic); consumers/departments.py holds their rules."""

_DEPARTMENT_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_MIN_ISR = "min.insync.replicas"


class TopicDefinitionError(CivregError, ValueError):
    """The YAML or the arguments describe topics that cannot exist (bad profile, name, number)."""


class TopicApplyError(CivregError, RuntimeError):
    """The cluster refused or could not be reached; the message says which topic and why."""


class TopicKind(StrEnum):
    """The three kinds of topic; each has one block in topics.yaml."""

    REGISTRATION = "registration"
    DEAD_LETTER = "dead_letter"
    ACKNOWLEDGEMENT = "acknowledgement"


@dataclass(frozen=True)
class Profile:
    """Replication for one environment."""

    replication_factor: int
    min_insync_replicas: int


@dataclass(frozen=True)
class KindDefinition:
    """Partitions and topic configs shared by every topic of one kind."""

    partitions: int
    config: Mapping[str, str]


@dataclass(frozen=True)
class TopicDefinitions:
    """The parsed topics.yaml."""

    profiles: Mapping[str, Profile]
    kinds: Mapping[TopicKind, KindDefinition]


@dataclass(frozen=True)
class TopicSpec:
    """One topic as it should exist on the cluster."""

    name: str
    kind: TopicKind
    partitions: int
    replication_factor: int
    config: Mapping[str, str]


class TopicAction(StrEnum):
    """What ``apply_topics`` did to one topic."""

    CREATED = "created"
    PARTITIONS_INCREASED = "partitions_increased"
    CONFIG_UPDATED = "config_updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class TopicChange:
    """The actions taken on one topic, with human-readable details (``retention.ms: 604800000 -> -1``)."""

    topic: str
    actions: tuple[TopicAction, ...]
    details: tuple[str, ...] = ()


@dataclass
class ApplyReport:
    """Everything ``apply_topics`` did; ``warnings`` lists drift it must not fix by itself."""

    bootstrap: str
    profile: str
    replication_factor: int
    changes: list[TopicChange] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def topics_with(self, action: TopicAction) -> list[str]:
        """Names of the topics on which ``action`` was taken."""
        return [change.topic for change in self.changes if action in change.actions]

    @property
    def created(self) -> list[str]:
        """Topics that did not exist before."""
        return self.topics_with(TopicAction.CREATED)

    @property
    def changed(self) -> bool:
        """True if anything on the cluster was modified."""
        return any(change.actions != (TopicAction.UNCHANGED,) for change in self.changes)


@dataclass(frozen=True)
class TopicState:
    """A desired topic next to what the cluster has (``None`` where it does not exist)."""

    spec: TopicSpec
    partitions: int | None
    replication_factor: int | None

    @property
    def exists(self) -> bool:
        """Whether the topic exists on the cluster."""
        return self.partitions is not None


# ---- definitions ----------------------------------------------------------------------------------------


def _positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TopicDefinitionError(f"{where} must be a positive integer, got {value!r}")
    return value


def load_definitions(path: Path = DEFINITIONS_PATH) -> TopicDefinitions:
    """Parse and check topics.yaml; a malformed file fails here, before anything touches a cluster."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise TopicDefinitionError(f"cannot read topic definitions {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise TopicDefinitionError(f"{path}: expected a mapping with 'profiles' and 'topics'")

    raw_profiles = raw.get("profiles")
    if not isinstance(raw_profiles, dict) or not raw_profiles:
        raise TopicDefinitionError(f"{path}: 'profiles' must be a non-empty mapping")
    profiles: dict[str, Profile] = {}
    for name, body in raw_profiles.items():
        if not isinstance(body, dict):
            raise TopicDefinitionError(f"{path}: profile {name!r} must be a mapping")
        profiles[str(name)] = Profile(
            replication_factor=_positive_int(body.get("replication_factor"), f"profiles.{name}.replication_factor"),
            min_insync_replicas=_positive_int(body.get("min_insync_replicas"), f"profiles.{name}.min_insync_replicas"),
        )

    raw_topics = raw.get("topics")
    if not isinstance(raw_topics, dict):
        raise TopicDefinitionError(f"{path}: 'topics' must be a mapping")
    unknown = set(raw_topics) - {kind.value for kind in TopicKind}
    if unknown:
        raise TopicDefinitionError(f"{path}: unknown topic kinds {sorted(unknown)}")
    kinds: dict[TopicKind, KindDefinition] = {}
    for kind in TopicKind:
        body = raw_topics.get(kind.value)
        if not isinstance(body, dict):
            raise TopicDefinitionError(f"{path}: topics.{kind.value} is missing or not a mapping")
        config = body.get("config") or {}
        if not isinstance(config, dict):
            raise TopicDefinitionError(f"{path}: topics.{kind.value}.config must be a mapping")
        if _MIN_ISR in config:
            raise TopicDefinitionError(f"{path}: {_MIN_ISR} comes from the profile, not topics.{kind.value}")
        kinds[kind] = KindDefinition(
            partitions=_positive_int(body.get("partitions"), f"topics.{kind.value}.partitions"),
            config={str(key): str(value) for key, value in config.items()},
        )
    return TopicDefinitions(profiles=profiles, kinds=kinds)


def default_profile(settings: Settings) -> str:
    """``local`` for the embedded single-node broker, ``production`` for a user's own cluster."""
    return "local" if settings.uses_local_broker else "production"


def desired_topics(
    prefix: str = "civreg",
    departments: Iterable[str] = DEFAULT_DEPARTMENTS,
    profile: str = "local",
    replication_factor: int | None = None,
    definitions: TopicDefinitions | None = None,
) -> list[TopicSpec]:
    """Every topic the bus needs, fully specified: registrations, one dead-letter per department, acks.

    ``replication_factor`` overrides the profile's; ``min.insync.replicas`` is the profile's capped at the
    replication factor (a topic with min ISR above its replica count would refuse every acks=all write).
    """
    defs = definitions if definitions is not None else load_definitions()
    if profile not in defs.profiles:
        raise TopicDefinitionError(f"unknown profile {profile!r}; known: {', '.join(sorted(defs.profiles))}")
    chosen = defs.profiles[profile]
    rf = chosen.replication_factor if replication_factor is None else replication_factor
    _positive_int(rf, "replication factor")
    min_isr = min(chosen.min_insync_replicas, rf)

    names = [(TopicKind.REGISTRATION, topic) for topic in registration_topics(prefix).values()]
    seen: set[str] = set()
    for department in departments:
        if not _DEPARTMENT_NAME.match(department):
            raise TopicDefinitionError(
                f"department name {department!r} must be lower-case letters, digits and '-' (max 64)"
            )
        if department not in seen:
            seen.add(department)
            names.append((TopicKind.DEAD_LETTER, dead_letter_topic(department, prefix)))
    names.append((TopicKind.ACKNOWLEDGEMENT, acknowledgement_topic(prefix)))

    specs: list[TopicSpec] = []
    for kind, name in names:
        if not _TOPIC_NAME.match(name):
            raise TopicDefinitionError(f"{name!r} is not a legal Kafka topic name (check the topic prefix)")
        kind_def = defs.kinds[kind]
        specs.append(
            TopicSpec(
                name=name,
                kind=kind,
                partitions=kind_def.partitions,
                replication_factor=rf,
                config={**kind_def.config, _MIN_ISR: str(min_isr)},
            )
        )
    return specs


# ---- cluster --------------------------------------------------------------------------------------------


def _admin(settings: Settings, errors: list[str]) -> AdminClient:
    return AdminClient(quiet_admin_config(settings, errors))


def _cluster_topics(admin: AdminClient, settings: Settings, errors: list[str], timeout: float) -> dict[str, Any]:
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        detail = errors[0] if errors else error_text(exc)
        bootstrap = settings.effective_bootstrap_servers
        raise TopicApplyError(f"cannot reach Kafka at {bootstrap}: {detail}") from exc
    topics: dict[str, Any] = metadata.topics
    return topics


def _replicas(topic_metadata: Any) -> int | None:
    partitions = topic_metadata.partitions
    if not partitions:
        return None
    return len(next(iter(partitions.values())).replicas)


def topic_states(
    settings: Settings,
    departments: Sequence[str] = DEFAULT_DEPARTMENTS,
    replication_factor: int | None = None,
    *,
    profile: str | None = None,
    timeout: float = 10.0,
) -> list[TopicState]:
    """Desired topics next to what the cluster has, for ``civreg topics list``; changes nothing."""
    specs = desired_topics(
        settings.topic_prefix,
        departments,
        profile or default_profile(settings),
        replication_factor,
        load_definitions(settings.config_files.topics),
    )
    errors: list[str] = []
    existing = _cluster_topics(_admin(settings, errors), settings, errors, timeout)
    states: list[TopicState] = []
    for spec in specs:
        meta = existing.get(spec.name)
        states.append(
            TopicState(
                spec=spec,
                partitions=None if meta is None else len(meta.partitions),
                replication_factor=None if meta is None else _replicas(meta),
            )
        )
    return states


def apply_topics(
    settings: Settings,
    departments: Sequence[str] = DEFAULT_DEPARTMENTS,
    replication_factor: int | None = None,
    *,
    profile: str | None = None,
    timeout: float = 30.0,
) -> ApplyReport:
    """Make the cluster's topics match the definitions; safe to run any number of times.

    Creates missing topics, raises partition counts that are lower, sets configs that differ (incrementally,
    so configs set by hand that the YAML does not mention are left alone). Never deletes a topic, never
    lowers partitions, never changes an existing replication factor: those are reported as warnings.
    """
    chosen_profile = profile or default_profile(settings)
    definitions = load_definitions(settings.config_files.topics)
    specs = desired_topics(settings.topic_prefix, departments, chosen_profile, replication_factor, definitions)
    rf = specs[0].replication_factor
    report = ApplyReport(bootstrap=settings.effective_bootstrap_servers, profile=chosen_profile, replication_factor=rf)
    errors: list[str] = []
    admin = _admin(settings, errors)
    existing = _cluster_topics(admin, settings, errors, timeout)

    missing = [spec for spec in specs if spec.name not in existing]
    present = [_fit_existing(spec, existing[spec.name], report.warnings) for spec in specs if spec.name in existing]
    progress = _Progress(specs, report.warnings)

    _create(admin, missing, timeout, progress)
    _grow_partitions(admin, present, existing, timeout, progress)
    _update_configs(admin, present, timeout, progress)

    for spec in specs:
        done = tuple(progress.actions[spec.name]) or (TopicAction.UNCHANGED,)
        report.changes.append(TopicChange(topic=spec.name, actions=done, details=tuple(progress.details[spec.name])))
    return report


def _fit_existing(spec: TopicSpec, topic_metadata: Any, warnings: list[str]) -> TopicSpec:
    """The spec to enforce on an existing topic whose replication factor apply cannot change.

    min.insync.replicas above the topic's real replica count would make every acks=all write fail, so it is
    capped at the replicas the topic actually has (and the mismatch is reported).
    """
    actual_rf = _replicas(topic_metadata)
    if actual_rf is None or actual_rf == spec.replication_factor:
        return spec
    warnings.append(
        f"{spec.name} has replication factor {actual_rf}, definitions say {spec.replication_factor}; "
        "change it with a partition reassignment (apply never does)"
    )
    wanted_isr = int(spec.config[_MIN_ISR])
    if wanted_isr <= actual_rf:
        return spec
    return replace(spec, config={**spec.config, _MIN_ISR: str(actual_rf)})


class _Progress:
    """What has been done so far, per topic, while applying."""

    def __init__(self, specs: Sequence[TopicSpec], warnings: list[str]) -> None:
        self.actions: dict[str, list[TopicAction]] = {spec.name: [] for spec in specs}
        self.details: dict[str, list[str]] = {spec.name: [] for spec in specs}
        self.warnings = warnings


def _create(
    admin: AdminClient,
    specs: Sequence[TopicSpec],
    timeout: float,
    progress: _Progress,
) -> None:
    if not specs:
        return
    new_topics = [
        NewTopic(
            spec.name,
            num_partitions=spec.partitions,
            replication_factor=spec.replication_factor,
            config=dict(spec.config),
        )
        for spec in specs
    ]
    futures = admin.create_topics(new_topics, operation_timeout=timeout, request_timeout=timeout)
    by_name = {spec.name: spec for spec in specs}
    for name, future in futures.items():
        try:
            future.result()
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                # A parallel apply got there first: the topic exists, which is all we wanted.
                progress.details[name].append("created concurrently by someone else")
                continue
            spec = by_name[name]
            raise TopicApplyError(
                f"creating {name} ({spec.partitions} partitions, replication factor "
                f"{spec.replication_factor}) failed: {_describe(exc)}"
            ) from exc
        created = by_name[name]
        progress.actions[name].append(TopicAction.CREATED)
        progress.details[name].append(f"{created.partitions} partitions, rf {created.replication_factor}")


def _grow_partitions(
    admin: AdminClient,
    specs: Sequence[TopicSpec],
    existing: Mapping[str, Any],
    timeout: float,
    progress: _Progress,
) -> None:
    grow: list[NewPartitions] = []
    for spec in specs:
        current = len(existing[spec.name].partitions)
        if current < spec.partitions:
            grow.append(NewPartitions(spec.name, spec.partitions))
            progress.details[spec.name].append(f"partitions {current} -> {spec.partitions}")
        elif current > spec.partitions:
            progress.warnings.append(
                f"{spec.name} has {current} partitions, definitions say {spec.partitions}; "
                "Kafka cannot remove partitions, so it is left as is"
            )
    if not grow:
        return
    futures = admin.create_partitions(grow, operation_timeout=timeout, request_timeout=timeout)
    for name, future in futures.items():
        try:
            future.result()
        except KafkaException as exc:
            raise TopicApplyError(f"adding partitions to {name} failed: {_describe(exc)}") from exc
        progress.actions[name].append(TopicAction.PARTITIONS_INCREASED)


def _update_configs(
    admin: AdminClient,
    specs: Sequence[TopicSpec],
    timeout: float,
    progress: _Progress,
) -> None:
    if not specs:
        return
    resources = [ConfigResource(ResourceType.TOPIC, spec.name) for spec in specs]
    described = admin.describe_configs(resources, request_timeout=timeout)
    current: dict[str, dict[str, str | None]] = {}
    for resource, future in described.items():
        try:
            entries = future.result()
        except KafkaException as exc:
            raise TopicApplyError(f"reading the config of {resource.name} failed: {_describe(exc)}") from exc
        current[resource.name] = {key: entry.value for key, entry in entries.items()}

    to_alter: list[ConfigResource] = []
    for spec in specs:
        have = current.get(spec.name, {})
        diff = {key: value for key, value in spec.config.items() if have.get(key) != value}
        if not diff:
            continue
        for key, value in sorted(diff.items()):
            progress.details[spec.name].append(f"{key}: {have.get(key)} -> {value}")
        set_op = AlterConfigOpType.SET
        entries = [ConfigEntry(key, value, incremental_operation=set_op) for key, value in diff.items()]
        to_alter.append(ConfigResource(ResourceType.TOPIC, spec.name, incremental_configs=entries))
    if not to_alter:
        return
    futures = admin.incremental_alter_configs(to_alter, request_timeout=timeout)
    for resource, future in futures.items():
        try:
            future.result()
        except KafkaException as exc:
            raise TopicApplyError(f"updating the config of {resource.name} failed: {_describe(exc)}") from exc
        progress.actions[resource.name].append(TopicAction.CONFIG_UPDATED)


def _describe(exc: KafkaException) -> str:
    error = exc.args[0] if exc.args else None
    if isinstance(error, KafkaError):
        return f"{error.name()}: {error.str()}"
    return str(exc)
