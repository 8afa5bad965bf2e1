"""Shared core of the civil registration notification bus: settings, logging, Kafka client config, metrics, codec.

The CLI (``civreg.cli``, ``civreg.commands``) lives here too but sits on top: nothing in the core imports it.
"""

__all__: list[str] = []
