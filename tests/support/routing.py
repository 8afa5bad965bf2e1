"""Run the router in-process until caught up: department consumers read only what it wrote to their topics."""

from __future__ import annotations

from civreg.settings import Settings
from consumers.routing.router import Router, RouterReport


def route(settings: Settings) -> RouterReport:
    """Route every registration event published so far to the department topics (and the ledger)."""
    return Router(settings, poll_timeout=0.1).run(until_caught_up=True)
