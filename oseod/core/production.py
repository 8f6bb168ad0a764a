"""Item progress, for the processing engine (:mod:`oseod.jobs.engine`): items
start, complete or fail (one by one or a batch at a time), and the order's
status follows from them; a massive order grows by batches."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..model import codec
from ..model.jobs import Job
from ..model.orders import Item, Order, OrderStatus
from .orderstate import STARTABLE, UNFINISHED, OrderWriter


class ItemProgress(OrderWriter):
    """The engine's writes to the orders it processes."""

    async def find(self, order_id: str) -> Order | None:
        """Any order, whoever owns it (the engine works on everybody's)."""
        return await self._store.get(order_id)

    async def start_item(self, order_id: str, item_id: str, info: str = "In production") -> bool:
        """The item is being processed (again: ``info`` may say which attempt).
        False when the item is not waiting or running (e.g. cancelled)."""
        return (await self.start_items(order_id, [item_id], info))[item_id]

    async def complete_item(self, order_id: str, item_id: str, info: str = "Completed") -> bool:
        """The item's result is available. False when the item was already
        final (e.g. cancelled meanwhile): the result should then be dropped."""
        return (await self.complete_items(order_id, [item_id], info))[item_id]

    async def fail_item(self, order_id: str, item_id: str, reason: str) -> bool:
        """The item failed for good (no more attempts), because of ``reason``."""
        return (await self.fail_items(order_id, {item_id: reason}))[item_id]

    # The same for several items of one order in one step (a batch): one
    # write for the items, one for the order's status.

    async def start_items(self, order_id: str, item_ids: Sequence[str], info: str = "In production") -> dict[str, bool]:
        return await self._items_change(order_id, {i: info for i in item_ids}, OrderStatus.InProduction, STARTABLE)

    async def complete_items(self, order_id: str, item_ids: Sequence[str], info: str = "Completed") -> dict[str, bool]:
        return await self._items_change(order_id, {i: info for i in item_ids}, OrderStatus.Completed, UNFINISHED)

    async def batch_ready(self, order_id: str, batch: int) -> None:
        """A batch of a subscription or massive order was made: its owner
        hears of it (by e-mail, when on), unless the order is over (then the
        order's own mail says it all)."""
        order = await self._store.get(order_id)
        if order is None or order.status.status.is_final:
            return
        await self._store.queue_mail(order_id, {"event": "batch_ready", "batch": batch,
                                                "info": codec.dumps(order.status)}, self._clock.seconds())

    async def fail_items(self, order_id: str, reasons: Mapping[str, str]) -> dict[str, bool]:
        """``reasons``: per item id, why it failed."""
        return await self._items_change(order_id, {i: r or "Failed" for i, r in reasons.items()}, OrderStatus.Failed,
                                        UNFINISHED)

    async def add_batch(self, order_id: str, items: Sequence[Item], job: Job, marker: str) -> bool:
        """Add a batch of items to an unfinished order, with its job, once per
        ``marker`` (the engine expanding a massive order)."""
        return await self._store.add_items(order_id, items, job, marker=marker)
