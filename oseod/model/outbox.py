"""Messages of the outbox (call-backs, e-mails, WS-Notifications, quotations)
as the senders claim them, and the record of one given up."""

from __future__ import annotations

from typing import Any

import attrs


@attrs.frozen
class OutboxMessage:
    """The first message of a queue, as claimed."""

    channel: str
    name: str  # the queue's subject: an order id for call-backs
    seq: int
    data: dict[str, Any]  # what the writer put in it (status, StatusInfo JSON, ...)
    attempts: int = 0
    error: str = ""

    @property
    def member(self) -> str:
        return f"{self.channel}:{self.name}"


@attrs.frozen
class Failure:
    """A message given up after its last attempt."""

    channel: str
    name: str
    seq: int
    at: float
    attempts: int
    error: str
