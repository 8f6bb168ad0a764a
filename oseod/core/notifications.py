"""WS-Notification subscriptions: a user hears of their own orders' ends.

A consumer address gets the same checks as a call-back's wsa:ReplyTo
(http or https, not the provider's own network unless allowed), since the
daemon will POST to it. Subscriptions live until their end, or until the
user unsubscribes; only the subscriber may unsubscribe.
"""

from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import urlsplit

from twisted.internet.interfaces import IReactorTime

from ..model.accounts import Account
from ..model.errors import invalid
from ..model.orders import Fragment
from ..model.subscriptions import Subscription
from ..store.wsn import SubscriptionStore
from .destinations import literal_refusal


class NotificationSubscriptions:
    def __init__(self, store: SubscriptionStore, clock: IReactorTime, allowed_networks: tuple[str, ...] = ()) -> None:
        self._store = store
        self._clock = clock
        self._allowed = allowed_networks

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.seconds(), timezone.utc)

    async def subscribe(self, account: Account, consumer: str, reference_parameters: tuple[Fragment, ...],
                        topics: frozenset[str], dialect: str, soap_version: str,
                        ends: datetime | None) -> Subscription:
        parts = urlsplit(consumer)
        try:
            host = parts.hostname or ""
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            host = ""
        if parts.scheme not in ("http", "https") or not host:
            raise invalid("ConsumerReference", f"the ConsumerReference address {consumer[:200]!r} is not an "
                                               f"http or https URL")
        if (refusal := literal_refusal(host, self._allowed)) is not None:
            raise invalid("ConsumerReference", f"the ConsumerReference address {consumer[:200]!r}: {refusal}")
        now = self._clock.seconds()
        return await self._store.add(account.name, consumer, reference_parameters, topics, dialect, soap_version,
                                     ends.timestamp() if ends is not None else None, now)

    async def unsubscribe(self, account: Account, subscription_id: str) -> None:
        if not await self._store.remove(account.name, subscription_id):
            raise invalid("SubscriptionId", f"you have no subscription {subscription_id[:80]!r}")
