"""The fault suite: real processes under real faults, counted from the outside.

Every scenario runs against real processes the suite starts itself (broker JVMs on free ports in a temporary
directory, a three-node KRaft cluster for broker loss, ``python -m civreg consume``, ``route`` and ``relay``
processes, its own PostgreSQL server, a TCP proxy in front of a schema registry), injects one kind of fault, and then
counts:

- **acknowledged**: event ids the broker acknowledged to the suite's own producer (its delivery reports);
- **applied**: acknowledged events that the department's store holds an outcome for, read from its tables directly;
- **lost**: acknowledged events the store does not hold, plus department-table rows a clean pass has and it lacks;
- **doubled**: department-table rows the store has beyond those of one clean pass over the same topic (row for row,
  every department table, timestamps excluded);
- **recovery**: seconds from the end of the last fault until the store holds every acknowledged event.

The relay crash counts the outbox's committed rows as acknowledged; the router crash counts each department topic
and the disclosure ledger (read committed, to the end of each partition) against the acknowledged events its
agreement allows. Nothing is taken from the code under test reporting on itself. Scenarios are plain functions in
``SCENARIOS`` (name -> function).

Run: ``make faults`` (full sizes), ``--quick`` (reduced), ``--ci`` (smallest), ``--scenario NAME`` to pick.
Writes ``bench-results/faults.json``. Dev tool only: nothing in producers, consumers or schemas imports it.

Modules: ``lab`` (the suite's own brokers, cluster, PostgreSQL and registry), ``producing`` (its producer),
``processes`` (consumer, router and relay processes), ``counting`` (stores read directly, compared with a clean
pass), ``reading`` (a topic read committed to its end), ``run`` (what every scenario sets up and counts the same way,
with the router and its supervisor), one module per scenario (``broker_loss``, ``consumer_crash``,
``database_outage``, ``rebalance``, ``registry_outage`` with ``tcp_proxy``, ``relay_crash``, ``router_crash``),
``results`` (the row, sizes and table), ``suite`` (``SCENARIOS``, ``run_suite``) and ``cli``.
"""

from deploy.local.faults.cli import main
from deploy.local.faults.lab import Lab
from deploy.local.faults.results import FaultOptions, FaultResult
from deploy.local.faults.suite import SCENARIOS, run_suite

__all__ = ["SCENARIOS", "FaultOptions", "FaultResult", "Lab", "main", "run_suite"]
