"""The ordering core: the one writer of order state.

Transports call the client operations here (submit, get, search,
ready_items, cancel) with the caller's Account. The other callers have their
own part, on the same :class:`~.orderstate.OrderWriter` state: operators
:mod:`.moderation`, the processing engine :mod:`.production`, the scheduler
:mod:`.retention`, the deliverables :mod:`.downloads`. The order's status
follows from its items (:func:`derive_order_status`) after every item
change. Refusals are RequestRejected; times are Unix seconds from the
injected clock.

:class:`OrderingService` is all of them on one state: what the daemon builds
once and hands to each caller (each typed by the part it uses).
"""

from __future__ import annotations

from collections.abc import Collection

import attrs

from ..model.accounts import Account
from ..model.errors import Resubmitted, TooManyActiveItems, invalid
from ..model.orders import Item, Notification, Order, OrderSpec, OrderStatus, OrderType, StatusInfo, StatusNotification
from .downloads import DownloadRecords
from .moderation import Moderation
from .orderstate import (  # noqa: F401 - re-exported: the names importers know this module by
    DAY,
    FINAL,
    MAX_SEARCH_RESULTS,
    MAX_STATUS_INFO,
    REJECTED,
    STARTABLE,
    SUBSCRIPTION_DAYS,
    UNFINISHED,
    WITH_RESULT,
    IDispatcher,
    OrderWriter,
    ReadyItem,
    accepted_text,
    batch_job,
    derive_order_status,
    jobs_of,
    not_yours,
)
from .packages import package_name, packaged
from .production import ItemProgress
from .retention import Retention
from .validation import check_notification, subscription_period


@attrs.frozen
class OrderPage:
    """A page of :meth:`ClientOrders.find_orders`: the orders, the cursor
    after each (a later page may start there), the cursor after the page
    (None: no more)."""

    orders: tuple[Order, ...]
    cursors: tuple[str, ...]
    next: str | None
    updated: tuple[float, ...] = ()  # when each order was last updated (Unix seconds)


class ClientOrders(OrderWriter):
    """The OSEO operations of a client on its own orders."""

    async def submit(self, account: Account, spec: OrderSpec, notification: Notification) -> Order:
        check_notification(notification, self._config.notifications.allowed_networks,
                           mail=bool(self._config.email.smtp_host))
        checked = self.checker.check(account, spec)
        spec = checked.spec
        now = self._clock.seconds()
        if checked.manual:
            status = StatusInfo(OrderStatus.Submitted, "Waiting for approval by an operator", changed_at=now)
            item_status = StatusInfo(OrderStatus.Submitted, "Waiting for approval", changed_at=now)
        else:
            status = StatusInfo(OrderStatus.Accepted, accepted_text(spec.order_type), changed_at=now)
            item_status = StatusInfo(OrderStatus.Accepted, "Waiting for processing", changed_at=now)
        # Massive orders are processed in batches of the per-order limit.
        per_batch = self._config.orders.max_items_per_order if spec.order_type is OrderType.MASSIVE_ORDER else 0
        if per_batch:
            items = tuple(Item(spec=i, status=item_status, batch=n // per_batch) for n, i in enumerate(spec.items))
        else:
            items = tuple(Item(i, item_status) for i in spec.items)
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

    async def find_orders(self, account: Account, *, statuses: Collection[OrderStatus] | None = None,
                          updated_from: float | None = None, after: str | None = None, limit: int = 100,
                          order_type: OrderType | None = None, newest_first: bool = False) -> OrderPage:
        """A page of the caller's orders (of ``order_type``, None: any) in one
        of ``statuses`` (None: any; empty: none) last updated at or after
        ``updated_from``, oldest update first (``newest_first``: the other
        way), after the cursor ``after`` of
        an earlier page (BadCursor when it is not one). Reads the indexes,
        examining at most ``[odata] search_budget`` entries: the page may be
        short, or empty with a ``next``, when the criteria match few orders."""
        if statuses is not None and not statuses or limit <= 0:
            return OrderPage((), (), None)
        found = await self._store.find(owner=account.name, statuses=statuses or (), updated_from=updated_from,
                                       order_type=order_type.value if order_type else None,
                                       oldest_first=not newest_first,
                                       after=after, limit=limit, budget=self._config.odata.search_budget)
        loaded = {o.order_id: o for o in await self._store.get_many(found.order_ids)}
        # (an order purged since the indexes were read is left out, its cursor with it)
        kept = [(loaded[i], c, u) for i, c, u in zip(found.order_ids, found.cursors, found.updated) if i in loaded]
        return OrderPage(tuple(o for o, _, _ in kept), tuple(c for _, c, _ in kept), found.next,
                         tuple(u for _, _, u in kept))

    async def count_orders(self, account: Account, statuses: Collection[OrderStatus] | None = None,
                           order_type: OrderType | None = None) -> int | None:
        """How many orders the caller has in one of ``statuses`` (None: any)
        of ``order_type`` (None: any), from the indexes' cardinalities; None
        when a type's intersection is too big to count at once."""
        return await self._store.count(account.name, statuses, order_type.value if order_type else None,
                                       budget=self._config.odata.search_budget)

    async def ready_items(self, account: Account, order_id: str) -> list[ReadyItem]:
        """The order's results available online now."""
        return self.ready_in(await self.get(account, order_id))

    async def describe_result_access(self, account: Account, order_id: str, *, next_ready: bool,
                                     since: float | None = None) -> list[ReadyItem]:
        """DescribeResultAccess: the results online now (allReady), or with
        ``next_ready`` those completed since the previous DescribeResultAccess
        of the order, whatever it asked (the standard's "since the previous
        call", as pyoseo counts it), or since ``since`` (its timeStamp) when
        given. Every call moves the order's mark, before the order is read:
        an item completed meanwhile is offered twice, never lost."""
        await self.get(account, order_id)  # (only its owner moves the mark)
        fresh = await self._store.next_ready(order_id)
        ready = self.ready_in(await self.get(account, order_id))
        if not next_ready:
            return ready
        if since is not None:
            return [r for r in ready if r.item.completed_at is not None and r.item.completed_at >= since]
        return [r for r in ready if r.item.spec.item_id in fresh]

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


class OrderingService(ClientOrders, Moderation, ItemProgress, Retention, DownloadRecords):
    """Every part of the ordering core on one store, configuration and clock
    (and one dispatcher)."""
