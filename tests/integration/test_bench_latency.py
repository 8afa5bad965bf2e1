"""``civreg bench latency`` at tiny size on the real broker, registry and both store engines: the router and the six
department consumers really run as processes, and every figure comes from what their stores recorded.

No timing is asserted: what is checked is that every measured event reached every department entitled to it (one
latency sample per entitled (event, department) pair, read from that department's store), that the overall rows
are built from those samples, that the target's figure is the overall p99, and that JSON and chart are written.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from rich.console import Console

from civreg.settings import Settings
from consumers.departments import DEPARTMENTS
from deploy.local.bench.harness import BenchOptions
from deploy.local.bench.latency import ALL, POSTGRES, PUBLISHER, ProcessCpu, cpu_bound, percentiles
from deploy.local.bench.suites import run_suites


def test_percentiles_of_known_samples() -> None:
    row = percentiles([i / 1000 for i in range(1, 101)])  # 1 ms .. 100 ms
    assert row.samples == 100
    assert row.p50 == pytest.approx(50.5)
    assert row.p99 == pytest.approx(99.01)
    assert row.max == pytest.approx(100.0)
    assert percentiles([]).samples == 0


def test_the_cpu_bound_is_the_sum_of_cpu_per_offered_event_and_names_the_limit() -> None:
    # 2 ms per event in the publisher, 4 ms per delivery in a router making 3 deliveries per offered event.
    processes = [ProcessCpu("publisher", 100, 0.2, 1.0, 1.0), ProcessCpu("router", 300, 1.2, 2.0, 3.0)]
    bound = cpu_bound(processes, rate=500, cpus=2)
    assert bound is not None
    assert bound.cpu_seconds_per_offered_event == pytest.approx(0.002 + 0.012)
    assert bound.cores_needed == pytest.approx(0.014 * 500)
    assert bound.machine_rate == pytest.approx(2 / 0.014)
    assert bound.process_rate == pytest.approx(1 / 0.012)  # the router alone needs a core at 83 events/s
    assert bound.highest_rate == bound.process_rate and "router" in bound.bound_by
    assert bound.cores_used == pytest.approx(0.2 + 0.6)
    assert processes[1].share_of_core == pytest.approx(0.6)
    # A process that handled nothing gives no per-event figure, so no bound.
    assert cpu_bound([*processes, ProcessCpu("tax", 0, 0.5, 1.0, 0.5)], rate=500, cpus=2) is None


def test_the_latency_suite_measures_every_service_from_its_store(
    bus_store_settings: Settings, registry_url: str, tmp_path: Path
) -> None:
    settings = bus_store_settings.model_copy(update={"registry_url": registry_url})
    options = BenchOptions(rounds=1, latency_rate=40, latency_seconds=2, out_dir=tmp_path)
    out = io.StringIO()
    written = run_suites(settings, ["latency"], options, Console(file=out, width=200))

    data = json.loads((tmp_path / "latency.json").read_text())
    context = data["context"]
    assert context["events measured"] == 80
    assert context["engine"] == ("sqlite" if settings.postgres_dsn is None else "postgres")
    assert set(context["CPU seconds per service (whole run)"]) == {"router", *DEPARTMENTS}
    assert context["achieved publish rate, events/s"] > 0
    rows = context["latency ms"]
    entitled = context["entitled events per department"]
    assert set(entitled) == set(DEPARTMENTS)
    for name in DEPARTMENTS:
        # Every event the agreement lets through was applied in that department's store, and measured there.
        assert rows[name]["samples"] == entitled[name] > 0, name
        assert 0 < rows[name]["p50"] <= rows[name]["p95"] <= rows[name]["p99"] <= rows[name]["max"], name
    assert rows["every (event, department) pair"]["samples"] == sum(entitled.values())
    # The stages split each pair at the router's record on the department topic, read back from the topic.
    assert rows["stage: send to routed (router produced it)"]["samples"] == sum(entitled.values())
    assert rows["stage: routed to applied (department)"]["samples"] == sum(entitled.values())
    assert rows[ALL]["samples"] == context["events applied by at least one department"]
    assert rows[ALL]["max"] == max(rows[name]["max"] for name in DEPARTMENTS)
    assert rows["publish: send to broker acknowledgement"]["samples"] == 80

    # CPU per process over the measured window, from /proc of each process, and the events each handled in it,
    # counted from the topics and stores: every process of the run did work and handled events in that run.
    engine_processes = {PUBLISHER, "router", *DEPARTMENTS} | ({POSTGRES} if settings.postgres_dsn else set())
    processes = context["CPU per process (measured window)"]
    assert set(processes) == engine_processes
    assert context["cpus"] == os.cpu_count()
    assert processes[PUBLISHER]["events"] == 80  # the measured sends, not the warm-up's
    assert processes["router"]["events"] >= sum(entitled.values())  # one delivery per entitled pair
    for name in DEPARTMENTS:
        assert processes[name]["events"] >= entitled[name], name
        assert processes[name]["per_offered_event"] == pytest.approx(entitled[name] / 80, abs=1e-4), name
    for name, p in processes.items():
        assert p["events"] > 0 and p["cpu_seconds"] > 0 and p["wall_seconds"] > 0, name
        assert p["CPU ms per event"] == pytest.approx(p["cpu_seconds"] * 1000 / p["events"]), name
        assert p["share of a core"] == pytest.approx(p["cpu_seconds"] / p["wall_seconds"], abs=1e-3), name
        assert p["waited_for_core_seconds"] is not None and p["waited_for_core_seconds"] >= 0, name
    bound = context["CPU bound"]
    per_offered = [p["CPU seconds per offered event"] for p in processes.values()]
    assert bound["cpu_seconds_per_offered_event"] == pytest.approx(sum(per_offered))
    assert bound["cores_needed"] == pytest.approx(sum(per_offered) * 40)
    assert bound["cpus"] == os.cpu_count()
    assert bound["highest_rate"] == pytest.approx(min(os.cpu_count() / sum(per_offered), 1 / max(per_offered)))

    (target,) = data["targets"]
    assert target["figure"] == pytest.approx(rows[ALL]["p99"] / 1000)
    assert target["goal"] == 0.25 and target["unit"] == "s" and isinstance(target["met"], bool)
    assert target["note"] == bound["note"] and "not a measured rate" in target["note"]
    printed = out.getvalue()
    assert "all services (last to apply)" in printed and "Every target" in printed
    assert "CPU per process" in printed and "cores needed" in printed
    assert tmp_path / "targets.png" in written
