"""WS-Notification subscriptions (wsnt:Subscribe), per owner, in Redis.

A subscription is a hash (owner, consumer endpoint, topics, dialect, SOAP
version, end) and an entry in its owner's sorted set scored by its end. An
order of the owner that reaches a final status is queued for each of the
owner's live subscriptions by the script that changes the status
(``lua/order_set_status.lua``, run by :mod:`oseod.store.orders`, through
:data:`NOTIFY_HOOK`): one outbox queue per subscription, so that a slow or
dead consumer holds up only its own messages. A subscription past its end
is no longer written to, and its hash expires with it.
"""

from __future__ import annotations

import json
import math
import secrets
from typing import Any

from ..model.orders import Fragment
from ..model.subscriptions import Subscription
from . import keys, lua

WSN = "wsn"

# Lua, for the order-changing script (a fragment it includes:
# lua/notify_hook.lua): queues a final status for each live subscription.
NOTIFY_HOOK = lua.load("notify_hook")


class SubscriptionStore:
    def __init__(self, redis: Any) -> None:
        self._redis = redis

    async def add(self, owner: str, consumer: str, reference_parameters: tuple[Fragment, ...], topics: frozenset[str],
                  dialect: str, soap_version: str, ends_at: float | None, now: float) -> Subscription:
        subscription = Subscription(secrets.token_urlsafe(16), owner, consumer, reference_parameters, topics,
                                    dialect, soap_version, ends_at)
        key = keys.wsn_subscription(subscription.subscription_id)
        transaction = await self._redis.conn.multi()
        await transaction.hset(key, "data", json.dumps({
            "owner": owner, "consumer": consumer, "parameters": [[f.name, f.xml] for f in reference_parameters],
            "topics": sorted(topics), "dialect": dialect, "soap": soap_version, "ends_at": ends_at}))
        if ends_at is not None:
            await transaction.expire(key, max(1, math.ceil(ends_at - now)))
        await transaction.zadd(keys.wsn_subscriptions(owner), "+inf" if ends_at is None else repr(ends_at),
                               subscription.subscription_id)
        await transaction.commit()
        return subscription

    async def get(self, subscription_id: str) -> Subscription | None:
        text = await self._redis.conn.hget(keys.wsn_subscription(subscription_id), "data")
        if not text:
            return None
        data = json.loads(text)
        return Subscription(subscription_id, data["owner"], data["consumer"],
                            tuple(Fragment(name, xml) for name, xml in data["parameters"]),
                            frozenset(data["topics"]), data["dialect"], data["soap"], data["ends_at"])

    async def remove(self, owner: str, subscription_id: str) -> bool:
        """Unsubscribe; False when ``owner`` has no such subscription."""
        found = await self.get(subscription_id)
        if found is None or found.owner != owner:
            return False
        transaction = await self._redis.conn.multi()
        await transaction.delete(keys.wsn_subscription(subscription_id))
        await transaction.zrem(keys.wsn_subscriptions(owner), subscription_id)
        await transaction.commit()
        return True
