"""The operators' view on the real broker: a department consumer's metrics, health and readiness; a real Prometheus
server scraping a running ``civreg consume`` and evaluating the rules; the dashboards and rules naming only metrics
the code exports; ``civreg status --once`` reading the running service."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka import Producer
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from civreg.kafka_config import producer_config
from civreg.metrics import Metrics, default_metrics
from civreg.settings import Settings
from consumers.departments import department_named
from consumers.operations.running import open_store
from consumers.runtime import DepartmentConsumer
from consumers.runtime.metrics import operators_view
from deploy.local.jvm import free_port
from producers.publisher import Publisher
from schemas.topics import Register, registration_topic
from tests.support.environment import REPO, settings_env
from tests.support.factories import make_death, make_person

pytestmark = pytest.mark.kafka

DASHBOARDS = sorted((REPO / "deploy" / "grafana" / "dashboards").glob("*.json"))
RULES = REPO / "deploy" / "prometheus" / "civreg-rules.yml"


# Helpers ---------------------------------------------------------------------------------------------------


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, str(exc)


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 90.0) -> Any:
    """Poll ``condition`` until it returns something truthy (a wait, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.25)


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    status, text = get(url + "/metrics")
    assert status == 200, text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(value for (sample, have), value in found.items() if sample == name and wanted <= have)


def publish_deaths(settings: Settings, count: int, first: int = 1) -> None:
    with Publisher(settings) as publisher:
        for number in range(first, first + count):
            publisher.publish(make_death(entry_number=number, deceased=make_person(given_names=f"Person{number}")))


def publish_poison(settings: Settings) -> None:
    producer = Producer(producer_config(settings))
    producer.produce(registration_topic(Register.DEATH, settings.topic_prefix), key=b"poison", value=b"not avro")
    assert producer.flush(30) == 0


def queue_review(settings: Settings) -> None:
    store = open_store(settings, "suppression")
    try:
        with store.transaction() as transaction:
            transaction.enqueue_review(
                event_id="00000000-0000-4000-8000-000000000001",
                event_type="DeathRegistered",
                entry_key="E&W/LEEDS/DEATH/999",
                note="partial-match",
                candidates=("record-1",),
                event_json="{}",
            )
    finally:
        store.close()


class RunningConsumer:
    """A real suppression consumer in a thread, with its operators' endpoint on a free port."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.store = open_store(settings, "suppression")
        self.probe = open_store(settings, "suppression")
        self.consumer = DepartmentConsumer(department_named("suppression"), settings, self.store, batch_size=50)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._view = operators_view(self.consumer, self.probe, port=self.port, metrics=metrics)
        self.thread = threading.Thread(target=self.consumer.run, daemon=True)

    def __enter__(self) -> RunningConsumer:
        self.instrumented = self._view.__enter__()
        return self

    def start(self) -> None:
        self.thread.start()

    def __exit__(self, *exc: object) -> None:
        self.consumer.stop()
        if self.thread.is_alive():
            self.thread.join(timeout=60)
        self.consumer.close()
        self._view.__exit__(None, None, None)
        self.probe.close()
        self.store.close()


# The consumer's metrics, health and readiness ------------------------------------------------------------


def test_a_running_consumer_reports_outcomes_latency_lag_dead_letters_and_readiness(bus_settings: Settings) -> None:
    publish_deaths(bus_settings, 5)
    publish_poison(bus_settings)
    queue_review(bus_settings)
    metrics = Metrics(CollectorRegistry())
    registry = metrics.registry
    with RunningConsumer(bus_settings, metrics) as running:
        # Before it runs: not ready, and everything on its topic is lag (a new department back-fills from the start).
        assert get(running.url + "/healthz")[0] == 200
        status, detail = get(running.url + "/readyz")
        assert status == 503, detail
        before = scrape(running.url)
        assert total(before, "civreg_consumer_lag_messages", department="suppression") == 6
        assert total(before, "civreg_review_queue_events", department="suppression") == 1
        assert total(before, "civreg_last_commit_timestamp_seconds", department="suppression") == 0

        running.start()
        applied = {"department": "suppression", "event_type": "DeathRegistered", "outcome": "applied"}
        wait_for(lambda: registry.get_sample_value("civreg_consumed_events_total", applied) == 5, "5 deaths applied")
        wait_for(lambda: get(running.url + "/readyz")[0] == 200, "the consumer to be ready")

        after = scrape(running.url)
        assert total(after, "civreg_consumer_lag_messages", department="suppression") == 0
        assert total(after, "civreg_consumed_events_total", event_type="undecodable", outcome="dead_lettered") == 1
        assert total(after, "civreg_dead_letters_total", department="suppression", reason="bad-magic-byte") == 1
        assert total(after, "civreg_dead_letter_topic_messages", department="suppression") == 1
        for histogram in ("publish_to_applied", "registration_to_applied", "handler_duration"):
            name = f"civreg_{histogram}_seconds_count"
            assert total(after, name, department="suppression", event_type="DeathRegistered") == 5, name
        assert total(after, "civreg_batch_duration_seconds_count", department="suppression") >= 1
        assert total(after, "civreg_last_commit_timestamp_seconds", department="suppression") > 0
        assert total(after, "civreg_store_up", department="suppression") == 1
        assert total(after, "civreg_consumer_ready", department="suppression") == 1

        # New events: lag is read from the cluster, so it shows whatever the consume loop is doing.
        running.consumer.stop()
        running.thread.join(timeout=60)
        publish_deaths(bus_settings, 3, first=100)
        stopped = scrape(running.url)
        assert total(stopped, "civreg_consumer_lag_messages", department="suppression") == 3
        assert get(running.url + "/readyz")[0] == 503


# Dashboards and rules name only what the code exports ------------------------------------------------------


def exported_names(text: str) -> set[str]:
    """Every series name a /metrics text can carry: its samples, and those its families' types imply."""
    names: set[str] = set()
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    for family in text_string_to_metric_families(text):
        names.update(sample.name for sample in family.samples)
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
    return names


_PROMQL_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
}
_NUMBER = r"\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?:(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*)?"  # 1e3, 5m, 1h30m
_TOKEN = re.compile(rf"(?P<number>{_NUMBER})|(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)|(?P<other>.)", re.S)


def promql_metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression reads (Grafana variables, labels, functions and keywords removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)  # string literals
    text = re.sub(r"\$\{[^}]*\}|\$\w+", "1", text)  # Grafana variables
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)  # label lists
    label_values = re.fullmatch(r"\s*label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,.*\)\s*", text, re.S)
    if label_values:
        return {label_values.group(1)}
    names: set[str] = set()
    for match in _TOKEN.finditer(text):
        name = match.group("name")
        if name is None or name.lower() in _PROMQL_KEYWORDS:
            continue
        if text[match.end() :].lstrip().startswith("("):
            continue  # a function or aggregation
        names.add(name)
    return names


def dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL query of a dashboard: panel targets (rows included) and query variables."""
    queries: list[str] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            queries.extend(target["expr"] for target in panel.get("targets", []) if target.get("expr"))
            walk(panel.get("panels", []))

    walk(dashboard["panels"])
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]
            queries.append(query["query"] if isinstance(query, dict) else query)
    return queries


def rule_expressions() -> tuple[list[str], set[str]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    return [rule["expr"] for rule in rules], {rule["record"] for rule in rules if "record" in rule}


def test_promql_names_are_parsed_from_real_queries() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (department, le) (rate(civreg_publish_to_applied_seconds_bucket"
        '{department="$department", le="60.0"}[$__rate_interval]))) / on (department) group_left '
        "max without (instance) (civreg_consumer_lag_messages offset 5m) > 1e3 and time() - x:y:z"
    )
    assert promql_metric_names(expr) == {
        "civreg_publish_to_applied_seconds_bucket",
        "civreg_consumer_lag_messages",
        "x:y:z",
    }
    assert promql_metric_names("label_values(civreg_consumed_events_total, department)") == {
        "civreg_consumed_events_total"
    }


@pytest.fixture
def exercised_names(bus_settings: Settings) -> Iterator[set[str]]:
    """The names a real consumer process exports after publishing, consuming, dead-lettering and reviewing."""
    publish_deaths(bus_settings, 3)  # the publisher records into the process's metrics too
    publish_poison(bus_settings)
    queue_review(bus_settings)
    with RunningConsumer(bus_settings, default_metrics()) as running:
        running.start()
        wait_for(lambda: total(scrape(running.url), "civreg_consumed_events_total") >= 4, "the events to be consumed")
        yield exported_names(get(running.url + "/metrics")[1])


def relay_only(queries: list[str]) -> set[str]:
    """Names in ``queries`` that only an outbox relay exports (``civreg relay``), not a department consumer."""
    return {name for query in queries for name in promql_metric_names(query) if name.startswith("civreg_relay_")}


def test_dashboards_and_rules_name_only_metrics_the_code_exports(exercised_names: set[str]) -> None:
    assert DASHBOARDS, "no dashboards found"
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        queries = dashboard_queries(dashboard)
        assert queries, path.name
        used = set().union(*(promql_metric_names(query) for query in queries)) - relay_only(queries)
        assert used <= exercised_names, f"{path.name} queries metrics nobody exports: {sorted(used - exercised_names)}"
    expressions, recorded = rule_expressions()
    used_by_rules = set().union(*(promql_metric_names(expr) for expr in expressions))
    # `up` is Prometheus's own per-target series; recorded names are defined by the rules themselves.
    # The relay's series come from a relay process: tests/integration/test_relay.py checks those against it.
    unknown = used_by_rules - exercised_names - recorded - {"up"} - relay_only(expressions)
    assert not unknown, f"rules query metrics nobody exports: {sorted(unknown)}"


def test_dashboards_cover_what_operators_asked_for() -> None:
    by_uid = {json.loads(path.read_text())["uid"]: json.loads(path.read_text()) for path in DASHBOARDS}
    overview = set().union(*(promql_metric_names(q) for q in dashboard_queries(by_uid["civreg-overview"])))
    assert {
        "civreg_consumed_events_total",  # throughput and outcomes
        "civreg_consumer_lag_messages",
        "civreg_publish_to_applied_seconds_bucket",
        "civreg_dead_letters_total",
        "civreg_published_events_total",
    } <= overview
    department = by_uid["civreg-department"]
    variables = {variable["name"] for variable in department["templating"]["list"]}
    assert "department" in variables
    for query in dashboard_queries(department):
        if not query.startswith("label_values"):
            assert '{department="$department"' in query, f"drill-down query ignores the department: {query}"


# A real Prometheus server, and `civreg status` ---------------------------------------------------------------


prometheus_binary = shutil.which("prometheus")


@pytest.fixture
def consumer_process(bus_settings: Settings) -> Iterator[str]:
    """``civreg consume --department suppression --metrics-port N`` as a real process; yields its endpoint URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "civreg", "consume", "-d", "suppression", "--metrics-port", str(port)],
        env=settings_env(bus_settings),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr.decode()[-2000:]


@pytest.fixture
def prometheus(tmp_path: Path, consumer_process: str) -> Iterator[str]:
    """A real Prometheus server on a free port with temporary storage, scraping the consumer every second."""
    # The test that uses this is skipped (by its mark, before any fixture runs) when there is no Prometheus.
    assert prometheus_binary is not None
    target = urllib.parse.urlparse(consumer_process).netloc
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [{"job_name": "civreg-departments", "static_configs": [{"targets": [target]}]}],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    process = subprocess.Popen(
        [
            prometheus_binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: get(url + "/-/ready")[0] == 200 or process.poll() is not None, "Prometheus to start")
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    status, body = get(f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': expr})}")
    answer = json.loads(body)
    assert status == 200 and answer["status"] == "success", f"{expr}: {body}"
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def value_of(prometheus: str, expr: str) -> float | None:
    result = query(prometheus, expr)
    return float(result[0]["value"][1]) if len(result) == 1 else None


@pytest.mark.skipif(
    prometheus_binary is None, reason="prometheus not installed (Debian: apt-get install prometheus; .ci/run does)"
)
def test_prometheus_scrapes_a_running_consumer_and_status_shows_it(
    bus_settings: Settings, consumer_process: str, prometheus: str
) -> None:
    publish_deaths(bus_settings, 4)
    wait_for(lambda: get(consumer_process + "/readyz")[0] == 200, "the consumer to be ready")

    applied = 'civreg_consumed_events_total{department="suppression",event_type="DeathRegistered",outcome="applied"}'
    wait_for(lambda: value_of(prometheus, applied) == 4, "Prometheus to scrape 4 applied deaths")
    assert value_of(prometheus, 'up{job="civreg-departments"}') == 1
    (series,) = query(prometheus, applied)
    assert series["metric"]["job"] == "civreg-departments"
    # The rules file is loaded and its recording rules evaluate on real data.
    lag = 'department:civreg_consumer_lag_messages:sum{department="suppression"}'
    wait_for(lambda: value_of(prometheus, lag) == 0, "the recorded lag of the caught-up department")
    partitions = query(prometheus, 'civreg_consumer_lag_messages{department="suppression"}')
    assert {item["metric"]["partition"] for item in partitions} == {str(p) for p in range(6)}

    # Every dashboard query is valid PromQL to a real server.
    for path in DASHBOARDS:
        for expr in dashboard_queries(json.loads(path.read_text())):
            if not expr.startswith("label_values"):
                query(prometheus, expr.replace("$department", "suppression").replace("$__rate_interval", "1m"))

    env = {**os.environ, "COLUMNS": "160"}
    shown = subprocess.run(
        [sys.executable, "-m", "civreg", "status", "--once", "--interval", "1", "--endpoint", consumer_process],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert shown.returncode == 0, shown.stdout + shown.stderr
    print(shown.stdout)  # the snapshot, for `pytest -s`
    (row,) = [line for line in shown.stdout.splitlines() if "suppression" in line]
    assert "ready" in row
    assert consumer_process.removeprefix("http://") in row
