"""Shared core of the civil registration notification bus: settings, logging, Kafka client config, CLI."""

__all__: list[str] = []
