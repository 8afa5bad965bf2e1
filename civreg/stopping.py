"""A long-running service's stop request: SIGTERM or SIGINT at any moment, start-up included, ends it cleanly.

Why a process-wide flag rather than a handler per consumer: the signal may come while the interpreter is still
importing, while the service waits for its schema registry or its topics, or while it connects. The handler is
installed first (``install_stop_handlers``, from ``python -m civreg consume`` before any heavy import) and only
records the request; every start-up wait sleeps through ``sleep_unless_stopping`` / ``raise_if_stopping``, which
end the wait with ``StopRequested``; the consume loop reads the same flag and finishes the batch in hand.

Only cheap standard-library imports here: this module is imported before anything slow.
"""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType

__all__ = [
    "StopRequested",
    "install_stop_handlers",
    "raise_if_stopping",
    "request_stop",
    "reset",
    "sleep_unless_stopping",
    "stop_requested",
    "stop_signal",
]


class _State:
    """The process's stop request (module state; a signal handler can only reach globals)."""

    stop = threading.Event()
    signal_name: str | None = None
    installed = False


_STOP = _State.stop


class StopRequested(Exception):
    """Raised out of a start-up wait when the service was asked to stop: the caller exits cleanly (status 0)."""

    def __init__(self) -> None:
        super().__init__(f"asked to stop ({_State.signal_name or 'stop requested'}) before consuming")


def _handle(signum: int, _frame: FrameType | None) -> None:
    _State.signal_name = signal.Signals(signum).name
    _STOP.set()


def install_stop_handlers() -> None:
    """SIGTERM and SIGINT request a stop (idempotent; main thread only).

    A signal a parent held blocked while the interpreter started (the window before any code of ours runs) is
    delivered as soon as it is unblocked here, so it too becomes a clean stop.
    """
    if _State.installed or threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGTERM, _handle)
    signal.signal(signal.SIGINT, _handle)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    _State.installed = True


def request_stop() -> None:
    """Ask the service to stop, as a signal would (tests, embedding code)."""
    _STOP.set()


def reset() -> None:
    """Forget an earlier request (an embedding process that runs services one after another, tests)."""
    _State.signal_name = None
    _STOP.clear()


def stop_requested() -> bool:
    """True once a stop was requested."""
    return _STOP.is_set()


def stop_signal() -> str | None:
    """The name of the signal that asked for the stop, if one did."""
    return _State.signal_name


def raise_if_stopping() -> None:
    """End a start-up step with ``StopRequested`` if a stop was requested."""
    if _STOP.is_set():
        raise StopRequested


def sleep_unless_stopping(seconds: float) -> None:
    """Sleep ``seconds`` (a retry's backoff), or raise ``StopRequested`` as soon as a stop is requested."""
    deadline = time.monotonic() + seconds
    while not _STOP.is_set():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        _STOP.wait(min(remaining, 0.1))
    raise StopRequested
