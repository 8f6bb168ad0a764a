"""What every part of the ordering core shares: the order's state rules.

:class:`OrderWriter` holds the store, the configuration and the clock, and
the few writes that several callers make alike (an item change and the order
status that follows from it, closing an order); the functions below are pure.
The parts that use it, by caller: :mod:`.ordering` (client operations),
:mod:`.moderation` (operators), :mod:`.production` (the engine),
:mod:`.retention` (periodic tasks), :mod:`.downloads` (download records).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timezone
from typing import NamedTuple

from twisted.internet.interfaces import IReactorTime
from zope.interface import Interface

from ..config import Config
from ..loggers import instance_logger
from ..model.errors import RequestRejected, invalid
from ..model.jobs import Job
from ..model.orders import (
    DeliveryMethod,
    Item,
    ItemSpec,
    Notification,
    Order,
    OrderStatus,
    OrderSpec,
    OrderType,
    Priority,
    ReadyItem,
    StatusInfo,
)
from ..model.progress import ItemChange, OrderProgress
from ..store.orders import OrderStore
from .catalogue import Catalogue
from .validation import ItemCheck, Resolver, SubmitChecker, resolve_collection

MAX_SEARCH_RESULTS = 1000
MAX_STATUS_INFO = 4000  # additionalStatusInfo, by the XSD
DAY = 86400.0
SUBSCRIPTION_DAYS = 365  # how long a subscription stays active

FINAL = frozenset(s for s in OrderStatus if s.is_final)
UNFINISHED = frozenset(OrderStatus) - FINAL
ITEMS_PER_WRITE = 32  # items changed by one store write of the engine's (_items_change)
STARTABLE = frozenset({OrderStatus.Accepted, OrderStatus.Suspended, OrderStatus.InProduction})
WITH_RESULT = frozenset({OrderStatus.Completed, OrderStatus.Downloaded})


class IDispatcher(Interface):
    """Who processes accepted orders: the engine. Their jobs are already queued."""

    def accepted(order: Order) -> None:
        """``order`` was just accepted (its jobs are queued): look for work,
        without blocking the caller."""

    def cancelled(order_id: str) -> None:
        """The order was cancelled: stop the work on it running here."""


# How a rejected order's status text begins (the e-mail channel tells a
# rejection from a cancel by it).
REJECTED = "Rejected by an operator"


class OrderWriter:
    """The state every part of the ordering core works on (one store, one
    configuration, one clock), and the writes they share."""

    def __init__(self, store: OrderStore, config: Config, clock: IReactorTime, *,
                 catalogue: Catalogue | None = None, resolve: Resolver | None = None,
                 check_item: ItemCheck | None = None, dispatcher: IDispatcher | None = None) -> None:
        """``resolve`` and ``check_item``: the Submit checks' collection of a
        bare identifier and objection to an item (the processor registry's;
        by default the configured prefixes, and no objection); ``dispatcher``:
        told of the orders accepted and cancelled (the engine)."""
        self.log = instance_logger(self)  # logs every Submit
        self._store = store
        self._config = config
        self._clock = clock
        self.checker = SubmitChecker(
            config, catalogue or Catalogue(config),
            resolve or (lambda identifier: resolve_collection(identifier, config.collections)),
            check_item or (lambda collection, item: None),
        )  # fmt: skip
        self.dispatcher = dispatcher

    async def order(self, order_id: str) -> Order:
        """Any order, whoever owns it (for operators and the notification
        channels); RequestRejected when there is none."""
        return await self._existing(order_id)

    async def _items_change(self, order_id: str, texts: Mapping[str, str], status: OrderStatus,
                            allowed: frozenset[OrderStatus]) -> dict[str, bool]:
        """Move the items of ``texts`` (id: additionalStatusInfo) to
        ``status``, then the order to the status they make it. Which moved."""
        if not texts:
            return {}
        now = self._clock.seconds()
        changes = [ItemChange(item_id, StatusInfo(status, clip(text), changed_at=now))
                   for item_id, text in texts.items()]
        done: dict[str, bool] = {}
        # A few items per write: Redis runs one script at a time, and the
        # 200 items of a job in one script held it 15-27 ms, which every
        # other client (a GetStatus among them) waited behind; 32 hold it a
        # few ms. Each write is atomic; a crash between two leaves the job
        # unacknowledged, and its rerun starts only the unfinished items.
        for start in range(0, len(changes), ITEMS_PER_WRITE):
            part = changes[start:start + ITEMS_PER_WRITE]
            moved = await self._store.set_items_status(order_id, part, allowed=allowed)
            done.update(zip((change.item_id for change in part), moved))
        if any(done.values()):
            await self._derive(order_id)
        return done

    async def _derive(self, order_id: str) -> None:
        now = self._clock.seconds()
        progress = await self._store.update_order_status(order_id, lambda p: derive_order_status(p, now))
        if progress.status.status.is_final and progress.status.changed_at == now:
            self.log.info("order {order_id} {status}: {info}", order_id=order_id,
                          status=progress.status.status.value, info=progress.status.additional_info)

    async def _close(self, order: Order, status: StatusInfo, item_text: str,
                     notification: Notification | None, *, by: str = "",
                     allowed: Collection[OrderStatus] = UNFINISHED) -> Order:
        """End an unfinished order in ``status`` (if still in one of
        ``allowed``) and its unfinished items with it."""
        # A client or an operator is told of it: on the replicas first ([redis] min_replicas).
        if not await self._store.set_order_status(order.order_id, status, allowed=allowed,
                                                  notification=notification, by=by, acknowledged=True):
            current = await self._existing(order.order_id)
            raise invalid("orderId", f"order {order.order_id} is already {current.status.status.value}")
        item_status = StatusInfo(status.status, item_text, changed_at=status.changed_at)
        await self._store.set_items_status(
            order.order_id, [ItemChange(i.spec.item_id, item_status) for i in order.items if not i.status.status.is_final],
            allowed=UNFINISHED, acknowledged=True)
        self.log.info("order {order_id} {status}: {info}", order_id=order.order_id, status=status.status.value,
                      info=status.additional_info)
        if order.spec.order_type is OrderType.SUBSCRIPTION_ORDER:
            await self._store.unsubscribe(order.order_id, subscribed_collections(order))
        if self.dispatcher is not None:
            self.dispatcher.cancelled(order.order_id)
        return await self._existing(order.order_id)

    async def _existing(self, order_id: str) -> Order:
        order = await self._store.get(order_id)
        if order is None:
            raise RequestRejected("InvalidOrderIdentifier", "orderId", f"there is no order {show(order_id)}")
        return order

    def _dispatch(self, order: Order) -> None:
        if self.dispatcher is not None:
            self.dispatcher.accepted(order)

    def access_protocol(self, order: Order, item: Item) -> str | None:
        """How the item's result is fetched, when the server keeps it
        (onlineDataAccess). No deliveryOptions at all means onlineDataAccess
        over the collection's first protocol."""
        delivery = item.spec.delivery or order.spec.delivery
        if delivery is None:
            collection = self._config.collection(item.spec.collection_id or "")
            return collection.online_data_access[0] if collection and collection.online_data_access else None
        if delivery.method is DeliveryMethod.ONLINE_DATA_ACCESS:
            return delivery.protocol
        return None


def subscribed_items(order: Order, collection_id: str) -> list[ItemSpec]:
    return [item for item in order.spec.items if item.subscription and item.collection_id == collection_id]


def subscribed_collections(order: Order) -> set[str]:
    return {item.collection_id for item in order.spec.items if item.subscription and item.collection_id}


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def jobs_of(order_id: str, spec: OrderSpec, items: Sequence[Item]) -> list[Job]:
    """The job that starts an accepted order: its first batch. The engine
    queues each next batch as the one before it is done (a massive order's
    thousands of items never flood the queue). None for subscriptions and
    tasking orders, whose items wait for a timeslot or a tasking result."""
    if spec.order_type in (OrderType.SUBSCRIPTION_ORDER, OrderType.TASKING_ORDER) or not items:
        return []
    first = batch_job(order_id, spec, items, min(item.batch for item in items))
    return [first] if first is not None else []


def batch_job(order_id: str, spec: OrderSpec, items: Sequence[Item], batch: int) -> Job | None:
    """The job for batch ``batch`` of the order (None: it has no such batch)."""
    ids = tuple(item.spec.item_id for item in items if item.batch == batch)
    return Job(order_id, ids, (spec.priority or Priority.STANDARD).value, batch=batch) if ids else None


def derive_order_status(progress: OrderProgress, now: float) -> StatusInfo | None:
    """The order's status as its items make it, or None when that is what it
    already is. Final orders and subscriptions (standing orders) are left alone.

    Every item final: Completed when all completed, Failed when none did,
    else Completed saying how many failed. Otherwise, once any item has
    started or ended: InProduction, with the progress so far."""
    if (progress.status.status is OrderStatus.Completed and progress.total
            and progress.count(OrderStatus.Downloaded) == progress.total):
        # The one move out of a final status: every result has been fetched.
        text = "The item was downloaded" if progress.total == 1 else f"All {progress.total} items were downloaded"
        return StatusInfo(OrderStatus.Downloaded, text, changed_at=now)
    if (progress.status.status.is_final or progress.order_type is OrderType.SUBSCRIPTION_ORDER
            or not progress.total):
        return None
    total = progress.total
    completed = progress.count(*WITH_RESULT)
    failed = progress.count(OrderStatus.Failed)
    finished = progress.count(*FINAL)
    if finished == total:
        if completed == total:
            status, text = OrderStatus.Completed, ("The item is ready" if total == 1
                                                   else f"All {total} items are ready")
        elif completed == 0 and failed:
            status, text = OrderStatus.Failed, _failures(progress)
        elif completed == 0:
            status, text = OrderStatus.Cancelled, "Every item was cancelled"
        else:
            status, text = OrderStatus.Completed, _progress(progress)
    elif finished or progress.count(OrderStatus.InProduction):
        status, text = OrderStatus.InProduction, f"In production: {_progress(progress)}"
    else:
        return None
    text = clip(text)
    if (status, text) == (progress.status.status, progress.status.additional_info):
        return None
    return StatusInfo(status, text, changed_at=now)


def _progress(progress: OrderProgress) -> str:
    parts = [f"{progress.count(*WITH_RESULT)} of {progress.total} items completed"]
    if failed := progress.count(OrderStatus.Failed):
        parts.append(f"{failed} failed")
    if cancelled := progress.count(OrderStatus.Cancelled, OrderStatus.Terminated):
        parts.append(f"{cancelled} cancelled")
    return ", ".join(parts)


def _failures(progress: OrderProgress) -> str:
    item, reason = progress.last_failure or ("?", "")
    reason = reason or "no reason given"
    failed = progress.count(OrderStatus.Failed)
    if progress.total == 1:
        return f"Item {show(item)} failed: {reason}"
    lead = (f"All {failed} items failed" if failed == progress.total
            else f"{failed} of {progress.total} items failed, none completed")
    return f"{lead}; the last, item {show(item)}: {reason}"


def accepted_text(order_type: OrderType) -> str:
    if order_type is OrderType.SUBSCRIPTION_ORDER:
        return "Subscription is active"
    if order_type is OrderType.TASKING_ORDER:
        return "Accepted; waiting for the tasking request to be fulfilled"
    return "Accepted; waiting for processing"


def clip(text: str) -> str:
    return text if len(text) <= MAX_STATUS_INFO else text[: MAX_STATUS_INFO - 1] + "…"


def not_yours(order_id: str) -> RequestRejected:
    """The one refusal of an order id the caller has no order under,
    whether it exists or not."""
    return RequestRejected("InvalidOrderIdentifier", "orderId", f"you have no order {show(order_id)}")


def show(value: str) -> str:
    return f'"{value[:80]}"' + ("..." if len(value) > 80 else "")

