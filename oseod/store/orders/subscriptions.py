"""Subscriptions (orders of type SUBSCRIPTION_ORDER) in the indexes of
their collections, by their end time."""

from __future__ import annotations

from collections.abc import Iterable

from .. import keys
from .base import OrderStoreBase
from .layout import _member, _order_id, _score


class OrderSubscriptions(OrderStoreBase):
    """The subscription indexes of the collections."""

    async def subscriptions(self, collection_id: str, active_at: float) -> list[str]:
        """Ids of the subscriptions on ``collection_id`` whose end is after
        ``active_at`` (those cancelled since may be among them)."""
        members = await self._redis.conn.execute_command(
            "ZRANGEBYSCORE", keys.subscriptions(collection_id), f"({_score(active_at)}", "+inf")
        return [_order_id(m) for m in members or ()]

    async def subscriptions_ended(self, collection_id: str, before: float) -> list[str]:
        members = await self._redis.conn.execute_command(
            "ZRANGEBYSCORE", keys.subscriptions(collection_id), "-inf", _score(before))
        return [_order_id(m) for m in members or ()]

    async def subscribed_until(self, order_id: str, collection_ids: Iterable[str]) -> float | None:
        """When the subscription ends (its score in the collections'
        subscription indexes; None: in none of them)."""
        ends = []
        for collection_id in collection_ids:
            score = await self._redis.conn.execute_command("ZSCORE", keys.subscriptions(collection_id),
                                                           _member(order_id))
            if score is not None:
                ends.append(float(score))
        return min(ends) if ends else None

    async def unsubscribe(self, order_id: str, collection_ids: Iterable[str]) -> None:
        """Take the order out of these collections' subscription indexes."""
        for collection_id in collection_ids:
            await self._redis.conn.execute_command("ZREM", keys.subscriptions(collection_id), _member(order_id))
