"""librdkafka configuration built once from Settings, so producers, consumers and admin agree."""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from civreg.logs import KAFKA_CLIENT_LOGGER
from civreg.settings import Settings

__all__ = [
    "admin_config",
    "client_id",
    "consumer_config",
    "department_consumer_config",
    "error_text",
    "producer_config",
    "quiet_admin_config",
]


def client_id(settings: Settings, role: str) -> str:
    """``CIVREG_CLIENT_ID`` plus the client's role (``civreg-ack-tax``): brokers' quotas and logs see who is who."""
    return f"{settings.client_id}-{role}"


def _common(settings: Settings, role: str, overrides: dict[str, Any]) -> dict[str, Any]:
    if "client.id" in overrides:  # one place names clients, so CIVREG_CLIENT_ID is never bypassed
        raise TypeError("pass role=... instead of a client.id override")
    config: dict[str, Any] = {
        "bootstrap.servers": settings.effective_bootstrap_servers,
        "client.id": client_id(settings, role),
        "security.protocol": settings.security_protocol,
        # librdkafka logs through Python logging (civreg.logs formats it) instead of raw lines on stderr.
        "logger": logging.getLogger(KAFKA_CLIENT_LOGGER),
    }
    if settings.ssl_ca_location is not None:
        config["ssl.ca.location"] = str(settings.ssl_ca_location)
    if settings.sasl_username is not None:
        config["sasl.mechanism"] = settings.sasl_mechanism
        config["sasl.username"] = settings.sasl_username
        password = settings.resolved_sasl_password()
        if password is not None:
            config["sasl.password"] = password.get_secret_value()
    return config


def admin_config(settings: Settings, role: str = "admin") -> dict[str, Any]:
    """Config for AdminClient."""
    return _common(settings, role, {})


def producer_config(settings: Settings, role: str = "producer", **overrides: Any) -> dict[str, Any]:
    """Idempotent producer, acks=all: no registration is lost or duplicated by a retry.

    ``murmur2_random`` is the Java client's partitioner, so every client puts one entry on the same partition.
    """
    config = _common(settings, role, overrides)
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


def consumer_config(settings: Settings, group_id: str, role: str = "consumer", **overrides: Any) -> dict[str, Any]:
    """Consumer that never auto-commits or auto-stores: the runtime commits after its database commit."""
    config = _common(settings, role, overrides)
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


def department_consumer_config(
    settings: Settings, group_id: str, role: str = "consumer", **overrides: Any
) -> dict[str, Any]:
    """``consumer_config`` plus static group membership when ``settings.group_instance_id`` is set.

    Only the long-running department consumer is a static member, so its restart gets its partitions back at
    once; short-lived readers (trace, tools) never are: a static member that leaves keeps its partitions until
    the session timeout.
    """
    config = consumer_config(settings, group_id, role=role, **overrides)
    if settings.group_instance_id:
        config["group.instance.id"] = settings.group_instance_id
    return config


def quiet_admin_config(settings: Settings, errors: list[str]) -> dict[str, Any]:
    """Admin config whose connection errors land in ``errors`` instead of librdkafka's stderr noise.

    Used while polling a broker that is still starting, and by one-shot admin commands whose failure is
    reported as one line.
    """

    def on_error(err: Any) -> None:
        errors.append(error_text(err))

    config = admin_config(settings)
    config.update({"log_level": 0, "error_cb": on_error, "reconnect.backoff.max.ms": 500})
    return config


def error_text(err: Any) -> str:
    """The readable part of a librdkafka error (``Connect to ipv4#127.0.0.1:1 failed: Connection refused``)."""
    if isinstance(err, KafkaException) and err.args:
        err = err.args[0]
    text = err.str() if isinstance(err, KafkaError) else str(err)
    return str(text)
