"""Every scenario by name, and running them: the table and ``faults.json``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence

from rich.console import Console

from deploy.local.faults.broker_loss import broker_loss
from deploy.local.faults.consumer_crash import consumer_crash
from deploy.local.faults.database_outage import database_outage
from deploy.local.faults.lab import Lab
from deploy.local.faults.rebalance import rebalance
from deploy.local.faults.registry_outage import registry_outage
from deploy.local.faults.relay_crash import relay_crash
from deploy.local.faults.results import FaultOptions, FaultResult, results_table
from deploy.local.faults.router_crash import router_crash

Scenario = Callable[[Lab], FaultResult]

SCENARIOS: dict[str, Scenario] = {
    "broker-loss": broker_loss,
    "consumer-crash": consumer_crash,
    "database-outage": database_outage,
    "rebalance": rebalance,
    "registry-outage": registry_outage,
    "relay-crash": relay_crash,
    "router-crash": router_crash,
}
"""Every scenario by name, run in this order: a function taking the ``Lab`` and returning a ``FaultResult`` counted
from acknowledgements (or the outbox's committed rows) against stores and topics."""


def run_suite(
    options: FaultOptions, names: Sequence[str] | None = None, console: Console | None = None
) -> list[FaultResult]:
    """Run the scenarios (default: all), print the table and write ``faults.json``; returns the results."""
    console = console or Console()
    chosen = list(names or SCENARIOS)
    unknown = [name for name in chosen if name not in SCENARIOS]
    if unknown:
        raise KeyError(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    lab = Lab(options, console)
    results: list[FaultResult] = []
    try:
        for name in chosen:
            started = time.monotonic()
            console.print(f"[bold]{name}[/]: running", highlight=False)
            try:
                result = SCENARIOS[name](lab)
            except Exception as exc:
                result = FaultResult(name, 0, 0, 0, 0, 0, 0.0, notes=[f"FAILED: {type(exc).__name__}: {exc}"])
            results.append(result)
            console.print(
                f"[bold]{name}[/]: {'ok' if result.ok else '[red]FAILED[/]'} in {time.monotonic() - started:.0f}s; "
                + "; ".join(result.notes),
                highlight=False,
            )
    finally:
        lab.close()
    console.print(results_table(results))
    options.out_dir.mkdir(parents=True, exist_ok=True)
    path = options.out_dir / "faults.json"
    path.write_text(json.dumps([r.as_json() for r in results], indent=2) + "\n", encoding="utf-8")
    console.print(f"wrote {path}", highlight=False)
    return results
