"""A department consumer's life on the real broker and registry: a stop at any moment of start-up is clean, a
registry outage longer than ``max.poll.interval.ms`` keeps it in its group, ``--until-caught-up`` means every
partition, and a SIGKILLed consumer restarted at once (static membership) leaves no event without its outcome."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer

from civreg.codec_from_settings import open_codec
from civreg.kafka_config import admin_config, consumer_config, producer_config
from civreg.settings import Settings
from consumers.departments import department_named
from consumers.operations.running import open_store
from consumers.runtime import DepartmentConsumer
from deploy.local.jvm import free_port
from schemas.topics import department_topic
from tests.support.environment import REPO, settings_env
from tests.support.factories import make_death, make_person
from tests.support.publishing import publish_deaths
from tests.support.routing import route
from tests.support.waiting import wait_for

pytestmark = pytest.mark.kafka

CIVREG = [sys.executable, "-m", "civreg"]


def outcomes(settings: Settings) -> dict[str, int]:
    """Outcomes recorded by the suppression store of ``settings``, per outcome."""
    store = open_store(settings, "suppression")
    try:
        counts: dict[str, int] = {}
        for (_, outcome), count in store.outcome_counts().items():
            counts[outcome] = counts.get(outcome, 0) + count
        return counts
    finally:
        store.close()


# A SIGTERM at any moment of start-up -------------------------------------------------------------------------


def _hold_sigterm() -> None:
    """In the child before exec: SIGTERM stays pending through the interpreter's own start-up, before any code of
    ours can run, and is delivered the instant the consumer installs its handler."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})


@pytest.mark.parametrize("moment", ["at-once", "after-0.2s", "waiting-for-an-unreachable-registry"])
def test_sigterm_at_any_moment_of_start_up_ends_the_consumer_cleanly(
    bus_settings: Settings, tmp_path: Path, moment: str
) -> None:
    env = settings_env(bus_settings)
    if moment == "waiting-for-an-unreachable-registry":
        env["CIVREG_REGISTRY_URL"] = f"http://127.0.0.1:{free_port()}/apis/ccompat/v7"  # nothing listens there
        env["CIVREG_REGISTRY_WAIT_SECONDS"] = "600"
    stderr_path = tmp_path / "stderr"
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [*CIVREG, "consume", "-d", "suppression"],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=stderr,
            preexec_fn=_hold_sigterm if moment == "at-once" else None,  # noqa: PLW1509 - test only, no threads yet
        )
        if moment == "after-0.2s":
            time.sleep(0.2)
        elif moment == "waiting-for-an-unreachable-registry":
            wait_for(lambda: b"schema-registry-unavailable" in stderr_path.read_bytes(), "the registry wait")
        process.send_signal(signal.SIGTERM)
        stdout, _ = process.communicate(timeout=60)
    errors = stderr_path.read_text()
    assert process.returncode == 0, errors[-2000:]
    assert "Traceback" not in errors, errors[-2000:]
    assert b"suppression:" in stdout  # one line saying how it ended


# The registry away for longer than max.poll.interval.ms ------------------------------------------------------


class TcpProxy:
    """A TCP forwarder on a fixed local port in front of the shared registry: ``stop`` makes the registry
    unreachable for its clients (refused connections, open ones cut) without touching the registry."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone does not
            self._listener.close()
            self._listener = None
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def registry_proxy(registry_url: str) -> Iterator[tuple[TcpProxy, str]]:
    """A proxy in front of the session's registry, and the registry URL through it."""
    from urllib.parse import urlparse

    parsed = urlparse(registry_url)
    proxy = TcpProxy(parsed.hostname or "127.0.0.1", parsed.port or 80)
    proxy.start()
    try:
        yield proxy, parsed._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()
    finally:
        proxy.stop()


def test_a_registry_outage_longer_than_the_poll_interval_keeps_the_consumer_in_its_group(
    registry_settings: Settings, registry_proxy: tuple[TcpProxy, str]
) -> None:
    proxy, proxied_url = registry_proxy
    settings = registry_settings.model_copy(
        update={"registry_url": proxied_url, "session_timeout_ms": 6_000, "max_poll_interval_ms": 6_000}
    )
    store = open_store(settings, "suppression")
    consumer = DepartmentConsumer(department_named("suppression"), settings, store, batch_size=50)
    failures: list[BaseException] = []

    def run() -> None:
        try:
            consumer.run()
        except BaseException as exc:  # the test reports it
            failures.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: consumer.assigned, "the group to assign the partitions")
        member = consumer.member_id
        assert member

        proxy.stop()  # the consumer has met no schema id yet: it must ask the registry for the first one
        publish_deaths(registry_settings, 30)  # straight to the registry, not through the proxy
        route(registry_settings)  # departments read their own topics, written by the router
        wait_for(lambda: consumer.waiting_for_registry, "the consumer to wait for the registry")
        # Longer than max.poll.interval.ms with the registry away: a consumer that stopped polling is evicted now.
        deadline = time.monotonic() + 2 * settings.max_poll_interval_ms / 1000
        while time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.2)
        assert consumer.waiting_for_registry and not failures

        proxy.start()
        wait_for(lambda: outcomes(settings).get("applied") == 30, "every death to be applied once the registry is back")
        assert not consumer.waiting_for_registry
        assert consumer.member_id == member, "the consumer left (or was evicted from) its group"
        assert thread.is_alive() and not failures, failures
        assert consumer.totals.dead_letters == 0 and set(outcomes(settings)) == {"applied"}
    finally:
        consumer.stop()
        thread.join(timeout=60)
        store.close()
    assert not failures, failures


# --until-caught-up means every partition ----------------------------------------------------------------------


def test_until_caught_up_waits_for_partitions_another_member_holds(
    bus_store_settings: Settings, tmp_path: Path
) -> None:
    settings = bus_store_settings
    publish_deaths(settings, 120)
    route(settings)  # departments read their own topics, written by the router
    open_store(settings, "suppression").close()  # the store's tables exist before anyone polls them
    group = department_named("suppression").group_id(settings.topic_prefix)
    topics = department_named("suppression").topics(settings.topic_prefix)
    # A live member of the department's group that holds partitions and applies nothing (a stuck instance).
    squatter = Consumer(consumer_config(settings, group, role="squatter"))
    assigned = threading.Event()
    squatter.subscribe(topics, on_assign=lambda _c, partitions: assigned.set() if partitions else None)
    leave = threading.Event()

    def hold() -> None:
        while not leave.is_set():
            squatter.poll(0.2)  # stays in the group; its messages are dropped, its offsets never stored
        squatter.close()

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    try:
        wait_for(assigned.is_set, "the squatter to hold partitions")
        stderr_path = tmp_path / "stderr"
        with stderr_path.open("wb") as stderr:
            process = subprocess.Popen(
                [*CIVREG, "consume", "-d", "suppression", "--until-caught-up"],
                env=settings_env(settings),
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=stderr,
            )
            wait_for(
                lambda: (
                    b"waiting-for-partitions-held-elsewhere" in stderr_path.read_bytes() or process.poll() is not None
                ),
                "the consumer to say it waits for partitions held elsewhere",
            )
            assert process.poll() is None, "reported caught up with partitions unread: " + stderr_path.read_text()
            leave.set()  # the squatter leaves; its partitions move to the consumer, which reads them
            stdout, _ = process.communicate(timeout=120)
        assert process.returncode == 0, stderr_path.read_text()[-2000:]
    finally:
        leave.set()
        holder.join(timeout=30)
    assert outcomes(settings) == {"applied": 120}
    assert b"suppression: 120 messages" in stdout


def test_until_caught_up_counts_a_partition_emptied_by_retention_as_read(bus_settings: Settings) -> None:
    """A partition whose records retention deleted (log start == log end) is caught up though never read."""
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import AdminClient, OffsetSpec

    publish_deaths(bus_settings, 40)
    route(bus_settings)  # departments read their own topics, written by the router
    admin = AdminClient(admin_config(bus_settings))
    (topic,) = department_named("suppression").topics(bus_settings.topic_prefix)
    partitions = [TopicPartition(topic, p) for p in admin.list_topics(topic, timeout=10).topics[topic].partitions]
    ends = admin.list_offsets({tp: OffsetSpec.latest() for tp in partitions})  # type: ignore[no-untyped-call]
    for future in admin.delete_records(
        [TopicPartition(tp.topic, tp.partition, ends[tp].result().offset) for tp in partitions]
    ).values():
        future.result()
    store = open_store(bus_settings, "suppression")
    try:
        report = DepartmentConsumer(department_named("suppression"), bus_settings, store).run(until_caught_up=True)
    finally:
        store.close()
    assert report.messages == 0


# Transactional writers: commit markers at the end of partitions ----------------------------------------------


def publish_deaths_in_transactions(settings: Settings, transactions: int, per_transaction: int) -> int:
    """Publish deaths as a transactional writer does (the department topics' router): every transaction ends with
    a commit marker, one offset no consumer is ever given. One more transaction is aborted (never delivered).
    Returns how many deaths were committed."""
    codec = open_codec(settings, publishing=True)
    producer = Producer(
        producer_config(settings, role="test-transactions", **{"transactional.id": f"{settings.topic_prefix}-tx"})
    )
    producer.init_transactions(30)
    number = 1
    for transaction in range(transactions + 1):
        producer.begin_transaction()
        for _ in range(per_transaction):
            event = make_death(entry_number=number, deceased=make_person(given_names=f"Person{number}"))
            topic = department_topic("suppression", settings.topic_prefix)  # the router's own kind of writes
            producer.produce(topic, value=codec.encode(event, topic), key=event.entry.key)
            number += 1
        if transaction == 1:
            producer.flush(30)  # written first: the log then holds aborted records before the abort marker
            producer.abort_transaction(30)  # its records and its abort marker are skipped, never applied
            number -= per_transaction
        else:
            producer.commit_transaction(30)
    producer.flush(30)
    return transactions * per_transaction


def log_ends(settings: Settings) -> dict[tuple[str, int], int]:
    """Every suppression partition's last stable offset (one past the last commit marker), asked of the broker."""
    from confluent_kafka import IsolationLevel, TopicPartition
    from confluent_kafka.admin import AdminClient, OffsetSpec

    admin = AdminClient(admin_config(settings))
    partitions = [
        TopicPartition(topic, partition)
        for topic in department_named("suppression").topics(settings.topic_prefix)
        for partition in admin.list_topics(topic, timeout=10).topics[topic].partitions
    ]
    ends = admin.list_offsets(
        {tp: OffsetSpec.latest() for tp in partitions},  # type: ignore[no-untyped-call]
        isolation_level=IsolationLevel.READ_COMMITTED,
    )
    return {(tp.topic, tp.partition): int(ends[tp].result(timeout=15).offset) for tp in partitions}


def stored_offsets(settings: Settings) -> dict[tuple[str, int], int]:
    store = open_store(settings, "suppression")
    try:
        return store.stored_offsets()
    finally:
        store.close()


def run_in_thread(consumer: DepartmentConsumer, **options: Any) -> tuple[threading.Thread, list[BaseException]]:
    failures: list[BaseException] = []

    def run() -> None:
        try:
            consumer.run(**options)
        except BaseException as exc:  # the test reports it
            failures.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, failures


def finished(thread: threading.Thread, consumer: DepartmentConsumer, what: str) -> None:
    """Fail (after stopping it) if ``consumer`` is still running: a hang guard, not a timing assertion."""
    thread.join(timeout=120)
    if thread.is_alive():
        consumer.stop()
        thread.join(timeout=60)
        raise AssertionError(f"{what} never returned: it waits for a commit marker no consumer is given")


def test_until_caught_up_returns_after_transactions_and_stores_past_their_commit_markers(
    bus_settings: Settings,
) -> None:
    committed = publish_deaths_in_transactions(bus_settings, transactions=3, per_transaction=15)
    ends = log_ends(bus_settings)
    store = open_store(bus_settings, "suppression")
    consumer = DepartmentConsumer(department_named("suppression"), bus_settings, store)
    thread, failures = run_in_thread(consumer, until_caught_up=True)
    try:
        finished(thread, consumer, "--until-caught-up over transactional writes")
    finally:
        store.close()
    assert not failures, failures
    assert outcomes(bus_settings) == {"applied": committed}
    # The store's next offsets are the log ends, past every marker: lag and alerts read zero, not one per partition.
    written = {key: end for key, end in ends.items() if end > 0}
    assert written and {key: stored_offsets(bus_settings).get(key) for key in written} == written


def test_until_caught_up_counts_partitions_held_elsewhere_past_their_commit_markers(
    bus_store_settings: Settings,
) -> None:
    settings = bus_store_settings
    committed = publish_deaths_in_transactions(settings, transactions=3, per_transaction=15)
    ends = {key: end for key, end in log_ends(settings).items() if end > 0}
    holder_store = open_store(settings, "suppression")
    store = open_store(settings, "suppression")  # opened (tables made) before the holder runs: no DDL beside it
    holder = DepartmentConsumer(department_named("suppression"), settings, holder_store)
    holder_thread, holder_failures = run_in_thread(holder)  # stays in the group, holding its partitions
    try:
        wait_for(
            lambda: {key: store.stored_offsets().get(key) for key in ends} == ends or holder_failures,
            "the holding member to apply every transaction and pass its commit markers",
        )
        assert not holder_failures, holder_failures
        assert holder.assigned  # still a member: what the second one does not hold, it holds
        second = DepartmentConsumer(department_named("suppression"), settings, store)
        thread, failures = run_in_thread(second, until_caught_up=True)
        finished(thread, second, "--until-caught-up beside a member holding transactional partitions")
        assert not failures, failures
        assert second.totals.messages == 0
    finally:
        holder.stop()
        holder_thread.join(timeout=60)
        holder_store.close()
        store.close()
    assert not holder_failures, holder_failures
    assert outcomes(settings) == {"applied": committed}


# SIGKILL mid-stream, restart at once ------------------------------------------------------------------------


def test_a_consumer_killed_mid_stream_and_restarted_at_once_applies_every_event(bus_store_settings: Settings) -> None:
    settings = bus_store_settings
    published = 1500
    publish_deaths(settings, published)
    route(settings)  # departments read their own topics, written by the router
    open_store(settings, "suppression").close()  # the store's tables exist before anyone polls them
    env = settings_env(settings)
    # Static membership, and a session timeout no test waits out: the restart gets the partitions back because
    # it is the same instance, not because the dead one timed out.
    env.update(
        {
            "CIVREG_GROUP_INSTANCE_ID": f"suppression-{uuid.uuid4().hex[:8]}",
            "CIVREG_SESSION_TIMEOUT_MS": "300000",
            "CIVREG_MAX_POLL_INTERVAL_MS": "300000",
        }
    )
    first = subprocess.Popen(
        [*CIVREG, "consume", "-d", "suppression", "--batch-size", "20"],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: sum(outcomes(settings).values()) >= 100 or first.poll() is not None, "the first batches")
        assert first.poll() is None, first.stderr.read().decode()[-2000:] if first.stderr else ""
    finally:
        first.kill()  # SIGKILL: no batch finished, no group left
        first.communicate(timeout=30)
    assert sum(outcomes(settings).values()) < published, "killed too late to be mid-stream"

    restarted = subprocess.run(
        [*CIVREG, "consume", "-d", "suppression", "--until-caught-up"],
        env=env,
        cwd=REPO,
        capture_output=True,
        timeout=150,  # far below the session timeout: only static membership returns the partitions in time
        check=False,
    )
    assert restarted.returncode == 0, restarted.stderr.decode()[-2000:]
    assert outcomes(settings) == {"applied": published}
