"""Scenario (1), relay crash: a register office's outbox filled while ``civreg relay`` is SIGKILLed, many times.

The office's transactions (some rolled back, as a failed registration is) add rows to a SQLite outbox while the relay
publishes them and is killed at random moments (publishing, waiting for the broker, or marking rows sent). A row
acknowledged by the broker but not yet marked is published again on restart: that is "published twice", expected
and reported. Through the router, the department must apply every committed row exactly once ("doubled" is a row
applied twice, by a row-for-row comparison with a clean pass), and no rolled-back row at all.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path

from deploy.local.faults.counting import grows, read_store, wait_for
from deploy.local.faults.lab import Lab
from deploy.local.faults.processes import RelayProcess
from deploy.local.faults.producing import death_register_events
from deploy.local.faults.reading import read_topic
from deploy.local.faults.results import FaultResult
from deploy.local.faults.run import ScenarioRun
from producers.outbox import Outbox
from schemas.models import Event
from schemas.topics import Register, registration_topic

NAME = "relay-crash"


class _RolledBack(Exception):
    """Raised inside an office transaction to roll it back."""


class OfficeWriting(threading.Thread):
    """The register office's system: its events added to the outbox in transactions, in order; after every tenth,
    a transaction of other registrations that fails and is rolled back (none of those may ever be published)."""

    def __init__(self, outbox: str, events: list[Event], failing: list[Event], *, chunk: int, pause: float) -> None:
        super().__init__(daemon=True)
        self.outbox, self.events, self.failing, self.chunk, self.pause = outbox, events, failing, chunk, pause
        self.rolled_back: set[str] = set()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with Outbox.open(self.outbox) as box:
                for number, start in enumerate(range(0, len(self.events), self.chunk)):
                    with box.transaction() as tx:
                        for event in self.events[start : start + self.chunk]:
                            box.add(tx, event)
                    if number % 10 == 9 and self.failing:
                        failing, self.failing = self.failing[:5], self.failing[5:]
                        try:
                            with box.transaction() as tx:
                                for event in failing:
                                    box.add(tx, event)
                                raise _RolledBack
                        except _RolledBack:
                            self.rolled_back |= {str(event.event_id) for event in failing}
                    time.sleep(self.pause)
        except BaseException as exc:
            self.error = exc


def _outbox_rows(path: str) -> tuple[set[str], int]:
    """(event ids of every committed row, rows not yet sent), read from the table directly."""
    if not Path(path).exists():
        return set(), 0
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        rows = connection.execute("SELECT event_id, sent_at FROM civreg_outbox").fetchall()
    except sqlite3.OperationalError:  # the table is not there yet
        return set(), 0
    finally:
        connection.close()
    return {str(event_id) for event_id, _ in rows}, sum(1 for _, sent in rows if sent is None)


def _sent(path: str) -> int:
    committed, unsent = _outbox_rows(path)
    return len(committed) - unsent


def relay_crash(lab: Lab) -> FaultResult:
    """The relay SIGKILLed at random moments while the office fills the outbox; then restarted for good."""
    run = ScenarioRun.begin(lab, NAME, lab.broker(), events=lab.options.outbox_rows, seed=6)
    outbox = str(lab.workdir / NAME / "outbox.sqlite3")
    consumer = run.consumer()
    consumer.start()
    kills = lab.options.relay_kills
    rng = random.Random(lab.options.seed + 6)
    chunk = 50
    others = death_register_events(len(run.events) // 10, lab.options.seed + 60)
    failing = [event for event in others if event.event_type == "DeathRegistered"]
    pause = kills * 3.0 / max(len(run.events) // chunk, 1)
    office = OfficeWriting(outbox, run.events, failing, chunk=chunk, pause=pause)
    relay = RelayProcess(run.settings, run.log_path("relay"), outbox)
    office.start()
    publishing_at_kill = 0
    for _ in range(kills):
        progressed = grows(lambda: _sent(outbox))
        relay.start()
        # A random moment once it is relaying: somewhere in a batch (publishing, waiting, or marking).
        if wait_for(progressed, 60, step=0.02):
            publishing_at_kill += 1
        time.sleep(rng.uniform(0.0, 0.3))
        if not relay.alive:
            run.notes.append(f"FAILED: the relay exited on its own with code {relay.exit_code}")
        relay.kill()
    fault_ended = time.monotonic()
    relay.start()  # for good, as deployed
    run.services.append(relay)  # stopped cleanly by ``settle``
    office.join(600)
    if office.error is not None:
        run.notes.append(f"FAILED: the office's writing stopped: {type(office.error).__name__}: {office.error}")
    if not wait_for(lambda: _outbox_rows(outbox)[1] == 0, 600):
        run.notes.append("FAILED: the relay left rows unsent")
    committed, _ = _outbox_rows(outbox)
    result = run.settle(run.events, lambda: committed, fault_ended=fault_ended, faults=kills)

    published = Counter(
        dict(headers).get("event_id", b"").decode()
        for _, _, headers in read_topic(run.settings, registration_topic(Register.DEATH, run.settings.topic_prefix))
    )
    if committed - set(published):
        result.notes.append(f"FAILED: {len(committed - set(published))} committed rows never published")
    leaked = office.rolled_back & (set(published) | read_store(run.settings).outcome_ids)
    if leaked:
        result.notes.append(f"FAILED: {len(leaked)} rolled-back rows were published or applied")
    twice = sum(n - 1 for n in published.values() if n > 1)
    result.notes.append(
        f"acknowledged = committed outbox rows ({len(office.rolled_back)} rolled back); {publishing_at_kill} of "
        f"{kills} kills while rows were being marked sent; {twice} rows published twice, applied once"
    )
    return result
