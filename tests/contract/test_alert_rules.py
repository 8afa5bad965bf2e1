"""The alert rules and scrape config, checked and unit-tested by Prometheus's own ``promtool``.

``promtool`` comes from Debian's ``prometheus`` package; ``.ci/run`` installs it. Without it these tests skip.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.environment import REPO

PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
RULES = PROMETHEUS_DIR / "civreg-rules.yml"
OPERATIONS = REPO / "deploy" / "OPERATIONS.md"

promtool = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    promtool is None, reason="promtool not installed (Debian: apt-get install prometheus; .ci/run does)"
)


def run_promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    assert promtool is not None
    return subprocess.run([promtool, *map(str, args)], capture_output=True, text=True, timeout=120, check=False)


@needs_promtool
def test_rules_are_valid() -> None:
    checked = run_promtool("check", "rules", RULES)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@needs_promtool
def test_each_alert_fires_on_its_situation_and_stays_quiet_otherwise() -> None:
    tested = run_promtool("test", "rules", PROMETHEUS_DIR / "tests" / "civreg-rules.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


@needs_promtool
def test_scrape_config_is_valid_and_loads_the_rules() -> None:
    checked = run_promtool("check", "config", PROMETHEUS_DIR / "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "1 rule files found" in checked.stdout


def _alerts() -> list[dict[str, object]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_every_alert_is_unit_tested_and_documented() -> None:
    tests = yaml.safe_load((PROMETHEUS_DIR / "tests" / "civreg-rules.test.yml").read_text())["tests"]
    fired = {case["alertname"] for test in tests for case in test.get("alert_rule_test", []) if case.get("exp_alerts")}
    headings = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in OPERATIONS.read_text().splitlines()
        if line.startswith("#")
    }
    for alert in _alerts():
        name = str(alert["alert"])
        assert name in fired, f"{name} has no promtool test in which it fires"
        annotations = alert["annotations"]
        assert isinstance(annotations, dict)
        anchor = str(annotations["runbook_url"]).split("#", 1)[1]
        assert anchor in headings, f"{name}'s runbook anchor #{anchor} is not a heading of deploy/OPERATIONS.md"
        labels = alert["labels"]
        assert isinstance(labels, dict)
        assert labels["severity"] in {"critical", "warning"}
