"""The bulk suite of ``civreg bench`` at tiny size on SQLite and PostgreSQL: every figure comes from a real run.

No timing is asserted; what is checked is that every register load stored every row and the mailing filter decided
every recipient (the suite fails otherwise), that each rate is the rows over the seconds measured, that each target's
figure is a measured time with its goal scaled to the size and said so, and that the JSON is written.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from pydantic import SecretStr
from rich.console import Console

from civreg.settings import Settings
from deploy.local.bench.bulk import LOAD_SECONDS, MAILING_SECONDS
from deploy.local.bench.harness import BenchOptions
from deploy.local.bench.suites import run_suites
from producers.customer_records import REGISTER_DEPARTMENTS


@pytest.mark.postgres
def test_the_bulk_suite_reports_figures_from_real_runs(postgres_database: str, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", database_dir=tmp_path / "db", postgres_dsn=SecretStr(postgres_database))
    options = BenchOptions(rounds=1, bulk_rows=300, out_dir=tmp_path)
    out = io.StringIO()
    written = run_suites(settings, ["bulk"], options, Console(file=out, width=200))

    assert tmp_path / "bulk.json" in written
    data = json.loads((tmp_path / "bulk.json").read_text())
    assert data["context"]["rows"] == 300
    rates = {(rate["department"], rate["path"]): rate for rate in data["rates"]}
    assert set(rates) == {
        *((name, f"registers load, {engine}") for name in REGISTER_DEPARTMENTS for engine in ("sqlite", "postgres")),
        ("suppression", "mailing filter, sqlite"),
        ("suppression", "mailing filter, postgres"),
    }
    for rate in rates.values():
        assert rate["messages"] == 300 and rate["seconds"] > 0
        assert rate["rate"] == pytest.approx(300 / rate["seconds"])
    for engine in ("sqlite", "postgres"):
        assert "suppress" in data["context"][f"mailing filter actions ({engine})"]
    targets = {target["name"]: target for target in data["targets"]}
    assert len(targets) == 4
    for name, target in targets.items():
        assert "goal scaled from" in name and target["unit"] == "s"
        engine = "postgres" if "postgres" in name else "sqlite"
        if name.startswith("mailing filter"):
            assert target["figure"] == rates[("suppression", f"mailing filter, {engine}")]["seconds"]
            assert target["goal"] == pytest.approx(MAILING_SECONDS * 300 / 1_000_000)
        else:
            slowest = max(rates[(d, f"registers load, {engine}")]["seconds"] for d in REGISTER_DEPARTMENTS)
            assert target["figure"] == slowest
            assert target["goal"] == pytest.approx(LOAD_SECONDS * 300 / 1_000_000)
    assert "Every target" in out.getvalue()
