"""Counters for the operators' overview, kept by the scripts that make the
changes they count (:mod:`oseod.store.orders`): items per status across all
orders, and per hour and per minute the items completed and failed and the
downloads. Time buckets are hashes with a TTL (two days for hours, two hours
for minutes), so they cost nothing to keep and nothing to clean up."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from ..model.orders import OrderStatus
from . import keys, lua

HOUR = 3600
MINUTE = 60
HOUR_TTL = 2 * 86400
MINUTE_TTL = 2 * 3600
# What the buckets count (their hash fields).
COMPLETED, FAILED, DOWNLOADS = "completed", "failed", "downloads"

# The Lua that counts one event in both buckets of the moment (a fragment
# the scripts that count include; lua/bucket_hook.lua).
BUCKET_HOOK = lua.load("bucket_hook", HOUR_TTL=HOUR_TTL, MINUTE_TTL=MINUTE_TTL)
_READ_HASHES = lua.load("stats_read_hashes")
_SIZES = lua.load("stats_sizes")


def bucket_keys(at: float) -> list[str]:
    """The hour and minute buckets of the moment ``at``."""
    return [keys.hour_bucket(int(at // HOUR) * HOUR), keys.minute_bucket(int(at // MINUTE) * MINUTE)]


@attrs.frozen
class Bucket:
    start: float
    completed: int
    failed: int
    downloads: int


class StatsStore:
    def __init__(self, redis: Any) -> None:
        self._redis = redis

    async def items_by_status(self) -> dict[str, int]:
        found = await self._redis.conn.hgetall(keys.items_by_status()) or {}
        counts = {s.value: 0 for s in OrderStatus}
        counts.update({str(k): int(v) for k, v in found.items()})
        return counts

    async def orders_by_status(self) -> dict[str, int]:
        sizes = await self._redis.conn.eval(_SIZES, [keys.orders_in_status(None, s.value) for s in OrderStatus], [])
        return {s.value: int(n) for s, n in zip(OrderStatus, sizes)}

    async def hours(self, now: float, count: int = 24) -> list[Bucket]:
        """The last ``count`` hours, oldest first, the current one last."""
        current = int(now // HOUR) * HOUR
        return await self._buckets([current - HOUR * n for n in reversed(range(count))], keys.hour_bucket)

    async def minutes(self, now: float, count: int) -> list[Bucket]:
        """The last ``count`` minutes, oldest first, the current one last."""
        current = int(now // MINUTE) * MINUTE
        return await self._buckets([current - MINUTE * n for n in reversed(range(count))], keys.minute_bucket)

    async def _buckets(self, starts: Sequence[int], key: Any) -> list[Bucket]:
        rows = await self._redis.conn.eval(_READ_HASHES, [key(s) for s in starts], [COMPLETED, FAILED, DOWNLOADS])
        return [Bucket(float(start), *(int(v or 0) for v in row)) for start, row in zip(starts, rows)]
