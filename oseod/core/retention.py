"""The periodic tasks on orders (scheduled in :mod:`oseod.tap`): subscriptions
past their end, results past their availability, orders past their
retention, and the indexing of orders stored by an earlier version."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..model.orders import Item, Order, OrderStatus, StatusInfo
from ..model.progress import ItemChange, StoredResult
from ..model.tasks import Fence
from .orderstate import DAY, FINAL, UNFINISHED, WITH_RESULT, OrderWriter, iso


class Retention(OrderWriter):
    """What the scheduler runs on the orders; each call does a bounded slice and says how much."""

    async def terminate_subscriptions(self) -> int:
        """Subscriptions past their end: Terminated. How many."""
        now = self._clock.seconds()
        ended = 0
        for collection in self._config.collections:
            for order_id in await self._store.subscriptions_ended(collection.id, now):
                order = await self._store.get(order_id)
                if order is not None and not order.status.status.is_final:
                    info = StatusInfo(OrderStatus.Terminated, f"Subscription ended on {iso(now)}", changed_at=now)
                    if await self._store.set_order_status(order_id, info, allowed=UNFINISHED):
                        ended += 1
                await self._store.unsubscribe(order_id, [collection.id])
        if ended:
            self.log.info("{count} subscriptions ended", count=ended)
        return ended

    async def expire_results(self, clean: Callable[[Order, Item], Awaitable[None]], limit: int = 500) -> int:
        """Results completed more than ``item_availability_days`` ago: removed
        by ``clean`` (the processor), and their items say since when they
        are gone. At most ``limit`` per call; how many expired."""
        now = self._clock.seconds()
        due = await self._store.results_completed_before(now - self._config.orders.item_availability_days * DAY,
                                                         limit)
        by_order: dict[str, list[StoredResult]] = {}
        for result in due:
            by_order.setdefault(result.order_id, []).append(result)
        expired: list[StoredResult] = []
        text = f"Result expired on {iso(now)}: no longer downloadable"
        for order_id, results in by_order.items():
            order = await self._store.get(order_id)
            if order is None:
                expired += results  # purged meanwhile
                continue
            wanted = {r.item_id for r in results}
            changes = []
            for item in order.items:
                if item.spec.item_id in wanted and item.status.status in WITH_RESULT:
                    await clean(order, item)
                    changes.append(ItemChange(item.spec.item_id, StatusInfo(item.status.status, text, changed_at=now),
                                              item.completed_at))
            await self._store.set_items_status(order_id, changes, allowed=WITH_RESULT)
            expired += results
        await self._store.forget_results(expired)
        if expired:
            self.log.info("{count} results expired", count=len(expired))
        return len(expired)

    async def index_older_orders(self, *, fence: Fence | None = None) -> int:
        """A periodic task: bring orders stored by an earlier version into
        the operators' indexes and counters, a slice per run (nothing left
        to do costs one GET). How many were indexed."""
        finished, indexed = await self._store.index_older_orders(fence=fence)
        if indexed or not finished:
            self.log.info("{count} orders stored by an earlier version indexed for the console{more}",
                          count=indexed, more="" if finished else "; more at the next run")
        return indexed

    async def purge_final_orders(self, limit: int = 500, *, fence: Fence | None = None) -> int:
        """Orders final and unchanged for ``retention_days``: deleted (0 days:
        never). At most ``limit`` per call; how many. ``fence``: the
        leader's (a deposed leader deletes nothing: Deposed)."""
        days = self._config.orders.retention_days
        if days <= 0:
            return 0
        purged = 0
        for order_id in await self._store.final_before(self._clock.seconds() - days * DAY, limit):
            if await self._store.purge(order_id, FINAL, fence=fence):
                purged += 1
        if purged:
            self.log.info("{count} orders past their retention deleted", count=purged)
        return purged
