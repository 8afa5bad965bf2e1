"""What a running service checks on the cluster before it starts: that its topics exist.

Core, not deploy tooling: a consumer must say "run 'civreg topics apply'" in one line instead of dying later on the
Kafka client's own exception, and consumers may not import ``deploy`` (the import contracts in pyproject.toml).
"""

from __future__ import annotations

from collections.abc import Sequence

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from civreg.errors import CivregError, MissingTopics
from civreg.kafka_config import error_text, quiet_admin_config
from civreg.settings import Settings

__all__ = ["ClusterUnreachable", "require_topics"]


class ClusterUnreachable(CivregError, RuntimeError):
    """The bootstrap servers did not answer; the message names them and the client's reason."""


def require_topics(settings: Settings, topics: Sequence[str], *, timeout: float = 10.0) -> None:
    """Raise ``MissingTopics`` (one line: what to run, which prefix) unless every one of ``topics`` exists."""
    errors: list[str] = []
    admin = AdminClient(quiet_admin_config(settings, errors))
    try:
        existing = admin.list_topics(timeout=timeout).topics
    except KafkaException as exc:
        detail = errors[0] if errors else error_text(exc)
        raise ClusterUnreachable(f"cannot reach Kafka at {settings.effective_bootstrap_servers}: {detail}") from exc
    missing = [name for name in topics if name not in existing or existing[name].error is not None]
    if missing:
        raise MissingTopics(missing, settings.topic_prefix)
