"""The ordering core: the one writer of order state.

Transports call the client operations (submit, get, search, ready_items,
cancel) with the caller's Account; operators call approve and reject; the
processing engine (:mod:`oseod.jobs.engine`) calls
start_item, complete_item and fail_item. The order's status follows from its
items (:func:`derive_order_status`) after every item change. Refusals are
RequestRejected; times are Unix seconds from the injected clock.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from datetime import datetime, timezone
from typing import NamedTuple

import attrs
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import Interface

from ..auth.account import Account
from ..config import Config
from ..model import codec
from ..model.errors import RequestRejected, invalid
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
    StatusInfo,
    StatusNotification,
)
from ..store.jobs import Job
from ..store.leader import Fence
from ..store.orders import (
    HistoryLine,
    ItemChange,
    OrderProgress,
    OrderStore,
    Resubmitted,
    StoredResult,
    TooManyActiveItems,
    Transfer,
)
from ..store.outbox import Failure
from .catalogue import Catalogue
from .packages import package_name, packaged
from .validation import Resolver, SubmitChecker, check_notification, resolve_collection, subscription_period

MAX_SEARCH_RESULTS = 1000
MAX_STATUS_INFO = 4000  # additionalStatusInfo, by the XSD
DAY = 86400.0
SUBSCRIPTION_DAYS = 365  # how long a subscription stays active

FINAL = frozenset(s for s in OrderStatus if s.is_final)
UNFINISHED = frozenset(OrderStatus) - FINAL
STARTABLE = frozenset({OrderStatus.Accepted, OrderStatus.Suspended, OrderStatus.InProduction})
WITH_RESULT = frozenset({OrderStatus.Completed, OrderStatus.Downloaded})


class IDispatcher(Interface):
    """Who processes accepted orders: the engine. Their jobs are already queued."""

    def accepted(order: Order) -> None:
        """``order`` was just accepted (its jobs are queued): look for work,
        without blocking the caller."""

    def cancelled(order_id: str) -> None:
        """The order was cancelled: stop the work on it running here."""


class ReadyItem(NamedTuple):
    """A result DescribeResultAccess can hand out."""

    item: Item
    protocol: str  # the onlineDataAccess protocol to fetch it with
    expires_at: float
    package: str | None = None  # with packaging: the name of the package that holds it


# How a rejected order's status text begins (the e-mail channel tells a
# rejection from a cancel by it).
REJECTED = "Rejected by an operator"


class OrderingService:
    log = Logger()

    def __init__(self, store: OrderStore, config: Config, clock: IReactorTime, *,
                 catalogue: Catalogue | None = None, resolve: Resolver | None = None) -> None:
        self._store = store
        self._config = config
        self._clock = clock
        self.checker = SubmitChecker(
            config, catalogue or Catalogue(config),
            resolve or (lambda identifier: resolve_collection(identifier, config.collections)),
        )  # fmt: skip
        self.dispatcher: IDispatcher | None = None

    # ------------------------------------------------------------ client operations

    async def submit(self, account: Account, spec: OrderSpec, notification: Notification) -> Order:
        check_notification(notification, self._config.notifications.allowed_networks)
        checked = self.checker.check(account, spec)
        spec = checked.spec
        now = self._clock.seconds()
        if checked.manual:
            status = StatusInfo(OrderStatus.Submitted, "Waiting for approval by an operator", changed_at=now)
            item_status = StatusInfo(OrderStatus.Submitted, "Waiting for approval", changed_at=now)
        else:
            status = StatusInfo(OrderStatus.Accepted, _accepted_text(spec.order_type), changed_at=now)
            item_status = StatusInfo(OrderStatus.Accepted, "Waiting for processing", changed_at=now)
        # Massive orders are processed in batches of the per-order limit.
        per_batch = self._config.orders.max_items_per_order if spec.order_type is OrderType.MASSIVE_ORDER else 0
        items = tuple(Item(spec=i, status=item_status, batch=n // per_batch if per_batch else 0)
                      for n, i in enumerate(spec.items))
        order = Order(order_id="", owner=account.name, spec=spec, status=status, created_at=now,
                      notification=notification, items=items)
        limit = self._config.orders.max_active_items_per_user
        jobs = (lambda order_id: ()) if checked.manual else (lambda order_id: jobs_of(order_id, spec, items))
        period = subscription_period(spec)
        until = None
        if spec.order_type is OrderType.SUBSCRIPTION_ORDER:
            until = period[1] if period is not None else now + SUBSCRIPTION_DAYS * DAY
        try:
            # Told to the client: on the replicas first ([redis] min_replicas).
            order = await self._store.create(order, max_active_items=limit, jobs=jobs, subscribed_until=until,
                                             message_id=notification.message_id, acknowledged=True)
        except Resubmitted as e:
            # A retry (same wsa:MessageID): the first Submit's order, answered again.
            self.log.info("order {order_id} submitted again by {user} (same wsa:MessageID)",
                          order_id=e.order.order_id, user=account.name)
            return e.order
        except TooManyActiveItems as e:
            raise invalid("orderItem", f"at most {limit} items may be unfinished per user: you have {e.active}, "
                                       f"this order would add {e.added}") from None
        self.log.info("order {order_id} submitted by {user}: {type}, {count} items, {status}", order_id=order.order_id,
                      user=account.name, type=spec.order_type.value, count=len(items), status=status.status.value)
        if not checked.manual:
            self._dispatch(order)
        return order

    async def get(self, account: Account, order_id: str) -> Order:
        """The caller's order ``order_id``. Another user's order and one
        that does not exist are refused alike (same code, same words), so
        that nobody learns which ids are taken."""
        order = await self._store.get(order_id)
        if order is None or order.owner != account.name:
            raise not_yours(order_id)
        return order

    async def search(self, account: Account, last_update: float | None = None, last_update_end: float | None = None,
                     statuses: Collection[OrderStatus] = frozenset(), reference: str | None = None) -> list[Order]:
        """The caller's orders last updated within [last_update,
        last_update_end] (Unix seconds, None: unbounded), in one of
        ``statuses`` (empty: any), with orderReference ``reference`` (None:
        any); newest first, at most MAX_SEARCH_RESULTS."""
        return await self._store.search(account.name, last_update, last_update_end, frozenset(statuses), reference,
                                        MAX_SEARCH_RESULTS)

    async def ready_items(self, account: Account, order_id: str, next_ready: bool) -> list[ReadyItem]:
        """The order's results available online now (allReady); with
        ``next_ready``, only those completed since the previous nextReady."""
        order = await self.get(account, order_id)
        fresh: frozenset[str] | None = None
        if next_ready:
            fresh = await self._store.next_ready(order_id)
            order = await self.get(account, order_id)  # with the items just counted
        return [r for r in self.ready_in(order) if fresh is None or r.item.spec.item_id in fresh]

    def ready_in(self, order: Order) -> list[ReadyItem]:
        """The order's results available online now (no I/O: ``order`` as read).

        With packaging, each one is in its batch's package, which the
        engine built before completing them; the package is offered until
        the first of its items expires (their results are removed with it)."""
        now = self._clock.seconds()
        keep = self._config.orders.item_availability_days * DAY
        ready = []
        for item in order.items:
            if item.status.status not in WITH_RESULT or item.completed_at is None:
                continue
            protocol = self.access_protocol(order, item)
            if protocol is not None:
                ready.append(ReadyItem(item, protocol, item.completed_at + keep))
        packaging = order.spec.packaging
        if packaging is not None and packaged(packaging):
            ends: dict[int, float] = {}
            for r in ready:
                ends[r.item.batch] = min(ends.get(r.item.batch, r.expires_at), r.expires_at)
            ready = [r._replace(package=package_name(order.order_id, r.item.batch, packaging),
                                expires_at=ends[r.item.batch]) for r in ready]
        return [r for r in ready if r.expires_at > now]

    async def cancel(self, account: Account, order_id: str, notification: Notification) -> Order:
        """Cancel an order of the caller: its unfinished items, then it (for a
        subscription: unsubscribe). A Cancel that asks for notifications
        takes over the order's call-backs; one with None leaves them be."""
        order = await self.get(account, order_id)
        check_notification(notification, self._config.notifications.allowed_networks)
        if order.spec.order_type is OrderType.SUBSCRIPTION_ORDER:
            text = "Unsubscribed at the user's request"
        else:
            done = sum(1 for i in order.items if i.status.status in WITH_RESULT)
            text = "Cancelled at the user's request" + (f"; {done} of {len(order.items)} items had completed"
                                                         if done else "")
        keep = None if notification.mode is StatusNotification.NONE else attrs.evolve(notification, cancel=True)
        return await self._close(order, StatusInfo(OrderStatus.Cancelled, text, changed_at=self._clock.seconds()),
                                 "Cancelled at the user's request", keep)

    # ------------------------------------------------------------ operators

    async def orders(self, owner: str | None = None, statuses: Collection[OrderStatus] = frozenset(),
                     limit: int = MAX_SEARCH_RESULTS) -> list[Order]:
        """Everybody's orders (or ``owner``'s), in one of ``statuses`` (empty:
        any), last updated first: what operators list."""
        return await self._store.search(owner, None, None, frozenset(statuses), None, limit)

    async def order(self, order_id: str) -> Order:
        """Any order, for operators; RequestRejected when there is none."""
        return await self._existing(order_id)

    async def downloads(self, order_id: str) -> dict[str, tuple[int, float]]:
        """Per item of the order: complete downloads and when the last one ended."""
        return await self._store.downloads(order_id)

    async def callback_failure(self, order_id: str) -> Failure | None:
        """The last status call-back of the order given up on, if any."""
        return await self._store.callback_failure(order_id)

    async def approve(self, order_id: str, by: str = "") -> Order:
        """Accept an order waiting in Submitted (manual moderation) and start
        it; ``by``: the operator (the order's history names them)."""
        order = await self._existing(order_id)
        now = self._clock.seconds()
        info = StatusInfo(OrderStatus.Accepted, _accepted_text(order.spec.order_type), changed_at=now)
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
        text = _clip(f"{REJECTED}: {reason}" if reason else REJECTED)
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
        text = _clip(f"{text}: {reason}" if reason else text)
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
            info = StatusInfo(OrderStatus.InProduction if with_result else OrderStatus.Accepted, _clip(text),
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

    async def record_transfer(self, transfer: Transfer, order_id: str) -> None:
        """One transfer of the order's results ended (complete or not): logged
        with the order, for operators."""
        await self._store.record_transfer(order_id, transfer)

    async def history(self, order_id: str) -> list[HistoryLine]:
        return await self._store.history(order_id)

    async def transfers(self, order_id: str) -> list[Transfer]:
        return await self._store.transfers(order_id)

    async def timeslot(self, collection_id: str, timestamp: str, force: bool = False) -> list[str]:
        """A new product of ``collection_id`` is out, for ``timestamp`` (ISO
        8601): every active subscription on it gets a batch of items for it
        (once per timeslot; ``force``: again). The ids of those orders."""
        try:
            moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
        except ValueError:
            raise invalid("timestamp", f"{_show(timestamp)} is not an ISO 8601 date and time") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        slot = _iso(moment.timestamp())
        if self._config.collection(collection_id) is None:
            raise RequestRejected("UnsupportedCollection", "collectionId", f"there is no collection {_show(collection_id)}")
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
                while any(f"{base.item_id}@{slot}{suffix}" in taken for base in _subscribed_items(order, collection_id)):
                    suffix, n = f"#{n}", n + 1
            batch = max(item.batch for item in order.items) + 1
            info = StatusInfo(OrderStatus.Accepted, f"Timeslot {slot}: waiting for processing", changed_at=now)
            items = [Item(spec=attrs.evolve(base, item_id=f"{base.item_id}@{slot}{suffix}", product_id=slot,
                                            subscription=False, fragments=()),
                          status=info, batch=batch)
                     for base in _subscribed_items(order, collection_id)]
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

    async def add_batch(self, order_id: str, items: Sequence[Item], job: Job, marker: str) -> bool:
        """Add a batch of items to an unfinished order, with its job, once per
        ``marker`` (the engine expanding a massive order)."""
        return await self._store.add_items(order_id, items, job, marker=marker)

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

    # ------------------------------------------------------------ periodic tasks

    async def terminate_subscriptions(self) -> int:
        """Subscriptions past their end: Terminated. How many."""
        now = self._clock.seconds()
        ended = 0
        for collection in self._config.collections:
            for order_id in await self._store.subscriptions_ended(collection.id, now):
                order = await self._store.get(order_id)
                if order is not None and not order.status.status.is_final:
                    info = StatusInfo(OrderStatus.Terminated, f"Subscription ended on {_iso(now)}", changed_at=now)
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
        text = f"Result expired on {_iso(now)}: no longer downloadable"
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

    # ------------------------------------------------------------ processing

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

    # ------------------------------------------------------------ internals

    async def _items_change(self, order_id: str, texts: Mapping[str, str], status: OrderStatus,
                            allowed: frozenset[OrderStatus]) -> dict[str, bool]:
        """Move the items of ``texts`` (id: additionalStatusInfo) to
        ``status``, then the order to the status they make it. Which moved."""
        if not texts:
            return {}
        now = self._clock.seconds()
        changes = [ItemChange(item_id, StatusInfo(status, _clip(text), changed_at=now))
                   for item_id, text in texts.items()]
        done = dict(zip(texts, await self._store.set_items_status(order_id, changes, allowed=allowed)))
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
            await self._store.unsubscribe(order.order_id, _subscribed_collections(order))
        if self.dispatcher is not None:
            self.dispatcher.cancelled(order.order_id)
        return await self._existing(order.order_id)

    async def _existing(self, order_id: str) -> Order:
        order = await self._store.get(order_id)
        if order is None:
            raise RequestRejected("InvalidOrderIdentifier", "orderId", f"there is no order {_show(order_id)}")
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


def _subscribed_items(order: Order, collection_id: str) -> list[ItemSpec]:
    return [item for item in order.spec.items if item.subscription and item.collection_id == collection_id]


def _subscribed_collections(order: Order) -> set[str]:
    return {item.collection_id for item in order.spec.items if item.subscription and item.collection_id}


def _iso(moment: float) -> str:
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
    text = _clip(text)
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
        return f"Item {_show(item)} failed: {reason}"
    lead = (f"All {failed} items failed" if failed == progress.total
            else f"{failed} of {progress.total} items failed, none completed")
    return f"{lead}; the last, item {_show(item)}: {reason}"


def _accepted_text(order_type: OrderType) -> str:
    if order_type is OrderType.SUBSCRIPTION_ORDER:
        return "Subscription is active"
    if order_type is OrderType.TASKING_ORDER:
        return "Accepted; waiting for the tasking request to be fulfilled"
    return "Accepted; waiting for processing"


def _clip(text: str) -> str:
    return text if len(text) <= MAX_STATUS_INFO else text[: MAX_STATUS_INFO - 1] + "…"


def not_yours(order_id: str) -> RequestRejected:
    """The one refusal of an order id the caller has no order under,
    whether it exists or not."""
    return RequestRejected("InvalidOrderIdentifier", "orderId", f"you have no order {_show(order_id)}")


def _show(value: str) -> str:
    return f'"{value[:80]}"' + ("..." if len(value) > 80 else "")
