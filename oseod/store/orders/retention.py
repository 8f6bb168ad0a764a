"""Retention: final orders purged, results expired, and orders stored by an
older version added to the indexes of today's layout."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence

from ...model import codec
from ...model.orders import OrderStatus
from .. import keys
from ..leader import Fence
from ..outbox import ORDER_CHANNELS
from .base import OrderStoreBase
from .layout import _STATUSES, LAYOUT_VERSION, _fenced, _member, _order_id, _order_keys, _score, _statuses, script
from .values import NoSuchOrder, StoredResult

_PURGE = script("order_purge")
_INDEX_OLDER = script("order_index_older")


class OrderRetention(OrderStoreBase):
    """What the periodic tasks of retention and migration call (the writes fenced by the leader)."""

    async def index_older_orders(self, ids: int = 500, calls: int = 20, *,
                                 fence: Fence | None = None) -> tuple[bool, int]:
        """Add orders stored by a version before the collection and type
        indexes and the item counters to them, ``ids`` order ids per script
        (a few milliseconds of Redis), at most ``calls`` scripts. Whether
        every order is indexed now (then this is one GET), and how many were
        indexed by this call."""
        indexed = 0
        for _ in range(calls):
            finished, count = await _fenced(self._redis.conn.eval(
                _INDEX_OLDER,
                [keys.items_by_status(), keys.schema_version(), keys.index_cursor(), keys.orders_updated(None),
                 keys.order_sequence(), keys.leader_epoch()],
                [keys.order(""), keys.orders_of_type(""), keys.orders_in_collection(""), str(ids), LAYOUT_VERSION,
                 codec.json_text([s.value for s in _STATUSES]), "" if fence is None else fence.argument]))
            indexed += int(count)
            if str(finished) == "1":
                return True, indexed
        return False, indexed

    async def purge(self, order_id: str, statuses: Collection[OrderStatus], *, fence: Fence | None = None) -> bool:
        """Remove the order (and everything about it) if it is in one of
        ``statuses``; False when it is not. Final orders only: an unfinished
        one would leave its owner's count of active items wrong. With the
        leader's ``fence``, Deposed (and nothing removed) when a newer leader
        exists."""
        if not all(s.is_final for s in statuses):
            raise ValueError("only final orders are purged")
        identity = await self._identity(order_id)
        logs = [keys.order_downloads(order_id), *(keys.outbox_log(channel, order_id) for channel in ORDER_CHANNELS)]
        answer = int(await _fenced(self._redis.conn.eval(
            _PURGE, _order_keys(order_id, identity, 0.0) + logs + [keys.leader_epoch()],
            [_member(order_id), _statuses(statuses), str(len(logs)), "" if fence is None else fence.argument])))
        if answer == -1:
            raise NoSuchOrder(order_id)
        if answer == 1:
            self._orders.drop(order_id)
            self._identities.pop(order_id, None)
        return answer == 1

    async def final_before(self, moment: float, limit: int) -> list[str]:
        """Ids of orders in a final status whose last update is before ``moment``."""
        found: list[str] = []
        for status in _STATUSES:
            if status.is_final and len(found) < limit:
                members = await self._redis.conn.execute_command(
                    "ZRANGEBYSCORE", keys.orders_in_status(None, status.value), "-inf", f"({_score(moment)}",
                    "LIMIT", "0", str(limit - len(found)))
                found += [_order_id(m) for m in members or ()]
        return found

    async def results_completed_before(self, moment: float, limit: int) -> list[StoredResult]:
        """Results completed before ``moment``, oldest first."""
        members = await self._redis.conn.execute_command(
            "ZRANGEBYSCORE", keys.results_by_completion(), "-inf", f"({_score(moment)}", "LIMIT", "0", str(limit))
        found = []
        for member in members or ():
            order_member, item_id = json.loads(member)
            found.append(StoredResult(_order_id(order_member), item_id, member))
        return found

    async def forget_results(self, results: Sequence[StoredResult]) -> None:
        """Take these results out of the expiry index (they have expired)."""
        if results:
            await self._redis.conn.execute_command("ZREM", keys.results_by_completion(),
                                                   *(result.entry for result in results))
