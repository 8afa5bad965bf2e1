"""``civreg bench consumer`` at tiny size on the real broker, registry and PostgreSQL: every figure comes from a run
(message counts equal the events published, rates above zero), its targets go through the shared targets table,
JSON and PNG written."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console

from civreg.settings import Settings
from deploy.local.bench.consumer import ConsumerBenchOptions, run_consumer_suite
from deploy.local.bench.harness import BenchOptions, print_suite, targets_table, write_rates_chart, write_suite


def test_consumer_bench_figures_come_from_real_runs(
    registry_settings: Settings, postgres_database: str, tmp_path: Path
) -> None:
    from pydantic import SecretStr

    settings = registry_settings.model_copy(update={"postgres_dsn": SecretStr(postgres_database)})
    options = BenchOptions(events=120, rounds=1, out_dir=tmp_path)
    extra = ConsumerBenchOptions(departments=("suppression", "tax"), scaling_department="suppression")
    result = run_consumer_suite(settings, options, Console(file=io.StringIO()), extra)

    published = result.context["events"]
    by = {(rate.department, rate.path): rate for rate in result.rates}
    # Every path of a department read exactly the messages of that department's topics, and took time doing it.
    tax = {path: rate.messages for (department, path), rate in by.items() if department == "tax"}
    assert set(tax) == {"raw consume (ceiling)", "civreg sqlite", "civreg postgres", "stock sqlite"}
    assert set(tax.values()) == {published}  # tax receives every register
    deaths = by[("suppression", "raw consume (ceiling)")].messages
    assert 0 < deaths < published
    assert by[("suppression", "civreg sqlite")].messages == deaths
    assert by[("suppression", "1 process(es) postgres")].messages == deaths
    assert by[("suppression", "2 process(es) postgres")].messages == deaths
    assert all(rate.rate > 0 and rate.seconds > 0 for rate in result.rates)
    assert by[("tax", "civreg sqlite")].ceiling == by[("tax", "raw consume (ceiling)")].rate
    retries = result.context["scaling_batch_retries"]  # what the two processes' transactions cost each other
    assert set(retries) == {"1 process(es)", "2 process(es)"} and retries["1 process(es)"] == 0

    names = [target.name for target in result.targets]
    assert "suppression: civreg ÷ raw ceiling (SQLite)" in names
    assert "tax: civreg ÷ raw ceiling (SQLite)" in names
    assert "tax: PostgreSQL ÷ SQLite" in names
    assert "suppression: two processes ÷ one (postgres)" in names
    assert any("PROJECTION" in name for name in names)

    console = Console(file=io.StringIO(), width=200)
    print_suite(result, console)
    printed = console.file.getvalue()  # type: ignore[attr-defined]
    assert "share of raw" in printed and "targets" not in printed  # `civreg bench` prints one table of every target
    console.print(targets_table(result.targets, "Every target"))
    printed = console.file.getvalue()  # type: ignore[attr-defined]
    assert "≥ 20.0%" in printed and "≥ 1.70x" in printed and "≤ 900.00 s" in printed
    payload = json.loads(write_suite(result, tmp_path).read_text(encoding="utf-8"))
    assert {"rates", "targets", "context", "machine"} <= payload.keys()
    assert all({"figure", "goal", "met"} <= target.keys() for target in payload["targets"])
    chart = write_rates_chart(result, tmp_path)
    assert chart is not None and chart.read_bytes().startswith(b"\x89PNG")
