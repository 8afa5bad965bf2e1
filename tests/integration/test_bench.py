"""``civreg bench`` suites at tiny size on the session's real broker and registry: every figure comes from a run.

No timing is asserted (the figures depend on the machine); what is checked is that each pass really delivered
every event (counts equal the events), that every rate is positive, that each target's figure is the one the
timed cases give, and that the JSON and the chart are written.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from civreg.settings import Settings
from deploy.local.bench.harness import BenchOptions
from deploy.local.bench.suites import run_suites


@pytest.fixture
def bench_settings(kafka_settings: Settings, registry_url: str) -> Settings:
    return kafka_settings.model_copy(update={"registry_url": registry_url})


def test_the_publish_suite_reports_figures_from_real_runs(bench_settings: Settings, tmp_path: Path) -> None:
    options = BenchOptions(events=10, rounds=1, publish_events=40, out_dir=tmp_path)
    out = io.StringIO()
    written = run_suites(bench_settings, ["publish"], options, Console(file=out, width=200))

    assert tmp_path / "publish.json" in written
    data = json.loads((tmp_path / "publish.json").read_text())
    assert data["context"]["events"] == 40
    assert all(rate > 0 for rate in data["context"]["events per second"].values())
    stages = data["context"]["civreg publish stages, µs per event"]
    timed = ("parse (read + orjson)", "validation (pydantic)", "encode (Avro)", "Kafka produce (queue + reports)")
    assert all(stages[stage] > 0 for stage in timed)  # timed in the pass itself, so never a constant or zero
    assert stages["validating pass (wall clock)"] > 0
    parts = sum(us for stage, us in stages.items() if stage not in ("total", "validating pass (wall clock)"))
    assert parts == pytest.approx(stages["total"], abs=1.0)  # the stages and "other" account for the whole pass
    assert "where the time goes" in out.getvalue()
    cases = {case["name"]: case for case in data["cases"]}
    assert set(cases) == {
        "raw produce of encoded bytes (ceiling)",
        "Publisher.publish (validated events)",
        "civreg publish FILE",
    }
    assert all(case["ours_us"] > 0 for case in cases.values())
    command = cases["civreg publish FILE"]
    targets = {target["name"]: target for target in data["targets"]}
    ceiling = cases["raw produce of encoded bytes (ceiling)"]["ours_us"]
    assert targets["civreg publish ÷ raw produce ceiling"]["figure"] == pytest.approx(ceiling / command["ours_us"])
    assert targets["civreg publish ÷ stock confluent-kafka"]["figure"] == pytest.approx(command["ratio"])
    assert {target["goal"] for target in targets.values()} == {0.25, 1.3}
    assert all(isinstance(target["met"], bool) for target in targets.values())

    chart = tmp_path / "targets.png"
    assert chart in written and chart.read_bytes().startswith(b"\x89PNG")
    assert "Every target" in out.getvalue()
