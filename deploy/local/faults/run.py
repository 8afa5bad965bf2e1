"""One scenario under way: its settings, codec, events, consumer processes and notes, and counting at its end."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from civreg.settings import Settings
from deploy.local.faults.counting import compare, expected_ids, wait_until_applied
from deploy.local.faults.lab import Lab
from deploy.local.faults.processes import ConsumerProcess
from deploy.local.faults.producing import Producing, death_register_events
from deploy.local.faults.results import FaultResult
from schemas.codec import Codec, LocalSchemaCatalogue
from schemas.models import Event


@dataclass
class ScenarioRun:
    """What every scenario sets up the same way, so each scenario's module holds only its fault and its checks."""

    name: str
    lab: Lab
    settings: Settings
    codec: Codec
    events: list[Event]
    notes: list[str] = field(default_factory=list)
    consumers: list[ConsumerProcess] = field(default_factory=list)

    @classmethod
    def begin(
        cls, lab: Lab, name: str, base: Settings, *, events: int, seed: int, profile: str = "local"
    ) -> ScenarioRun:
        """Topics of its own on ``base``'s broker, ``events`` death-register events (seeded by the suite's seed plus
        ``seed``) and local schema ids, so the consumers run without a registry too."""
        settings = lab.scenario(base, name, profile=profile)
        events_ = death_register_events(events, lab.options.seed + seed)
        return cls(name, lab, settings, Codec(LocalSchemaCatalogue()), events_)

    def consumer(
        self, log: str = "consumer", *, settings: Settings | None = None, metrics_port: int = 0
    ) -> ConsumerProcess:
        """A department consumer process (not started yet), its log under the scenario's directory; ``finish``
        stops it."""
        path = self.lab.workdir / self.name / f"{log}.log"
        process = ConsumerProcess(settings or self.settings, path, metrics_port=metrics_port)
        self.consumers.append(process)
        return process

    def producing(self, **options: Any) -> Producing:
        """The suite's producer for this run's events (not started yet); ``options`` as ``Producing`` takes them."""
        return Producing(self.settings, self.codec, self.events, **options)

    def finish(self, producing: Producing, *, fault_ended: float, faults: int, timeout: float = 600.0) -> FaultResult:
        """Wait for the producer and the consumers to finish, stop them cleanly, and count."""
        producing.join(timeout)
        if producing.error is not None:
            error = producing.error
            self.notes.append(f"FAILED: the producer stopped: {type(error).__name__}: {error}")
        expected = expected_ids(producing.events, producing.ids_acknowledged())
        if not wait_until_applied(self.settings, expected, timeout):
            self.notes.append("FAILED: the store did not catch up in time")
        recovery = time.monotonic() - fault_ended
        for consumer in self.consumers:
            code = consumer.stop()
            if code not in (0, None):
                self.notes.append(f"FAILED: a consumer exited with code {code}")
        return compare(
            self.name,
            self.settings,
            producing,
            self.codec,
            self.lab.workdir,
            recovery_seconds=recovery,
            faults=faults,
            notes=self.notes,
        )
