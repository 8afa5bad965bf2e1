"""A Confluent-compatible schema registry as the codec's ``SchemaResolver``, and the contract's subject names.

Subject naming: ``<topic>-<record full name>`` (Confluent's TopicRecordNameStrategy), e.g.
``civreg.registrations.deaths-uk.gov.civreg.DeathRegistered``. Why: one registration topic carries several event
types (a deaths topic carries DeathRegistered, RegistrationCorrected and RegistrationVoided, since corrections
and voids travel with the entry's register). The default TopicNameStrategy (``<topic>-value``) allows one schema
per topic, so every new event type would be an "incompatible" change; RecordNameStrategy (``<record>``) would give
RegistrationVoided one history shared by all four registers and by every environment's topic prefix. With
topic-record subjects each (topic, event type) pair has its own version history and compatibility rule, and a
topic prefix (per environment, per test) isolates its subjects.

Client: ``confluent_kafka.schema_registry.SchemaRegistryClient`` (maintained, basic auth, TLS, retries, works with
Apicurio's ``/apis/ccompat/v7``) does the control-plane calls: lookup, registration, fetching a schema by id. It
is never on the per-message path: ids and parsed writer schemas are cached here, and the codec decodes with
fastavro directly, so a message costs a dict lookup, not the stock deserializer's per-call work.
"""

from __future__ import annotations

import importlib
import json
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import fastavro

from schemas.acknowledgements import ACTION_TAKEN, LOCAL_SCHEMA_ID, LocalAcknowledgementSchema, action_taken_schema
from schemas.catalogue import EVENT_TYPES, EventSchema, event_schema
from schemas.codec import ResolverUnavailable, UnknownSchemaId
from schemas.errors import CivregError
from schemas.models import EVENT_MODELS, RegistrationEvent
from schemas.topics import acknowledgement_topic, registration_topics

__all__ = [
    "ContractSubject",
    "RegistryAcknowledgementSchema",
    "RegistryError",
    "RegistrySchemaResolver",
    "RegistryUnavailable",
    "SchemaNotRegistered",
    "SchemaRefused",
    "contract_schema",
    "contract_subjects",
    "load_client_library",
    "redact_url",
    "registry_client",
    "subject_name",
]

_UNKNOWN_ID_TTL_SECONDS = 30.0


class RegistryError(CivregError, RuntimeError):
    """The registry answered, and the answer is a refusal (authentication, unknown subject, refused schema)."""


class RegistryUnavailable(ResolverUnavailable, RegistryError):
    """The registry could not be reached (or failed with a 5xx): retry later; nothing is wrong with the message."""


class SchemaNotRegistered(RegistryError):
    """Auto-registration is off and the schema is not registered under its subject."""


class SchemaRefused(RegistryError):
    """The registry refused to register a schema, usually because it breaks the subject's compatibility rule."""

    def __init__(self, subject: str, message: str) -> None:
        super().__init__(f"the registry refused the schema for subject {subject}: {message}")
        self.subject = subject


def subject_name(topic: str, record_full_name: str) -> str:
    """The subject of one event type on one topic: ``<topic>-<record full name>`` (TopicRecordNameStrategy)."""
    return f"{topic}-{record_full_name}"


@dataclass(frozen=True)
class ContractSubject:
    """One subject the contract defines: an event type on a registration topic."""

    topic: str
    event_type: str
    subject: str
    key: str
    """The subject without the topic prefix (``registrations.deaths-uk.gov.civreg.DeathRegistered``): the name the
    compatibility policy uses, the same in every environment."""


def contract_schema(event_type: str) -> EventSchema:
    """The schema registered for ``event_type``: a registration event's, or the acknowledgement's (ActionTaken)."""
    return action_taken_schema() if event_type == ACTION_TAKEN else event_schema(event_type)


def contract_subjects(topic_prefix: str) -> list[ContractSubject]:
    """Every subject of the contract under ``topic_prefix``: each registration topic's event types, then the
    acknowledgement topic's ActionTaken (departments publish it; auditors and ``trace`` read it)."""
    pairs: list[tuple[str, str]] = []
    for register, topic in registration_topics(topic_prefix).items():
        for event_type in EVENT_TYPES:
            model = EVENT_MODELS[event_type]
            if issubclass(model, RegistrationEvent) and model.register_of_type is not register:
                continue  # a registration travels only on its own register's topic
            pairs.append((topic, event_type))
    pairs.append((acknowledgement_topic(topic_prefix), ACTION_TAKEN))
    subjects: list[ContractSubject] = []
    for topic, event_type in pairs:
        subject = subject_name(topic, contract_schema(event_type).full_name)
        subjects.append(ContractSubject(topic, event_type, subject, subject[len(topic_prefix) + 1 :]))
    return subjects


def redact_url(url: str) -> str:
    """``url`` without any ``user:password@`` part, for logs and messages."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def load_client_library() -> None:
    """Import confluent-kafka's registry client without its dependency's import-time warning on stderr.

    authlib warns about httpx when imported, through a filter that shows the warning always; an ignore filter
    added after that one takes precedence, for that warning class only.
    """
    import authlib.deprecate

    warnings.filterwarnings("ignore", category=authlib.deprecate.AuthlibDeprecationWarning)
    import confluent_kafka.schema_registry  # noqa: F401


def registry_client(
    url: str, *, username: str | None = None, password: str | None = None, timeout: float = 10.0
) -> Any:
    """A ``SchemaRegistryClient`` for ``url`` with optional basic auth.

    Its own retries are kept short (one retry): callers that must wait for a registry (start-up, a consumer
    meeting a new schema id) retry with their own backoff and logging.
    """
    load_client_library()
    from confluent_kafka.schema_registry import SchemaRegistryClient

    config: dict[str, Any] = {"url": url, "timeout": timeout, "max.retries": 1, "retries.wait.ms": 200}
    if username is not None:
        config["basic.auth.user.info"] = f"{username}:{password or ''}"
    return SchemaRegistryClient(config)


def _status(exc: Exception) -> int | None:
    code = getattr(exc, "http_status_code", None)
    return code if isinstance(code, int) else None


class RegistrySchemaResolver:
    """Schema ids from a registry under topic-record subjects; writer schemas by id, cached for the process.

    ``auto_register`` (development): a schema missing from its subject is registered, after the subject's
    compatibility level (from ``compatibility_for``) is set, so the policy holds from version 1. Without it
    (production): missing schemas are an error; ``civreg schemas register`` publishes them.
    Once an id is cached, the registry is not asked again: producers and consumers keep working through a
    registry outage for every schema they have met.
    """

    def __init__(
        self,
        client: Any,
        *,
        url: str,
        auto_register: bool = True,
        compatibility_for: Callable[[str], str | None] | None = None,
    ) -> None:
        self.client = client
        self.url = redact_url(url)
        self.auto_register = auto_register
        self._compatibility_for = compatibility_for
        self._ids: dict[tuple[str, str], int] = {}
        self._writers: dict[int, dict[str, Any]] = {}
        self._unknown: dict[int, float] = {}  # id -> monotonic time the registry said it does not exist
        self._lock = threading.Lock()

    # ---- SchemaResolver ---------------------------------------------------------------------------------------

    def schema_id(self, event_type: str) -> int:
        """Refused: a registry's subjects are per topic (use ``subject_schema_id``, or a Codec with a topic)."""
        raise ValueError(
            f"the registry id of {event_type} depends on the topic; encode with the topic or a codec's topic_prefix"
        )

    def subject_schema_id(self, event_type: str, topic: str) -> int:
        """The registry id of ``event_type``'s schema under its subject on ``topic``."""
        cached = self._ids.get((event_type, topic))
        if cached is not None:
            return cached
        with self._lock:
            cached = self._ids.get((event_type, topic))
            if cached is None:
                cached = self._resolve_id(event_type, topic)
                self._ids[(event_type, topic)] = cached
        return cached

    def writer_schema(self, schema_id: int) -> dict[str, Any]:
        """The parsed schema with ``schema_id``: UnknownSchemaId if the registry has none, RegistryUnavailable if
        it cannot be asked now."""
        cached = self._writers.get(schema_id)
        if cached is not None:
            return cached
        said_unknown = self._unknown.get(schema_id)
        if said_unknown is not None and time.monotonic() - said_unknown < _UNKNOWN_ID_TTL_SECONDS:
            raise UnknownSchemaId(f"schema id {schema_id} is not in the registry")
        with self._lock:
            cached = self._writers.get(schema_id)
            if cached is None:
                cached = self._fetch_writer(schema_id)
                self._writers[schema_id] = cached
        return cached

    # ---- start-up ---------------------------------------------------------------------------------------------

    def prepare(self, topics: Iterable[tuple[str, str]]) -> None:
        """Resolve the ids of ``(event_type, topic)`` pairs now, so publishing needs no registry call later."""
        for event_type, topic in topics:
            self.subject_schema_id(event_type, topic)

    def check_reachable(self) -> str:
        """Ask the registry for its global compatibility level (a cheap read); raises RegistryUnavailable."""
        level: str = self.call(self.client.get_compatibility)
        return level

    # ---- internals --------------------------------------------------------------------------------------------

    def call(self, action: Callable[[], Any]) -> Any:
        """Run one client call, turning transport failures and 5xx answers into RegistryUnavailable."""
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        try:
            return action()
        except SchemaRegistryError as exc:
            status = _status(exc)
            if status is not None and (status >= 500 or status in (408, 429)):
                raise RegistryUnavailable(f"schema registry {self.url} failed: HTTP {status}") from exc
            if status in (401, 403):
                raise RegistryError(
                    f"schema registry {self.url} refused the credentials (HTTP {status}); "
                    "check CIVREG_REGISTRY_USERNAME / CIVREG_REGISTRY_PASSWORD"
                ) from exc
            raise
        except _TRANSPORT_ERRORS as exc:  # connection refused, DNS, timeout, TLS
            raise RegistryUnavailable(
                f"schema registry {self.url} is unreachable: {type(exc).__name__}: {exc}"
            ) from exc

    def _resolve_id(self, event_type: str, topic: str) -> int:
        contract = contract_schema(event_type)
        return self._resolve_subject(subject_name(topic, contract.full_name), contract.schema_str, event_type)

    def schema_id_for(self, subject: str, schema_str: str) -> int:
        """The id of ``schema_str`` under ``subject`` (registered, with its compatibility rule, if missing and
        auto-registration is on): for schemas derived from the contract, such as a department's projection."""
        cached = self._ids.get((schema_str, subject))
        if cached is not None:
            return cached
        with self._lock:
            cached = self._ids.get((schema_str, subject))
            if cached is None:
                cached = self._resolve_subject(subject, schema_str, subject)
                self._ids[(schema_str, subject)] = cached
        return cached

    def _resolve_subject(self, subject: str, schema_str: str, what: str) -> int:
        from confluent_kafka.schema_registry import Schema
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        schema = Schema(schema_str, "AVRO")
        try:
            registered = self.call(lambda: self.client.lookup_schema(subject, schema))
            schema_id: int = registered.schema_id
            return schema_id
        except SchemaRegistryError as exc:
            if _status(exc) != 404:
                raise RegistryError(f"looking up subject {subject} failed: {exc}") from exc
        if not self.auto_register:
            raise SchemaNotRegistered(
                f"the schema of {what} is not registered under subject {subject} and auto-registration is "
                "off (CIVREG_REGISTRY_AUTO_REGISTER=false); publish it with 'civreg schemas register'"
            )
        level = self._compatibility_for(subject) if self._compatibility_for is not None else None
        if level is not None:
            self.call(lambda: self.client.set_compatibility(subject_name=subject, level=level))
        try:
            new_id: int = self.call(lambda: self.client.register_schema(subject, schema))
        except SchemaRegistryError as exc:
            raise SchemaRefused(subject, str(getattr(exc, "error_message", exc))) from exc
        return new_id

    def _fetch_writer(self, schema_id: int) -> dict[str, Any]:
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        try:
            schema = self.call(lambda: self.client.get_schema(schema_id))
        except SchemaRegistryError as exc:
            if _status(exc) == 404:
                self._unknown[schema_id] = time.monotonic()
                raise UnknownSchemaId(f"schema id {schema_id} is not in the registry") from None
            raise RegistryError(f"fetching schema id {schema_id} failed: {exc}") from exc
        if (schema.schema_type or "AVRO") != "AVRO":
            raise UnknownSchemaId(f"schema id {schema_id} is a {schema.schema_type} schema, not Avro")
        if schema.references:
            raise UnknownSchemaId(f"schema id {schema_id} uses schema references, which this bus does not use")
        try:
            parsed = fastavro.parse_schema(json.loads(schema.schema_str), named_schemas={})
        except Exception as exc:  # SchemaParseException, JSONDecodeError: the registry holds something unusable
            raise UnknownSchemaId(f"schema id {schema_id} is not a valid Avro schema: {type(exc).__name__}") from exc
        if not isinstance(parsed, dict):
            raise UnknownSchemaId(f"schema id {schema_id} is not a record schema")
        return parsed


class RegistryAcknowledgementSchema:
    """The acknowledgement codec's ``SchemaResolver`` with a registry: ActionTaken's id under its subject on the
    acknowledgement topic (registered like every other schema), writer schemas by id from the registry.

    Acknowledgements written before the registry was wired in carry ``LOCAL_SCHEMA_ID``; an id the registry does
    not know that is that one still reads with the local schema.
    """

    def __init__(self, resolver: RegistrySchemaResolver, topic: str) -> None:
        self.resolver = resolver
        self.topic = topic

    def schema_id(self, event_type: str) -> int:
        """The registry id of ActionTaken on the acknowledgement topic (resolved once, then cached)."""
        if event_type != ACTION_TAKEN:
            raise UnknownSchemaId(f"{event_type!r} is not an acknowledgement schema")
        return self.resolver.subject_schema_id(ACTION_TAKEN, self.topic)

    def writer_schema(self, schema_id: int) -> dict[str, Any]:
        """The registry's schema with ``schema_id`` (the local one for a legacy ``LOCAL_SCHEMA_ID``)."""
        try:
            return self.resolver.writer_schema(schema_id)
        except UnknownSchemaId:
            if schema_id == LOCAL_SCHEMA_ID:
                return LocalAcknowledgementSchema().writer_schema(schema_id)
            raise


def _transport_errors() -> tuple[type[Exception], ...]:
    """The HTTP client's transport errors: confluent-kafka uses httpx2 when installed, else httpx."""
    errors: list[type[Exception]] = []
    for name in ("httpx2", "httpx"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        errors.append(module.TransportError)
    return tuple(errors)


_TRANSPORT_ERRORS: tuple[type[Exception], ...] = (*_transport_errors(), OSError)
