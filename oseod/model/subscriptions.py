"""A WS-Notification subscription to order status changes (WS-BaseNotification
Subscribe): who is told what, where, and until when."""

from __future__ import annotations

import attrs

from .orders import Fragment


@attrs.frozen
class Subscription:
    subscription_id: str
    owner: str
    consumer: str  # the ConsumerReference's address
    reference_parameters: tuple[Fragment, ...]  # the consumer's, sent back as headers
    topics: frozenset[str]
    dialect: str
    soap_version: str  # "1.1" or "1.2"
    ends_at: float | None  # Unix time; None: no end
