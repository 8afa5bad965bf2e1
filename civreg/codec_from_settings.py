"""The codec every service uses, built from Settings: where schema ids come from is decided here, once.

In order:

1. ``CIVREG_REGISTRY_URL`` is set: that registry (Confluent Schema Registry, Apicurio's ``/apis/ccompat/v7``,
   Karapace), with basic auth when ``CIVREG_REGISTRY_USERNAME`` / ``CIVREG_REGISTRY_PASSWORD`` are set. With the
   local broker, ``civreg dev up`` sets it for you: it writes its registry's address to ``<home>/dev.env``, which
   ``Settings`` reads (the dev stack is the real thing, registry included);
2. otherwise the local catalogue (ids 1..6 of this checkout): unit tests, and a bare broker without a registry.
   With your own cluster this is almost certainly a mistake (nobody else knows those ids), so it is logged.

A service waits for its registry at start, retrying with backoff (``CIVREG_REGISTRY_WAIT_SECONDS``), then fails
with one clear error instead of crash-looping. A publishing service resolves every subject's id up front, so a
registry outage later costs it nothing; a consuming service caches each writer schema the first time it meets an
id, so known ids keep decoding through an outage.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_delay, wait_exponential_jitter

from civreg.logs import get_logger
from civreg.settings import Settings
from civreg.stopping import raise_if_stopping, sleep_unless_stopping
from deploy.schema_policy import load_policy
from schemas.acknowledgements import AcknowledgementCodec
from schemas.catalogue import EVENT_TYPES
from schemas.codec import Codec
from schemas.registry import (
    RegistryAcknowledgementSchema,
    RegistrySchemaResolver,
    RegistryUnavailable,
    contract_subjects,
    registry_client,
)
from schemas.topics import acknowledgement_topic

__all__ = [
    "open_acknowledgement_codec",
    "open_codec",
    "open_registry_resolver",
    "wait_for_registry",
]

log = get_logger(__name__)
T = TypeVar("T")


def open_registry_resolver(settings: Settings, url: str | None = None) -> RegistrySchemaResolver | None:
    """A ``RegistrySchemaResolver`` for ``url`` (default: ``settings.registry_url``), or None without a registry."""
    url = url or settings.registry_url
    if not url:
        return None
    policy = load_policy(settings.config_files.compatibility_policy)
    password = settings.registry_password.get_secret_value() if settings.registry_password else None
    client = registry_client(url, username=settings.registry_username, password=password)
    return RegistrySchemaResolver(
        client,
        url=url,
        auto_register=settings.registry_auto_register,
        compatibility_for=lambda subject: policy.level_for_subject(subject, settings.topic_prefix).value,
    )


def wait_for_registry(settings: Settings, action: Callable[[], T], what: str) -> T:
    """Run ``action`` (a registry call), retrying with backoff while the registry is unavailable.

    Gives up after ``settings.registry_wait_seconds`` with a RegistryUnavailable saying what was tried; a stop
    request (SIGTERM in a consumer, ``civreg.stopping``) ends the wait at once with ``StopRequested``.
    """

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning(
            "schema-registry-unavailable",
            doing=what,
            attempt=state.attempt_number,
            retry_in_seconds=round(state.upcoming_sleep, 1),
            error=str(error),
        )

    retrying = Retrying(
        retry=retry_if_exception_type(RegistryUnavailable),
        wait=wait_exponential_jitter(multiplier=0.5, max=10),
        stop=stop_after_delay(settings.registry_wait_seconds),
        before_sleep=before_sleep,
        sleep=sleep_unless_stopping,
        reraise=True,
    )
    raise_if_stopping()
    try:
        return retrying(action)
    except RegistryUnavailable as exc:
        raise RegistryUnavailable(
            f"gave up {what} after {settings.registry_wait_seconds:g}s: {exc}. Is the registry running ('civreg "
            "dev up' starts the local one) and is CIVREG_REGISTRY_URL right?"
        ) from exc


def open_codec(settings: Settings, *, publishing: bool = False) -> Codec:
    """The codec for ``settings``; waits for the registry, if there is one (see ``wait_for_registry``).

    ``publishing``: resolve (and, with auto-registration, register) the id of every event type on every
    registration topic now; otherwise only check that the registry answers.
    """
    resolver = open_registry_resolver(settings)
    if resolver is None:
        if not settings.uses_local_broker:
            log.warning(
                "no-schema-registry",
                detail="CIVREG_BOOTSTRAP_SERVERS is set but CIVREG_REGISTRY_URL is not: messages carry this "
                "checkout's local schema ids, which no other system knows",
            )
        return Codec(topic_prefix=settings.topic_prefix)
    if publishing:
        subjects = contract_subjects(settings.topic_prefix)
        pairs = [(subject.event_type, subject.topic) for subject in subjects if subject.event_type in EVENT_TYPES]
        wait_for_registry(settings, lambda: resolver.prepare(pairs), f"resolving schema ids at {resolver.url}")
    else:
        wait_for_registry(settings, resolver.check_reachable, f"reaching the schema registry at {resolver.url}")
    return Codec(resolver, topic_prefix=settings.topic_prefix)


def open_acknowledgement_codec(settings: Settings) -> AcknowledgementCodec:
    """The acknowledgement codec for ``settings``: ActionTaken's registry id when there is a registry (registered
    under its subject on the acknowledgement topic, as every schema is), the local id without one.

    Nothing waits here: the id is resolved when the first acknowledgement is sent, and an acknowledgement that
    cannot be encoded yet stays owed (``consumers.operations.acknowledgements``).
    """
    resolver = open_registry_resolver(settings)
    if resolver is None:
        return AcknowledgementCodec()
    return AcknowledgementCodec(RegistryAcknowledgementSchema(resolver, acknowledgement_topic(settings.topic_prefix)))
