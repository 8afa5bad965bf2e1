"""Scenario (6), registry outage: the schema registry unreachable for longer than max.poll.interval.ms, for the router
and for the department consumer, each while it meets schema ids it has never seen.

Both services reach the registry only through proxies the scenario cuts (the suite's producer goes to it directly).
The router is cut first and meets the new registration schema ids in the outage; its proxy comes back, it routes,
and the consumer, still cut, meets the department topic's new projection ids. Each outage is longer than
``max.poll.interval.ms``: a service that stopped polling would be evicted from its group. Checked from the outside:
the groups' member ids before, during and after, the router's process (same pid, no restart by the supervisor), the
department topic itself (each agreed event exactly once: the store would absorb a doubled delivery) and the store.
"""

from __future__ import annotations

import time
import urllib.parse

from civreg.codec_from_settings import open_codec
from consumers.routing.router import lane_group
from deploy.local.faults.counting import department_topic_counts, expected_ids, group_members, wait_for
from deploy.local.faults.lab import DEPARTMENT, Lab
from deploy.local.faults.results import FaultResult
from deploy.local.faults.run import ScenarioRun
from deploy.local.faults.tcp_proxy import TcpProxy


def _proxy(url: str) -> tuple[TcpProxy, str]:
    """A started proxy in front of the registry at ``url``, and the registry's URL through it."""
    parsed = urllib.parse.urlsplit(url)
    proxy = TcpProxy(parsed.hostname or "127.0.0.1", parsed.port or 80)
    proxy.start()
    return proxy, parsed._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()


def registry_outage(lab: Lab) -> FaultResult:
    """The registry unreachable for longer than max.poll.interval.ms, first for the router and the consumer, then
    for the consumer alone: both stay in their groups, the router is not restarted, nothing lost or doubled."""
    url = lab.registry_url()
    router_proxy, router_url = _proxy(url)
    consumer_proxy, consumer_url = _proxy(url)
    base = lab.broker().model_copy(
        update={"registry_url": url, "max_poll_interval_ms": lab.options.max_poll_interval_ms}
    )
    run = ScenarioRun.begin(
        lab, "registry-outage", base, events=lab.options.events // 2, seed=4, router_update={"registry_url": router_url}
    )
    try:
        return _outages(lab, run, router_proxy, consumer_proxy, consumer_url)
    finally:
        router_proxy.stop()
        consumer_proxy.stop()


def _outages(
    lab: Lab, run: ScenarioRun, router_proxy: TcpProxy, consumer_proxy: TcpProxy, consumer_url: str
) -> FaultResult:
    settings = run.settings
    outage = lab.options.registry_outage_seconds
    run.codec = open_codec(settings, publishing=True)  # the suite's producer goes to the registry itself
    router = run.routers[0]
    lanes = lane_group(DEPARTMENT, settings.topic_prefix)
    consumer = run.consumer(settings=settings.model_copy(update={"registry_url": consumer_url}))
    consumer.start()
    if not wait_for(lambda: '"assigned"' in consumer.log_text(), 120):
        run.notes.append("FAILED: the consumer was never assigned its partitions")
    if not wait_for(lambda: bool(group_members(settings, lanes)), 120):
        run.notes.append("FAILED: the router's lane never joined its group")
    router_pid = router.proc.pid if router.proc else None
    consumers_before, lanes_before = group_members(settings), group_members(settings, lanes)
    router_proxy.stop()
    consumer_proxy.stop()
    # Events with schema ids neither service has met: each must ask the registry, which does not answer.
    producing = run.producing(chunk=200)
    producing.start()
    time.sleep(outage)
    lanes_during = group_members(settings, lanes)
    router_proxy.start()  # the router routes again; the consumer meets the projections' ids, still cut off
    met = wait_for(lambda: '"schema-registry-unavailable"' in consumer.log_text(), 120)
    if not met:
        run.notes.append("FAILED: the consumer never met the outage (nothing routed to it?)")
    time.sleep(outage)
    consumers_during = group_members(settings)
    consumer_proxy.start()
    fault_ended = time.monotonic()
    lanes_after = group_members(settings, lanes)
    result = run.finish(producing, fault_ended=fault_ended, faults=2)
    lost, doubled = department_topic_counts(settings, run.codec, expected_ids(run.events, producing.ids_acknowledged()))
    result.lost = max(result.lost, lost)
    result.doubled = max(result.doubled, doubled)
    result.notes.extend(outage_log_checks(consumer.log_text(), router.log_text(), lost, doubled))
    for who, before, during in (
        ("the consumer", consumers_before, consumers_during),
        ("the router's lane", lanes_before, lanes_during),
        ("the router's lane", lanes_before, lanes_after),
    ):
        if not before or during != before:
            result.notes.append(f"FAILED: {who} left its group during the outage (members {before} -> {during})")
    if router.starts != 1 or router.proc is None or router.proc.pid != router_pid:
        result.notes.append(f"FAILED: the router was restarted ({router.starts} starts)")
    result.notes.append(
        f"router {outage:.0f}s, consumer {outage:.0f}s+ without the registry > max.poll.interval.ms "
        f"{lab.options.max_poll_interval_ms} ms; one router process, no restart"
    )
    return result


def outage_log_checks(consumer_log: str, router_log: str, lost: int, doubled: int) -> list[str]:
    """The services' own logs say they met the outage and waited it out (the counts come from the topic)."""
    notes: list[str] = []
    # Before its clean shutdown (which revokes everything, as it should).
    running = consumer_log.split('"stopping"', maxsplit=1)[0]
    if '"revoked"' in running or running.count('"assigned"') > 1:
        notes.append("FAILED: the consumer's partitions were revoked during the outage")
    for who, log in (("consumer", consumer_log), ("router", router_log)):
        if '"schema-registry-unavailable"' not in log or '"schema-registry-back"' not in log:
            notes.append(f"FAILED: the outage and the recovery are not both in the {who}'s log")
        if '"dead-lettered"' in log:
            notes.append(f"FAILED: the {who} dead-lettered during the outage")
    if lost or doubled:
        notes.append(f"FAILED: the department topic lacks {lost} and doubles {doubled} agreed events")
    return notes
