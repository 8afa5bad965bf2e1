"""librdkafka configuration built once from Settings, so producers, consumers and admin agree."""

from __future__ import annotations

import logging
from typing import Any

from civreg.logs import KAFKA_CLIENT_LOGGER
from civreg.settings import Settings

__all__ = ["admin_config", "consumer_config", "department_consumer_config", "producer_config"]


def _common(settings: Settings, client_suffix: str) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap.servers": settings.effective_bootstrap_servers,
        "client.id": f"{settings.client_id}-{client_suffix}",
        "security.protocol": settings.security_protocol,
        # librdkafka logs through Python logging (civreg.logs formats it) instead of raw lines on stderr.
        "logger": logging.getLogger(KAFKA_CLIENT_LOGGER),
    }
    if settings.sasl_username is not None:
        config["sasl.mechanism"] = settings.sasl_mechanism
        config["sasl.username"] = settings.sasl_username
        if settings.sasl_password is not None:
            config["sasl.password"] = settings.sasl_password.get_secret_value()
    return config


def admin_config(settings: Settings) -> dict[str, Any]:
    """Config for AdminClient."""
    return _common(settings, "admin")


def producer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """Idempotent producer, acks=all: no registration is lost or duplicated by a retry.

    ``murmur2_random`` is the Java client's partitioner, so every client puts one entry on the same partition.
    """
    config = _common(settings, "producer")
    config.update(
        {
            "enable.idempotence": True,
            "acks": "all",
            "partitioner": "murmur2_random",
            "linger.ms": 5,
            "compression.type": "zstd",
        }
    )
    config.update(overrides)
    return config


def consumer_config(settings: Settings, group_id: str, **overrides: Any) -> dict[str, Any]:
    """Consumer that never auto-commits or auto-stores: the runtime commits after its database commit."""
    config = _common(settings, "consumer")
    config.update(
        {
            "group.id": group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "partition.assignment.strategy": "cooperative-sticky",
            "session.timeout.ms": settings.session_timeout_ms,
            "max.poll.interval.ms": settings.max_poll_interval_ms,
        }
    )
    config.update(overrides)
    return config


def department_consumer_config(settings: Settings, group_id: str, **overrides: Any) -> dict[str, Any]:
    """``consumer_config`` plus static group membership when ``settings.group_instance_id`` is set.

    Only the long-running department consumer is a static member, so its restart gets its partitions back at
    once; short-lived readers (trace, tools) never are: a static member that leaves keeps its partitions until
    the session timeout.
    """
    config = consumer_config(settings, group_id, **overrides)
    if settings.group_instance_id:
        config["group.instance.id"] = settings.group_instance_id
    return config
