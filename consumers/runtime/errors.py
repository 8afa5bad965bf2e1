"""What a handler raises says what happens to the message.

- ``TransientError``: the batch is rolled back and retried with backoff (a database briefly unavailable).
- ``PermanentError``: this event can never be applied; it is dead-lettered and the consumer goes on.
- ``PoisonMessage``: the message cannot even be read as an event; dead-lettered likewise.

Messages must name the field and the rule, never a person's data: they go into logs and dead-letter headers.
"""

from __future__ import annotations

from civreg.errors import CivregError

__all__ = ["PermanentError", "PoisonMessage", "TransientError"]


class TransientError(CivregError):
    """A failure that may succeed on retry; the whole batch is retried."""


class PermanentError(CivregError):
    """The event cannot be applied; it goes to the dead-letter topic with this message as the reason."""

    reason = "handler-rejected"


class PoisonMessage(PermanentError):
    """The message cannot be decoded into an event."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
