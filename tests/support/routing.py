"""Run the router in-process until caught up: department consumers read only what it wrote to their topics.

Every test that runs a department against published registrations routes first (``route``), or calls this
module's ``run_department``, which routes and then runs the real one: the topology the services run in.
"""

from __future__ import annotations

from typing import Any

from civreg.settings import Settings
from consumers.operations import running
from consumers.routing.router import Router, RouterReport
from consumers.runtime import BatchReport

__all__ = ["route", "run_department"]


def route(settings: Settings) -> RouterReport:
    """Route every registration event published so far to the department topics (and the ledger)."""
    return Router(settings, poll_timeout=0.1, check_interval=0.2).run(until_caught_up=True)


def run_department(settings: Settings, department: Any, **options: Any) -> BatchReport:
    """``consumers.operations.running.run_department`` after routing everything published so far."""
    route(settings)
    return running.run_department(settings, department, **options)
