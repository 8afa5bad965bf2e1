"""structlog set-up: JSON lines to stderr, bound context (event id, department, topic, partition, offset).

Never log names, identifiers, dates of birth or addresses: bind ids and positions only.
"""

from __future__ import annotations

import logging
import sys

import structlog

__all__ = ["KAFKA_CLIENT_LOGGER", "configure_logging", "get_logger"]

KAFKA_CLIENT_LOGGER = "civreg.kafka"
"""librdkafka's own messages arrive on this stdlib logger (see ``civreg.kafka_config``)."""


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is now (test runners swap it), not the stream at configuration time."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _ToStructlog(logging.Handler):
    """Forward stdlib records (librdkafka's) into structlog, so every line has one format."""

    def emit(self, record: logging.LogRecord) -> None:
        get_logger(record.name).log(record.levelno, record.getMessage())


def configure_logging(level: str = "INFO", *, json: bool = True, client_level: str | None = None) -> None:
    """Route structlog (and the stdlib root logger) to stderr as JSON, or as readable text with ``json=False``."""
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    client = logging.getLogger(KAFKA_CLIENT_LOGGER)
    client.handlers[:] = [_ToStructlog()]
    client.propagate = False
    client.setLevel(logging.getLevelNamesMapping()[(client_level or level).upper()])


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """A logger carrying ``component=name``."""
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(component=name)
    return logger
