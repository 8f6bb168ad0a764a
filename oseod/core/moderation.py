"""What operators do to orders (the console, the admin API): approve or
reject an order waiting for moderation, cancel any order, retry its failed
items, announce a subscription timeslot."""

from __future__ import annotations

from datetime import datetime, timezone

import attrs

from ..model.errors import RequestRejected, invalid
from ..model.orders import Item, Order, OrderStatus, OrderType, StatusInfo
from ..model.progress import ItemChange
from .orderstate import (
    REJECTED,
    WITH_RESULT,
    OrderWriter,
    accepted_text,
    batch_job,
    clip,
    iso,
    jobs_of,
    show,
    subscribed_items,
)
from .validation import subscription_period


class Moderation(OrderWriter):
    """Operators' actions on anybody's orders; ``by`` names the operator in the order's history."""

    async def approve(self, order_id: str, by: str = "") -> Order:
        """Accept an order waiting in Submitted (manual moderation) and start
        it; ``by``: the operator (the order's history names them)."""
        order = await self._existing(order_id)
        now = self._clock.seconds()
        info = StatusInfo(OrderStatus.Accepted, accepted_text(order.spec.order_type), changed_at=now)
        if not await self._store.set_order_status(order_id, info, allowed={OrderStatus.Submitted},
                                                  jobs=jobs_of(order_id, order.spec, order.items), by=by,
                                                  acknowledged=True):
            raise invalid("orderId", f"order {order_id} is not waiting for approval")
        waiting = StatusInfo(OrderStatus.Accepted, "Waiting for processing", changed_at=now)
        await self._store.set_items_status(order_id, [ItemChange(i.spec.item_id, waiting) for i in order.items],
                                           allowed={OrderStatus.Submitted}, acknowledged=True)
        order = await self._existing(order_id)
        self.log.info("order {order_id} approved", order_id=order_id, by=by)
        self._dispatch(order)
        return order

    async def reject(self, order_id: str, reason: str, by: str = "") -> Order:
        """Refuse an order waiting in Submitted; it ends Cancelled with ``reason``."""
        order = await self._existing(order_id)
        if order.status.status is not OrderStatus.Submitted:
            raise invalid("orderId", f"order {order_id} is not waiting for approval")
        text = clip(f"{REJECTED}: {reason}" if reason else REJECTED)
        return await self._close(order, StatusInfo(OrderStatus.Cancelled, text, changed_at=self._clock.seconds()),
                                 text, None, by=by, allowed={OrderStatus.Submitted})

    async def operator_cancel(self, order_id: str, reason: str = "", by: str = "") -> Order:
        """Cancel any unfinished order, whoever owns it, as its owner's Cancel
        does (its jobs stop; call-backs and e-mails go as the order asks);
        ``reason`` is told to the client in the order's status."""
        order = await self._existing(order_id)
        if order.status.status.is_final:
            raise invalid("orderId", f"order {order_id} is already {order.status.status.value}")
        if order.spec.order_type is OrderType.SUBSCRIPTION_ORDER:
            text = "Unsubscribed by an operator"
        else:
            done = sum(1 for i in order.items if i.status.status in WITH_RESULT)
            text = "Cancelled by an operator" + (f"; {done} of {len(order.items)} items had completed" if done else "")
        text = clip(f"{text}: {reason}" if reason else text)
        return await self._close(order, StatusInfo(OrderStatus.Cancelled, text, changed_at=self._clock.seconds()),
                                 "Cancelled by an operator", None, by=by)

    async def retry_failed(self, order_id: str, by: str = "") -> list[str]:
        """Put the order's failed items back in the queue: the ids of those
        items. Their attempts count again from one.

        Only while none of its items is in work (a final order, or a
        subscription between timeslots): the jobs of a running order chain
        its batches, which a retried batch must not run twice. A final
        order becomes unfinished again (InProduction, or Accepted when no
        item has a result), and its status follows its items from then on."""
        order = await self._existing(order_id)
        failed = [item for item in order.items if item.status.status is OrderStatus.Failed]
        if not failed:
            raise invalid("orderId", f"order {order_id} has no failed item to retry")
        if order.status.status in (OrderStatus.Cancelled, OrderStatus.Terminated, OrderStatus.Submitted):
            raise invalid("orderId", f"order {order_id} is {order.status.status.value}: its items are not retried")
        busy = sum(1 for item in order.items if not item.status.status.is_final)
        if busy and order.spec.order_type is not OrderType.SUBSCRIPTION_ORDER:
            raise invalid("orderId", f"order {order_id} has {busy} items still in work; retry its failed items "
                                     f"once they are done")
        if busy:
            raise invalid("orderId", f"subscription {order_id} has {busy} items in work; retry its failed items "
                                     f"once they are done")
        now = self._clock.seconds()
        if order.status.status.is_final:
            with_result = any(item.status.status in WITH_RESULT for item in order.items)
            text = f"{len(failed)} failed items queued again by an operator"
            info = StatusInfo(OrderStatus.InProduction if with_result else OrderStatus.Accepted, clip(text),
                              changed_at=now)
            if not await self._store.set_order_status(order_id, info, allowed={order.status.status}, by=by):
                raise invalid("orderId", f"order {order_id} changed meanwhile; try again")
        waiting = StatusInfo(OrderStatus.Accepted, "Queued again by an operator", changed_at=now)
        jobs = []
        for batch in sorted({item.batch for item in failed}):
            job = batch_job(order_id, order.spec, [item for item in failed if item.batch == batch], batch)
            if job is not None:
                jobs.append(attrs.evolve(job, chained=False))  # the batches after it are done
        moved = await self._store.set_items_status(order_id, [ItemChange(i.spec.item_id, waiting) for i in failed],
                                                   allowed={OrderStatus.Failed}, jobs=jobs)
        if not all(moved):
            raise invalid("orderId", f"the failed items of order {order_id} changed meanwhile; try again")
        self.log.info("order {order_id}: {count} failed items queued again", order_id=order_id, count=len(failed),
                      by=by)
        self._dispatch(await self._existing(order_id))
        return [item.spec.item_id for item in failed]

    async def timeslot(self, collection_id: str, timestamp: str, force: bool = False) -> list[str]:
        """A new product of ``collection_id`` is out, for ``timestamp`` (ISO
        8601): every active subscription on it gets a batch of items for it
        (once per timeslot; ``force``: again). The ids of those orders."""
        try:
            moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
        except ValueError:
            raise invalid("timestamp", f"{show(timestamp)} is not an ISO 8601 date and time") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        slot = iso(moment.timestamp())
        if self._config.collection(collection_id) is None:
            raise RequestRejected("UnsupportedCollection", "collectionId", f"there is no collection {show(collection_id)}")
        now = self._clock.seconds()
        served = []
        for order_id in await self._store.subscriptions(collection_id, now):
            order = await self._store.get(order_id)
            if order is None or order.status.status.is_final:
                await self._store.unsubscribe(order_id, [collection_id])
                continue
            if order.status.status is OrderStatus.Submitted:
                continue  # not approved (yet)
            period = subscription_period(order.spec)
            if period is not None and not period[0] <= moment.timestamp() <= period[1]:
                continue  # a timeslot outside the subscribed dates
            taken = {item.spec.item_id for item in order.items}
            suffix = ""
            if force:
                n = 2
                while any(f"{base.item_id}@{slot}{suffix}" in taken for base in subscribed_items(order, collection_id)):
                    suffix, n = f"#{n}", n + 1
            batch = max(item.batch for item in order.items) + 1
            info = StatusInfo(OrderStatus.Accepted, f"Timeslot {slot}: waiting for processing", changed_at=now)
            items = [Item(spec=attrs.evolve(base, item_id=f"{base.item_id}@{slot}{suffix}", product_id=slot,
                                            subscription=False, fragments=()),
                          status=info, batch=batch)
                     for base in subscribed_items(order, collection_id)]
            if not items:
                continue
            job = batch_job(order_id, order.spec, items, batch)
            assert job is not None
            if await self._store.add_items(order_id, items, job, marker=None if force else f"{collection_id}@{slot}"):
                served.append(order_id)
                self._dispatch(order)
        self.log.info("timeslot {slot} of {collection}: {count} subscriptions served", slot=slot,
                      collection=collection_id, count=len(served))
        return served
