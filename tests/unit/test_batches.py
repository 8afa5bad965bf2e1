"""How a batch is taken from a consumer (``consumers.runtime.batches``) and how the router shares decoding between
its lanes: pure logic, with a stand-in for the client's ``consume`` (the real client runs in the integration tests)."""

from __future__ import annotations

from typing import Any, cast

import pytest
from confluent_kafka import Consumer

from consumers.routing.router import _SharedDecoder
from consumers.runtime.batches import take_batch
from schemas.codec import DecodeError


class _Queue:
    """``consume(n, timeout)`` over a list of already-fetched messages, noting every call."""

    def __init__(self, fetched: list[str]) -> None:
        self.fetched = fetched
        self.calls: list[tuple[int, float]] = []

    def consume(self, num_messages: int, timeout: float) -> list[str]:
        self.calls.append((num_messages, timeout))
        taken, self.fetched = self.fetched[:num_messages], self.fetched[num_messages:]
        return taken


def _take(queue: _Queue, batch_size: int, wait: float) -> list[Any]:
    return list(take_batch(cast(Consumer, queue), batch_size, wait))


def test_a_batch_waits_only_for_its_first_record_then_takes_what_has_arrived() -> None:
    queue = _Queue(["a", "b", "c"])
    assert _take(queue, 500, 0.5) == ["a", "b", "c"]
    # Never consume(500, 0.5): that waits until 500 have arrived or the timeout has passed.
    assert queue.calls == [(1, 0.5), (499, 0)]


def test_a_batch_never_exceeds_its_size_and_an_idle_wait_takes_nothing_more() -> None:
    queue = _Queue([str(n) for n in range(12)])
    assert _take(queue, 5, 0.5) == ["0", "1", "2", "3", "4"]
    empty = _Queue([])
    assert _take(empty, 5, 0.5) == []
    assert empty.calls == [(1, 0.5)]
    assert _take(_Queue(["x", "y"]), 5, 0) == ["x", "y"]


class _Codec:
    def __init__(self) -> None:
        self.decoded: list[bytes | None] = []

    def decode(self, data: bytes | None) -> Any:
        self.decoded.append(data)
        if data == b"bad":
            raise DecodeError("truncated", "too short")
        return ("event", data)


def test_the_router_decodes_each_registration_once_for_all_lanes() -> None:
    codec = _Codec()
    decoder = _SharedDecoder(codec, size=2)  # type: ignore[arg-type]
    first = decoder.decode(b"one")
    assert decoder.decode(b"one") is first  # a second lane: the same (frozen) event, not decoded again
    assert codec.decoded == [b"one"]
    decoder.decode(b"two")
    decoder.decode(b"three")  # the oldest is forgotten beyond ``size``
    decoder.decode(b"one")
    assert codec.decoded == [b"one", b"two", b"three", b"one"]
    for _ in range(2):  # what does not decode is never kept: every lane dead-letters it
        with pytest.raises(DecodeError):
            decoder.decode(b"bad")
    assert codec.decoded.count(b"bad") == 2
