"""Taking a batch from a consumer: wait for the first record, then take what has already arrived.

Why not ``consume(batch_size, timeout)``: librdkafka returns from it only when the batch is full or the timeout
has passed, so below ``batch_size`` records per timeout (any steady load short of a back-fill) every record waited
out the whole timeout before it was even looked at: the department consumer's 0.5 s, and the router's 0.2 s once
per lane in turn. Here the wait ends at the first record, and the rest of the batch is what the client has
already fetched, without waiting. Batches still fill in a back-fill (the client fetches well ahead), and under a
steady load they grow with it: whatever arrived while the previous batch was being handled. One transaction per
batch, as before: nothing about what a batch guarantees changes, only how long its first record waited for it.
"""

from __future__ import annotations

from confluent_kafka import Consumer, Message

__all__ = ["take_batch"]


def take_batch(consumer: Consumer, batch_size: int, wait: float) -> list[Message]:
    """Up to ``batch_size`` messages (records or errors): wait up to ``wait`` seconds for the first, not for more."""
    if wait <= 0 or batch_size <= 1:
        return list(consumer.consume(batch_size, max(wait, 0.0)))
    first = consumer.consume(1, wait)
    if not first:
        return []
    return [*first, *consumer.consume(batch_size - 1, 0)]
