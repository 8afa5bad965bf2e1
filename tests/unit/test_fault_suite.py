"""The fault suite's pure parts: its sizes, its scenario list and the supervisor that restarts an exited service."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from pathlib import Path

from civreg.settings import load_settings
from deploy.local.faults import SCENARIOS, FaultOptions
from deploy.local.faults.processes import ServiceProcess
from deploy.local.faults.registry_outage import outage_log_checks as registry_outage_checks
from deploy.local.faults.results import SIZES, FaultResult
from deploy.local.faults.run import Supervisor

SIZED = ["events", "crash_events", "crash_kills", "router_events", "router_kills", "outbox_rows", "relay_kills"]


def test_every_size_runs_fewer_events_and_kills_than_the_one_above_it_and_kills_several_times() -> None:
    full, quick, ci = (FaultOptions(size=size) for size in ("full", "quick", "ci"))
    assert SIZES == ("full", "quick", "ci")
    for name in SIZED:
        assert getattr(full, name) >= getattr(quick, name) >= getattr(ci, name) > 0, name
    for options in (full, quick, ci):
        assert min(options.crash_kills, options.router_kills, options.relay_kills) >= 3
        assert options.registry_outage_seconds * 1000 > options.max_poll_interval_ms
    assert (full.router_kills, full.relay_kills, full.crash_kills) == (20, 20, 20)


def test_the_suite_runs_the_router_and_relay_crash_scenarios() -> None:
    assert {"router-crash", "relay-crash"} <= set(SCENARIOS)


def test_a_result_with_a_doubled_delivery_or_a_failed_check_is_not_ok() -> None:
    clean = FaultResult("router-crash", 10, 10, 30, 0, 0, 1.0, faults=3)
    assert clean.ok
    assert not dataclasses.replace(clean, doubled=1).ok
    assert not dataclasses.replace(clean, lost=1).ok
    assert not dataclasses.replace(clean, notes=["FAILED: the restarted router exited with code 1"]).ok


def test_the_registry_outage_fails_unless_both_services_waited_it_out_without_dead_letters() -> None:
    waited = '{"event": "schema-registry-unavailable"}\n{"event": "schema-registry-back"}\n'
    consumer = '{"event": "assigned"}\n' + waited + '{"event": "stopping"}\n{"event": "revoked"}\n'
    assert registry_outage_checks(consumer, waited, 0, 0) == []
    unrecovered = registry_outage_checks(consumer, '{"event": "schema-registry-unavailable"}\n', 0, 0)
    assert [note for note in unrecovered if "router's log" in note]
    lettered = registry_outage_checks(consumer, waited + '{"event": "dead-lettered"}\n', 0, 0)
    assert [note for note in lettered if "router dead-lettered" in note]
    assert registry_outage_checks('{"event": "revoked"}\n' + consumer, waited, 0, 0)
    assert registry_outage_checks(consumer, waited, 0, 1)  # a delivery doubled on the department topic
    assert all(note.startswith("FAILED") for note in registry_outage_checks(consumer, "", 1, 1))


class _Exiting(ServiceProcess):
    """A service that exits at once with code 3 (a real process: ``python -c``)."""

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
        self.starts += 1


def test_the_supervisor_restarts_a_service_that_exits_on_its_own_and_reports_it(tmp_path: Path) -> None:
    service = _Exiting(["route"], load_settings(), tmp_path / "service.log")
    service.start()
    supervisor = Supervisor()
    supervisor.watch(service)
    supervisor.start()
    deadline = time.monotonic() + 60
    while service.starts < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    supervisor.stop()
    assert service.starts >= 2
    assert supervisor.restarts and supervisor.restarts[0] == ("route", 3)
