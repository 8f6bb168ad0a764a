"""The kinds of e-mail oseod sends, one per event worth a person's attention.

A leaf module (the configuration names these kinds in each collection's
``email_events``), so it imports nothing of oseod.
"""

from __future__ import annotations

import enum


class MailEvent(enum.Enum):
    """An e-mail kind; its value names its template file and its entry in a
    collection's ``email_events``."""

    # To the administrators ([email] admins).
    MODERATION = "moderation"  # an order awaits approval
    FAILED_ADMIN = "failed_admin"  # an order failed
    # To the order's owner (their account's e-mail address).
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    BATCH_READY = "batch_ready"  # a batch of a subscription or massive order can be downloaded
    ORDER_READY = "order_ready"  # the whole order can be downloaded
    FAILED = "failed"
    CANCELLED = "cancelled"
    SUBSCRIPTION_ENDED = "subscription_ended"

    @property
    def to_admins(self) -> bool:
        return self in (MailEvent.MODERATION, MailEvent.FAILED_ADMIN)


MAIL_EVENTS: tuple[str, ...] = tuple(event.value for event in MailEvent)
