"""Download records, for the deliverables (:mod:`.deliverables`): a file or a
package fetched completely makes its items Downloaded (and the order, once
all its items are); every transfer, complete or not, is logged with the
order for operators."""

from __future__ import annotations

from collections.abc import Sequence

from ..model.orders import OrderStatus, StatusInfo
from ..model.progress import ItemChange
from ..model.transfers import Transfer
from .orderstate import WITH_RESULT, OrderWriter


class DownloadRecords(OrderWriter):
    """What the file transports report, through the deliverables."""

    async def record_download(self, order_id: str, item_id: str, name: str, files: Sequence[str]) -> bool:
        """A file of the item was downloaded completely (``files``: all of
        the item's). Once every one has been, the item is Downloaded (and the
        order, once all its items are). Whether the item is Downloaded now."""
        now = self._clock.seconds()
        done = await self._store.record_download(order_id, item_id, name, now)
        self.log.info("{file} of item {item_id}, order {order_id}, downloaded", file=name, item_id=item_id,
                      order_id=order_id)
        if not set(files) <= done:
            return False
        info = StatusInfo(OrderStatus.Downloaded, "Downloaded", changed_at=now)
        order = await self._store.get(order_id)
        completed_at = next((i.completed_at for i in order.items if i.spec.item_id == item_id), None) if order else None
        moved = await self._store.set_items_status(order_id, [ItemChange(item_id, info, completed_at)],
                                                   allowed={OrderStatus.Completed, OrderStatus.Downloaded})
        if any(moved):
            await self._derive(order_id)
        return True

    async def record_package_download(self, order_id: str, item_ids: Sequence[str], name: str) -> None:
        """The order's package ``name``, holding ``item_ids``, was downloaded
        completely: each of those items is Downloaded (and the order, once
        all its items are)."""
        now = self._clock.seconds()
        await self._store.record_downloads(order_id, item_ids, name, now)
        self.log.info("package {file} of order {order_id} downloaded ({count} items)", file=name,
                      order_id=order_id, count=len(item_ids))
        order = await self._store.get(order_id)
        if order is None:
            return
        held = set(item_ids)
        info = StatusInfo(OrderStatus.Downloaded, "Downloaded", changed_at=now)
        changes = [ItemChange(i.spec.item_id, info, i.completed_at) for i in order.items if i.spec.item_id in held]
        moved = await self._store.set_items_status(order_id, changes, allowed=WITH_RESULT)
        if any(moved):
            await self._derive(order_id)

    async def record_transfer(self, transfer: Transfer, order_id: str) -> None:
        """One transfer of the order's results ended (complete or not): logged
        with the order, for operators."""
        await self._store.record_transfer(order_id, transfer)
