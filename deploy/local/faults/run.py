"""One scenario under way: its settings, codec, events, service processes and notes, and counting at its end."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from civreg.settings import Settings
from deploy.local.faults.counting import compare, expected_ids, wait_until_applied
from deploy.local.faults.lab import Lab
from deploy.local.faults.processes import ConsumerProcess, RouterProcess, ServiceProcess
from deploy.local.faults.producing import Producing, death_register_events
from deploy.local.faults.results import FaultResult
from schemas.codec import Codec, LocalSchemaCatalogue
from schemas.models import Event


class Supervisor(threading.Thread):
    """Restarts a service that exits on its own, as a deployment's process supervisor would (``Restart=always``):
    a router whose transactions time out while two brokers of three are down exits with an error and comes back.
    Each restart is counted and reported in the scenario's notes."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.services: list[ServiceProcess] = []
        self.restarts: list[tuple[str, int | None]] = []
        self._stopped = threading.Event()

    def watch(self, service: ServiceProcess) -> None:
        self.services.append(service)

    def run(self) -> None:
        while not self._stopped.wait(1.0):
            for service in list(self.services):
                code = service.exit_code
                if code is not None and not self._stopped.is_set():
                    self.restarts.append((service.arguments[0], code))
                    service.start()

    def stop(self) -> None:
        self._stopped.set()
        if self.is_alive():
            self.join(10)


@dataclass
class ScenarioRun:
    """What every scenario sets up the same way, so each scenario's module holds only its fault and its checks."""

    name: str
    lab: Lab
    settings: Settings
    codec: Codec
    events: list[Event]
    notes: list[str] = field(default_factory=list)
    services: list[ServiceProcess] = field(default_factory=list)
    """Consumers and other services, stopped by ``settle`` before the routers."""
    routers: list[ServiceProcess] = field(default_factory=list)
    supervisor: Supervisor = field(default_factory=Supervisor)

    @classmethod
    def begin(
        cls,
        lab: Lab,
        name: str,
        base: Settings,
        *,
        events: int,
        seed: int,
        profile: str = "local",
        route: bool = True,
        router_update: dict[str, Any] | None = None,
    ) -> ScenarioRun:
        """Topics of its own on ``base``'s broker, ``events`` death-register events (seeded by the suite's seed plus
        ``seed``) and local schema ids, so the services run without a registry too. With ``route`` (the topology
        the services run in) a supervised ``civreg route`` process writes the department's topic from the
        registration topics, with ``router_update`` on the scenario's settings (e.g. the registry through a
        proxy)."""
        settings = lab.scenario(base, name, profile=profile)
        events_ = death_register_events(events, lab.options.seed + seed)
        run = cls(name, lab, settings, Codec(LocalSchemaCatalogue()), events_)
        if route:
            router = run.router(settings=settings.model_copy(update=router_update or {}))
            router.start()
            run.supervisor.watch(router)
            run.supervisor.start()
        return run

    def log_path(self, log: str) -> Any:
        return self.lab.workdir / self.name / f"{log}.log"

    def consumer(
        self, log: str = "consumer", *, settings: Settings | None = None, metrics_port: int = 0
    ) -> ConsumerProcess:
        """A department consumer process (not started yet), its log under the scenario's directory; ``finish``
        stops it."""
        process = ConsumerProcess(settings or self.settings, self.log_path(log), metrics_port=metrics_port)
        self.services.append(process)
        return process

    def router(self, log: str = "router", *, settings: Settings | None = None) -> RouterProcess:
        """A router process (not started yet); ``finish`` stops it after the consumers."""
        process = RouterProcess(settings or self.settings, self.log_path(log))
        self.routers.append(process)
        return process

    def producing(self, **options: Any) -> Producing:
        """The suite's producer for this run's events (not started yet); ``options`` as ``Producing`` takes them."""
        return Producing(self.settings, self.codec, self.events, **options)

    def finish(self, producing: Producing, *, fault_ended: float, faults: int, timeout: float = 600.0) -> FaultResult:
        """Wait for the producer and the services to finish, stop them cleanly, and count."""
        producing.join(timeout)
        if producing.error is not None:
            error = producing.error
            self.notes.append(f"FAILED: the producer stopped: {type(error).__name__}: {error}")
        return self.settle(producing.events, producing.ids_acknowledged, fault_ended=fault_ended, faults=faults)

    def settle(
        self,
        events: Sequence[Event],
        acknowledged: Callable[[], set[str]],
        *,
        fault_ended: float,
        faults: int,
        timeout: float = 600.0,
    ) -> FaultResult:
        """Wait until the store holds every expected event, stop every service cleanly, and count: ``events`` and
        ``acknowledged`` (what the broker, or the outbox, confirmed) against the store and a clean pass."""
        expected = expected_ids(events, acknowledged())
        if not wait_until_applied(self.settings, expected, timeout):
            self.notes.append("FAILED: the store did not catch up in time")
        recovery = time.monotonic() - fault_ended
        self.supervisor.stop()
        for service in [*self.services, *self.routers]:
            code = service.stop()
            if code not in (0, None):
                self.notes.append(f"FAILED: a {service.arguments[0]} process exited with code {code}")
        if self.supervisor.restarts:
            codes = ", ".join(sorted({str(code) for _, code in self.supervisor.restarts}))
            self.notes.append(f"the supervisor restarted {len(self.supervisor.restarts)} exited process(es): {codes}")
        return compare(
            self.name,
            self.settings,
            events,
            acknowledged(),
            codec=self.codec,
            workdir=self.lab.workdir,
            recovery_seconds=recovery,
            faults=faults,
            notes=self.notes,
        )
