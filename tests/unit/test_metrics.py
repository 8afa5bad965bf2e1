"""The metrics core and the status view's arithmetic, without a broker: a real HTTP endpoint on a free port."""

from __future__ import annotations

import math
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from civreg.metrics import Check, LiveState, Metrics, MetricsServerError, OperatorsEndpoint, reason_code
from deploy.local.status import Scrape, histogram_quantile, normalise_endpoint, parse_endpoints, service_rows


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(CollectorRegistry())


@pytest.fixture
def endpoint(metrics: Metrics) -> Iterator[tuple[OperatorsEndpoint, dict[str, Check]]]:
    checks = {"ready": Check(False, "tax: waiting for partitions from the consumer group")}
    with OperatorsEndpoint(
        metrics, port=0, health=lambda: Check(True, "tax: alive"), ready=lambda: checks["ready"]
    ) as served:
        yield served, checks


def test_reason_codes_pass_and_free_text_never_becomes_a_label() -> None:
    assert reason_code("bad-magic-byte") == "bad-magic-byte"
    assert reason_code("handler-crashed") == "handler-crashed"
    assert reason_code("no record for Margaret Morgan born 1941-03-02") == "other"
    assert reason_code("x" * 65) == "other"
    assert reason_code("") == "other"


def test_endpoint_serves_live_state_health_and_readiness(
    metrics: Metrics, endpoint: tuple[OperatorsEndpoint, dict[str, Check]]
) -> None:
    served, checks = endpoint
    unwatch = metrics.watch(
        lambda: LiveState(
            "tax",
            ready=False,
            store_up=True,
            lag={("civreg.registrations.deaths", 0): 7, ("civreg.registrations.deaths", 1): 0},
            review_queue=2,
            review_oldest_age_seconds=90.0,
            dead_letter_topic_messages=1,
        )
    )
    status, text = get(served.url + "/metrics")
    assert status == 200
    found = samples(text)
    lag0 = frozenset({"department": "tax", "topic": "civreg.registrations.deaths", "partition": "0"}.items())
    assert found[("civreg_consumer_lag_messages", lag0)] == 7
    assert found[("civreg_review_queue_events", frozenset({("department", "tax")}))] == 2
    assert found[("civreg_dead_letter_topic_messages", frozenset({("department", "tax")}))] == 1
    assert found[("civreg_consumer_ready", frozenset({("department", "tax")}))] == 0

    assert get(served.url + "/healthz") == (200, "tax: alive\n")
    assert get(served.url + "/readyz") == (503, "tax: waiting for partitions from the consumer group\n")
    checks["ready"] = Check(True, "tax: ready")
    assert get(served.url + "/readyz") == (200, "tax: ready\n")
    assert get(served.url + "/nothing")[0] == 404

    unwatch()
    assert "civreg_consumer_lag_messages{" not in get(served.url + "/metrics")[1]


def test_a_failing_live_source_does_not_fail_the_scrape(
    metrics: Metrics, endpoint: tuple[OperatorsEndpoint, dict[str, Check]]
) -> None:
    def closing() -> LiveState:
        raise RuntimeError("consumer closed")

    metrics.watch(closing)
    metrics.record_delivery("DeathRegistered", delivered=True, seconds=0.004)
    status, text = get(endpoint[0].url + "/metrics")
    assert status == 200
    delivered = frozenset({"event_type": "DeathRegistered", "outcome": "delivered"}.items())
    assert samples(text)[("civreg_published_events_total", delivered)] == 1


def test_a_taken_port_is_a_clear_error(metrics: Metrics) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(MetricsServerError, match=f"127.0.0.1:{port}"):
            OperatorsEndpoint(metrics, port=port)


def test_publisher_deliveries_count_by_outcome(metrics: Metrics) -> None:
    metrics.record_delivery("DeathRegistered", delivered=True, seconds=0.01)
    metrics.record_delivery("DeathRegistered", delivered=False)
    registry = metrics.registry
    labels = {"event_type": "DeathRegistered"}
    assert registry.get_sample_value("civreg_published_events_total", {**labels, "outcome": "delivered"}) == 1
    assert registry.get_sample_value("civreg_published_events_total", {**labels, "outcome": "failed"}) == 1
    assert registry.get_sample_value("civreg_publish_duration_seconds_count", labels) == 1


# The status view's arithmetic -----------------------------------------------------------------------------------


def test_histogram_quantile_interpolates_like_prometheus() -> None:
    buckets = {1.0: 50.0, 2.0: 90.0, 5.0: 100.0, math.inf: 100.0}
    assert histogram_quantile(0.5, buckets) == pytest.approx(1.0)
    assert histogram_quantile(0.7, buckets) == pytest.approx(1.5)
    assert histogram_quantile(0.95, buckets) == pytest.approx(3.5)
    assert histogram_quantile(0.99, {60.0: 10.0, math.inf: 20.0}) == 60.0  # in +Inf: the largest finite bound
    assert histogram_quantile(0.99, {1.0: 0.0, math.inf: 0.0}) is None


def test_endpoints_are_normalised() -> None:
    assert normalise_endpoint("tax:9400") == "http://tax:9400"
    assert normalise_endpoint("http://tax:9400/metrics") == "http://tax:9400"
    assert parse_endpoints(" tax:9400, http://dvla:9400/ ,") == ["http://tax:9400", "http://dvla:9400"]


def _scrape(metrics: Metrics, at: float) -> Scrape:
    parsed: dict[str, list[tuple[tuple[tuple[str, str], ...], float]]] = {}
    for family in text_string_to_metric_families(generate_latest(metrics.registry).decode()):
        for sample in family.samples:
            parsed.setdefault(sample.name, []).append((tuple(sorted(sample.labels.items())), sample.value))
    return Scrape("http://tax:9400", monotonic=at, wall=1_000_000.0 + at, samples=parsed, ready=True)


def test_rows_show_rate_and_latency_between_two_scrapes(metrics: Metrics) -> None:
    consumed = metrics.consumed_events.labels("tax", "DeathRegistered", "applied")
    latency = metrics.publish_to_applied.labels("tax", "DeathRegistered")
    metrics.last_commit.labels("tax").set(1_000_000.0)
    metrics.watch(lambda: LiveState("tax", ready=True, store_up=True, lag={("t", 0): 3, ("t", 1): 2}, review_queue=4))
    consumed.inc(100)
    latency.observe(500.0)  # before the window: must not count in the window's p99
    before = _scrape(metrics, at=10.0)
    consumed.inc(40)
    for _ in range(40):
        latency.observe(0.3)
    after = _scrape(metrics, at=20.0)

    (row,) = service_rows({before.endpoint: before}, [after])
    assert row.service == "tax"
    assert row.rate == pytest.approx(4.0)
    assert row.lag == 5
    assert row.partitions == 2
    assert row.review_queue == 4
    assert row.p99_seconds is not None
    assert 0.25 < row.p99_seconds <= 0.5
    assert row.since_commit_seconds == pytest.approx(20.0)


def test_an_unreachable_endpoint_is_a_row_saying_so() -> None:
    down = Scrape("http://tax:9400", monotonic=0.0, wall=0.0, error="connection refused")
    (row,) = service_rows({}, [down])
    assert not row.healthy
    assert row.state == "down: connection refused"
