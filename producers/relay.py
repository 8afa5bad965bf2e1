"""``civreg relay``: publish a register office's outbox rows to Kafka, in order, and mark them sent.

Why it is safe at every instant (the relay may be SIGKILLed anywhere):

1. read up to ``batch_size`` unsent rows in sequence (``id``) order;
2. publish each with the ``Publisher`` (idempotent, ``acks=all``), keyed by the entry, so one entry's events go to
   one partition in sequence order;
3. wait for the broker's answer for every row of the batch;
4. mark the acknowledged rows sent, in one transaction.

Killed before 4, the rows are still unsent and the next run publishes them again: at-least-once, and the copy is
absorbed downstream because consumers skip an event id whose outcome they recorded. A row is never marked sent
unless the broker acknowledged it. When the broker is down, step 3 waits (the relay reports not ready and logs) and
undelivered rows are retried with exponential backoff; when the database is down, the relay reconnects with
backoff. One relay per outbox: a second one waits for the lock (PostgreSQL advisory lock, SQLite lock file), so
rows are never published by two relays in two orders. Logs and metrics name row ids, event ids, event types and
counts, never a payload.
"""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import psycopg

from civreg.errors import CivregError
from civreg.logs import get_logger
from civreg.metrics import Check, OperatorsEndpoint, RelayMetrics, default_metrics, default_relay_metrics
from civreg.settings import Settings
from producers.outbox import InvalidOutboxEvent, Outbox, OutboxError, OutboxRow, event_from_payload
from producers.publisher import DeliveryReport, Publisher, PublishError

__all__ = ["Relay", "RelayReport", "run_relay"]

log = get_logger(__name__)

_DATABASE_ERRORS = (sqlite3.Error, psycopg.Error, OutboxError, OSError)
_BACKLOG_REFRESH_SECONDS = 1.0


@dataclass
class RelayReport:
    """What one run did (counts only)."""

    published: int = 0
    """Rows acknowledged by the broker and marked sent."""
    batches: int = 0
    retries: int = 0
    rejected: int = 0
    backlog: int = 0
    """Rows still unsent when the run ended (rejected ones included)."""


class Relay:
    """Relays one outbox (a SQLite file or a PostgreSQL DSN) with one publisher; see the module doc."""

    def __init__(
        self,
        settings: Settings,
        outbox: str | Path,
        *,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        flush_timeout: float = 10.0,
        max_backoff: float = 30.0,
        stop_grace: float = 20.0,
        metrics: RelayMetrics | None = None,
        publisher_factory: Callable[[Callable[[DeliveryReport], None]], Publisher] | None = None,
    ) -> None:
        self.settings = settings
        self.target = outbox
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.flush_timeout = flush_timeout
        self.max_backoff = max_backoff
        self.stop_grace = stop_grace
        self.metrics = metrics or default_relay_metrics()
        self._publisher_factory = publisher_factory or (
            lambda on_delivery: Publisher(settings, on_delivery=on_delivery)
        )
        self._wake = threading.Event()
        self._stopping = False
        self._stop_requested_at: float | None = None
        self._outbox: Outbox | None = None
        self._locked = False
        self._broker_ok = True
        self._database_ok = False
        self._delivered: dict[str, bool] = {}
        self._backlog_checked = 0.0
        self.report = RelayReport()
        self._publisher: Publisher | None = None

    # ---- control ------------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Finish the batch in hand (its rows marked sent once acknowledged) and return from ``run``."""
        self._stopping = True
        if self._stop_requested_at is None:
            self._stop_requested_at = time.monotonic()
        self._wake.set()

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT finish the batch in hand and exit cleanly."""

        def handle(signum: int, _frame: FrameType | None) -> None:
            log.info("stopping", signal=signal.Signals(signum).name)
            self.stop()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    def health(self) -> Check:
        """Liveness: serving and not stopping (an outage makes the relay unready, never dead)."""
        return Check(False, "stopping") if self._stopping else Check(True, "relaying")

    def readiness(self) -> Check:
        """Ready when it holds the outbox lock, reaches the database and the broker acknowledged its last batch."""
        if self._stopping:
            return Check(False, "stopping")
        if not self._database_ok:
            return Check(False, "outbox database unreachable")
        if not self._locked:
            return Check(False, "waiting for the outbox lock (another relay holds it)")
        if not self._broker_ok:
            return Check(False, "broker not acknowledging")
        return Check(True, "ready")

    # ---- the loop -----------------------------------------------------------------------------------------

    def run(self, *, until_empty: bool = False, once: bool = False) -> RelayReport:
        """Relay until stopped; ``until_empty``: until no unsent row is left; ``once``: one batch (or none)."""
        backoff = 0.0
        self._publisher = self._publisher_factory(self._on_delivery)
        try:
            while not self._stopping:
                if backoff:
                    self._sleep(backoff)
                    if self._stopping:
                        break
                try:
                    outbox = self._open()
                    if outbox is None:  # another relay has it
                        self._sleep(self.poll_interval)
                        continue
                    rows = outbox.unsent(self.batch_size)
                    self._refresh_backlog(outbox, force=not rows)
                    if not rows:
                        backoff = 0.0
                        if until_empty or once:
                            break
                        self._sleep(self.poll_interval)
                        continue
                    complete = self._relay_batch(outbox, rows)
                except _DATABASE_ERRORS as exc:
                    self._lost_database(exc)
                    backoff = self._next_backoff(backoff)
                    self.metrics.retries.labels("database").inc()
                    self.report.retries += 1
                    continue
                if complete:
                    backoff = 0.0
                    if once:
                        break
                else:
                    backoff = self._next_backoff(backoff)
                    self.metrics.retries.labels("broker").inc()
                    self.report.retries += 1
        finally:
            self.close()
        return self.report

    def close(self) -> None:
        """Release the publisher (what it holds was never marked sent) and the database (idempotent)."""
        self.metrics.ready.set(0)
        if self._publisher is not None:
            with contextlib.suppress(PublishError):  # unmarked rows: the next run sends them again
                self._publisher.flush(min(self.flush_timeout, 5.0))
            self._publisher = None
        if self._outbox is not None:
            with contextlib.suppress(*_DATABASE_ERRORS):
                self._refresh_backlog(self._outbox, force=True)
            self._outbox.close()
            self._outbox = None
            self._locked = False

    # ---- one batch ----------------------------------------------------------------------------------------

    def _relay_batch(self, outbox: Outbox, rows: list[OutboxRow]) -> bool:
        """Publish ``rows``, wait for the broker, mark the acknowledged ones; True when every row was."""
        assert self._publisher is not None
        self._delivered = {}
        queued: dict[str, int] = {}
        refused = False
        for row in rows:
            try:
                event = event_from_payload(row.payload, event_id=row.event_id)
            except InvalidOutboxEvent as exc:
                self._reject(outbox, row, str(exc))
                continue
            try:
                self._publisher.publish(event)
            except PublishError as exc:  # refused before queueing: stop here, keeping the entry's order
                log.warning("relay-publish-refused", row_id=row.id, event_id=row.event_id, error=exc.failures[0].error)
                refused = True
                break
            queued[row.event_id] = row.id
        self._wait_for_broker()
        sent = [queued[event_id] for event_id, ok in self._delivered.items() if ok and event_id in queued]
        outbox.mark_sent(sent)
        self.report.batches += 1
        if sent:
            self.report.published += len(sent)
            self.metrics.published_rows.inc(len(sent))
            self.metrics.last_sent.set(time.time())
        undelivered = len(queued) - len(sent)
        self._broker_ok = not refused and undelivered == 0
        self.metrics.ready.set(1 if self._ready() else 0)
        log.info("relay-batch", rows=len(rows), sent=len(sent), undelivered=undelivered, first_row_id=rows[0].id)
        return self._broker_ok

    def _wait_for_broker(self) -> None:
        """Wait until the broker answered every queued row; never give up on one (or re-send it) while in flight.

        Unconfirmed rows stay in librdkafka's queue until delivered or timed out (``message.timeout.ms``);
        re-publishing them meanwhile would only add copies. After a stop request, wait ``stop_grace`` at most:
        rows left unconfirmed are not marked, so the next run sends them.
        """
        assert self._publisher is not None
        while True:
            try:
                self._publisher.flush(self.flush_timeout)
                return
            except PublishError as exc:
                if not exc.unconfirmed:
                    log.warning("relay-undelivered", failed=exc.failed)
                    return
                self._broker_ok = False
                self.metrics.ready.set(0)
                log.warning("relay-waiting-for-broker", unconfirmed=exc.unconfirmed, failed=exc.failed)
                if self._stop_requested_at is not None and time.monotonic() - self._stop_requested_at > self.stop_grace:
                    log.warning("relay-stopping-with-unconfirmed-rows", unconfirmed=exc.unconfirmed)
                    return

    def _on_delivery(self, report: DeliveryReport) -> None:
        # A later answer wins: an event both failed and delivered cannot happen within one produce.
        self._delivered[report.event_id] = report.delivered

    def _reject(self, outbox: Outbox, row: OutboxRow, reason: str) -> None:
        outbox.reject(row.id, reason)
        self.report.rejected += 1
        self.metrics.rejected_rows.inc()
        log.error("relay-row-rejected", row_id=row.id, event_id=row.event_id, event_type=row.event_type, reason=reason)

    # ---- database -----------------------------------------------------------------------------------------

    def _open(self) -> Outbox | None:
        if self._outbox is None:
            self._outbox = Outbox.open(self.target)
            self._locked = False
            log.info("relay-outbox-open", engine=self._outbox.engine, outbox=self._outbox.where)
        self._database_ok = True
        if not self._locked:
            self._locked = self._outbox.try_lock_relay()
            if not self._locked:
                log.info("relay-waiting-for-lock", outbox=self._outbox.where)
                self.metrics.ready.set(0)
                return None
        return self._outbox

    def _lost_database(self, exc: BaseException) -> None:
        self._database_ok = False
        self.metrics.ready.set(0)
        log.warning("relay-database-error", error_class=type(exc).__name__)
        if self._outbox is not None:
            with contextlib.suppress(*_DATABASE_ERRORS):
                self._outbox.close()
            self._outbox = None
            self._locked = False

    def _refresh_backlog(self, outbox: Outbox, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._backlog_checked < _BACKLOG_REFRESH_SECONDS:
            return
        self._backlog_checked = now
        rows, oldest = outbox.backlog()
        self.report.backlog = rows
        self.metrics.backlog_rows.set(rows)
        self.metrics.oldest_unsent.set(oldest.timestamp() if oldest is not None else 0)
        self.metrics.ready.set(1 if self._ready() else 0)

    # ---- helpers ------------------------------------------------------------------------------------------

    def _ready(self) -> bool:
        return self.readiness().ok

    def _next_backoff(self, current: float) -> float:
        return min(self.max_backoff, max(0.5, current * 2))

    def _sleep(self, seconds: float) -> None:
        self._wake.wait(seconds)
        if not self._stopping:
            self._wake.clear()


def run_relay(
    settings: Settings,
    outbox: str | Path,
    *,
    batch_size: int = 500,
    poll_interval: float = 1.0,
    until_empty: bool = False,
    once: bool = False,
    metrics_port: int | None = None,
    handle_signals: bool = True,
) -> RelayReport:
    """Run a relay with its operators' endpoint (``metrics_port``, default ``settings.metrics_port``; 0 = none)."""
    relay = Relay(settings, outbox, batch_size=batch_size, poll_interval=poll_interval)
    if handle_signals:
        relay.install_signal_handlers()
    port = settings.metrics_port if metrics_port is None else metrics_port
    endpoint: OperatorsEndpoint | None = None
    if port:
        endpoint = OperatorsEndpoint(  # the global registry: the publisher's series and the relay's
            default_metrics(), port=port, host=settings.metrics_host, health=relay.health, ready=relay.readiness
        )
    try:
        return relay.run(until_empty=until_empty, once=once)
    except CivregError:
        raise
    finally:
        if endpoint is not None:
            endpoint.close()
