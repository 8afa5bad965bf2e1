"""Scenario (6), registry outage: the schema registry unreachable for longer than max.poll.interval.ms."""

from __future__ import annotations

import time
import urllib.parse

from civreg.codec_from_settings import open_codec
from deploy.local.faults.counting import group_members, wait_for
from deploy.local.faults.lab import Lab
from deploy.local.faults.results import FaultResult
from deploy.local.faults.run import ScenarioRun
from deploy.local.faults.tcp_proxy import TcpProxy


def registry_outage(lab: Lab) -> FaultResult:
    """The registry unreachable for longer than max.poll.interval.ms: the consumer stays in its group, resumes."""
    url = lab.registry_url()
    parsed = urllib.parse.urlsplit(url)
    proxy = TcpProxy(parsed.hostname or "127.0.0.1", parsed.port or 80)
    proxy.start()
    proxied = parsed._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()
    base = lab.broker().model_copy(
        update={"registry_url": url, "max_poll_interval_ms": lab.options.max_poll_interval_ms}
    )
    run = ScenarioRun.begin(lab, "registry-outage", base, events=lab.options.events // 2, seed=4)
    settings = run.settings
    run.codec = open_codec(settings, publishing=True)  # the suite's producer goes to the registry itself
    consumer = run.consumer(settings=settings.model_copy(update={"registry_url": proxied}))
    consumer.start()
    if not wait_for(lambda: '"assigned"' in consumer.log_text(), 120):
        run.notes.append("FAILED: the consumer was never assigned its partitions")
    members_before = group_members(settings)
    proxy.stop()
    # Events with schema ids the consumer has never met: it must ask the registry, which does not answer.
    producing = run.producing(chunk=200)
    producing.start()
    outage = lab.options.registry_outage_seconds
    time.sleep(outage)
    members_during = group_members(settings)
    proxy.start()
    fault_ended = time.monotonic()
    try:
        result = run.finish(producing, fault_ended=fault_ended, faults=1)
    finally:
        proxy.stop()
    log = consumer.log_text()
    if members_before and members_during != members_before:
        result.notes.append("FAILED: the consumer left its group during the outage")
    running = log.split('"stopping"')[0]  # before its clean shutdown (which revokes everything, as it should)
    if '"revoked"' in running or running.count('"assigned"') > 1:
        result.notes.append("FAILED: the consumer's partitions were revoked during the outage")
    if '"schema-registry-unavailable"' not in log:
        result.notes.append("FAILED: the outage is not in the consumer's log")
    result.notes.append(f"outage {outage:.0f}s > max.poll.interval.ms {lab.options.max_poll_interval_ms} ms")
    return result
