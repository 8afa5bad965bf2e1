"""``civreg bench latency`` at tiny size on the real broker, registry and both store engines: the router and the six
department consumers really run as processes, and every figure comes from what their stores recorded.

No timing is asserted: what is checked is that every measured event reached every department entitled to it (one
latency sample per entitled (event, department) pair, read from that department's store), that the overall rows
are built from those samples, that the target's figure is the overall p99, and that JSON and chart are written.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from civreg.settings import Settings
from consumers.departments import DEPARTMENTS
from deploy.local.bench.harness import BenchOptions
from deploy.local.bench.latency import ALL, percentiles
from deploy.local.bench.suites import run_suites


def test_percentiles_of_known_samples() -> None:
    row = percentiles([i / 1000 for i in range(1, 101)])  # 1 ms .. 100 ms
    assert row.samples == 100
    assert row.p50 == pytest.approx(50.5)
    assert row.p99 == pytest.approx(99.01)
    assert row.max == pytest.approx(100.0)
    assert percentiles([]).samples == 0


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

    (target,) = data["targets"]
    assert target["figure"] == pytest.approx(rows[ALL]["p99"] / 1000)
    assert target["goal"] == 0.25 and target["unit"] == "s" and isinstance(target["met"], bool)
    printed = out.getvalue()
    assert "all services (last to apply)" in printed and "Every target" in printed
    assert tmp_path / "targets.png" in written
