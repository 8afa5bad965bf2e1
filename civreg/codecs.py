"""The codec every service uses, built from Settings: where schema ids come from is decided here, once.

In order:

1. ``CIVREG_REGISTRY_URL`` is set: that registry (Confluent Schema Registry, Apicurio's ``/apis/ccompat/v7``,
   Karapace), with basic auth when ``CIVREG_REGISTRY_USERNAME`` / ``CIVREG_REGISTRY_PASSWORD`` are set;
2. the local broker is in use and ``civreg dev up`` runs the local registry: the local registry (the dev stack
   is the real thing, registry included);
3. otherwise the local catalogue (ids 1..6 of this checkout): unit tests, and a bare broker without a registry.
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
from deploy.local_registry import LocalRegistry
from deploy.schema_policy import load_policy
from schemas.codec import Codec
from schemas.registry import RegistrySchemaResolver, RegistryUnavailable, contract_subjects, registry_client

__all__ = ["open_codec", "open_registry_resolver", "registry_url_for", "wait_for_registry"]

log = get_logger(__name__)
T = TypeVar("T")


def registry_url_for(settings: Settings) -> str | None:
    """The registry clients of ``settings`` use, or None for the local catalogue (see the module's rules)."""
    if settings.registry_url:
        return settings.registry_url
    if settings.uses_local_broker and LocalRegistry(settings).is_running():
        return settings.local_registry_url
    return None


def open_registry_resolver(settings: Settings, url: str | None = None) -> RegistrySchemaResolver | None:
    """A ``RegistrySchemaResolver`` for ``url`` (default: ``registry_url_for``), or None without a registry."""
    url = url or registry_url_for(settings)
    if url is None:
        return None
    policy = load_policy()
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
        pairs = [(subject.event_type, subject.topic) for subject in contract_subjects(settings.topic_prefix)]
        wait_for_registry(settings, lambda: resolver.prepare(pairs), f"resolving schema ids at {resolver.url}")
    else:
        wait_for_registry(settings, resolver.check_reachable, f"reaching the schema registry at {resolver.url}")
    return Codec(resolver, topic_prefix=settings.topic_prefix)
