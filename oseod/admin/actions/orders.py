"""Operators' actions on orders: search and detail, moderation (approve,
reject), cancel, retry, and subscriptions with their timeslots. The order
rules are the core's (:mod:`oseod.core.moderation`); this adds the audit
record and says refusals as :class:`ActionRefused`."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, TypeVar

import attrs

from ...core.moderation import Moderation
from ...core.validation import subscription_period
from ...model.errors import BadCursor, RequestRejected
from ...model.history import HistoryLine
from ...model.orders import Order, OrderStatus, OrderType
from ...model.transfers import Transfer
from ...store.orders import OrderStore
from ...store.outbox import ORDER_CHANNELS, OutboxStore
from .audit import MAX_PAGE, ActionRefused, Actor, AuditTrail, Refusal

T = TypeVar("T")

MAX_BULK = 1000  # orders per approve_many
MAX_SUBSCRIPTIONS = 2000  # listed by subscriptions()


@attrs.frozen
class OrderQuery:
    """A search of every user's orders. Empty criteria match everything;
    ``statuses`` matches any of them. ``updated_from``/``updated_to`` bound
    the last update (Unix time, inclusive). Pages come newest update first
    (``oldest_first``: the other way); ``after`` is the cursor an
    :class:`OrderPage` gave for the next page."""

    statuses: frozenset[OrderStatus] = frozenset()
    user: str | None = None
    collection: str | None = None
    # PRODUCT_ORDER, SUBSCRIPTION_ORDER, TASKING_ORDER, or MASSIVE_ORDER (a
    # PRODUCT_ORDER whose reference is "Massive order").
    order_type: str | None = None
    reference: str | None = None
    updated_from: float | None = None
    updated_to: float | None = None
    oldest_first: bool = False
    after: str | None = None
    limit: int = 50


@attrs.frozen
class OrderPage:
    orders: tuple[Order, ...]
    next: str | None  # the cursor of the next page; None: this is the last
    # The search examined as many index entries as it may (SEARCH_BUDGET)
    # before filling the page: more orders may match after ``next``.
    truncated: bool = False


@attrs.frozen
class OutboxEvent:
    """One attempt to deliver an order's call-back or e-mail."""

    at: float
    channel: str  # "callback" or "mail"
    seq: int
    outcome: str  # "sent", "retry" or "given up"
    detail: str = ""


@attrs.frozen
class OrderDetail:
    order: Order
    history: tuple[HistoryLine, ...]  # oldest first
    outbox: tuple[OutboxEvent, ...]
    downloads: tuple[Transfer, ...]
    callback_failure: Mapping[str, Any] | None
    # Per item id: complete downloads of its files so far and when the last ended.
    item_downloads: Mapping[str, tuple[int, float]] = attrs.field(factory=dict)


@attrs.frozen
class SubscriptionView:
    """An active subscription. Timeslots come from outside (a provider's
    ingestion calls ``oseoctl subscription timeslot`` or the console's form),
    so there is no schedule to predict: the console shows the subscribed
    period and the last timeslot served."""

    order: Order
    collections: tuple[str, ...]
    starts_at: float | None  # the subscribed period (None: open)
    ends_at: float | None
    batches: int  # timeslots served so far
    last_timeslot: str | None  # the last served, ISO 8601


class OrderActions:
    def __init__(self, *, ordering: Moderation, orders: OrderStore, outbox: OutboxStore, trail: AuditTrail) -> None:
        self._ordering = ordering
        self._orders = orders
        self._outbox = outbox
        self._trail = trail

    async def search_orders(self, query: OrderQuery) -> OrderPage:
        if not 1 <= query.limit <= MAX_PAGE:
            raise ActionRefused(Refusal.INVALID, f"limit must be from 1 to {MAX_PAGE}")
        if query.order_type is not None and query.order_type not in {t.value for t in OrderType}:
            raise ActionRefused(Refusal.INVALID, f"order type must be one of {', '.join(t.value for t in OrderType)}")
        if (query.updated_from is not None and query.updated_to is not None
                and query.updated_from > query.updated_to):
            raise ActionRefused(Refusal.INVALID, "the date range ends before it starts")
        try:
            found = await self._orders.find(
                owner=query.user or None, statuses=query.statuses, reference=query.reference or None,
                collection=query.collection or None, order_type=query.order_type or None,
                updated_from=query.updated_from, updated_to=query.updated_to, oldest_first=query.oldest_first,
                after=query.after, limit=query.limit)
        except BadCursor as e:
            raise ActionRefused(Refusal.INVALID, str(e)) from None
        orders = await self._orders.get_many(found.order_ids)
        return OrderPage(tuple(orders), found.next, found.truncated)

    async def order_detail(self, order_id: str) -> OrderDetail:
        order = await self._orders.get(order_id)
        if order is None:
            raise ActionRefused(Refusal.NOT_FOUND, f"there is no order {_shown(order_id)}")
        history = tuple(await self._orders.history(order_id))
        events = [OutboxEvent(e.at, channel, e.seq, e.outcome, e.detail)
                  for channel in ORDER_CHANNELS for e in await self._outbox.log(channel, order_id)]
        downloads = tuple(await self._orders.transfers(order_id))
        failure = await self._orders.callback_failure(order_id)
        return OrderDetail(order, history, tuple(sorted(events, key=lambda e: e.at)), downloads,
                           None if failure is None else attrs.asdict(failure), await self._orders.downloads(order_id))

    async def moderation_queue(self, limit: int = 100, after: str | None = None) -> OrderPage:
        """Orders waiting in Submitted, oldest first."""
        return await self.search_orders(OrderQuery(statuses=frozenset({OrderStatus.Submitted}), oldest_first=True,
                                                   after=after, limit=limit))

    async def approve(self, actor: Actor, order_id: str) -> Order:
        order = await self._order_action(self._ordering.approve(order_id, by=actor.name))
        await self._trail.record(actor, "order.approve", order_id)
        return order

    async def approve_many(self, actor: Actor, order_ids: Sequence[str]) -> Mapping[str, str | None]:
        """Per order id: None when approved, else the refusal's reason."""
        if len(order_ids) > MAX_BULK:
            raise ActionRefused(Refusal.INVALID, f"at most {MAX_BULK} orders at once")
        outcome: dict[str, str | None] = {}
        for order_id in order_ids:
            try:
                await self.approve(actor, order_id)
                outcome[order_id] = None
            except ActionRefused as e:
                outcome[order_id] = e.message
        return outcome

    async def reject(self, actor: Actor, order_id: str, reason: str) -> Order:
        reason = reason.strip()
        if not reason:
            raise ActionRefused(Refusal.INVALID, "give a reason: the client reads it in the order's status")
        order = await self._order_action(self._ordering.reject(order_id, reason, by=actor.name))
        await self._trail.record(actor, "order.reject", order_id, reason)
        return order

    async def cancel(self, actor: Actor, order_id: str, reason: str = "") -> Order:
        order = await self._order_action(self._ordering.operator_cancel(order_id, reason.strip(), by=actor.name))
        await self._trail.record(actor, "order.cancel", order_id, reason.strip())
        return order

    async def retry_failed(self, actor: Actor, order_id: str) -> tuple[str, ...]:
        """Put the order's failed items back in the queue: their ids."""
        items = await self._order_action(self._ordering.retry_failed(order_id, by=actor.name))
        await self._trail.record(actor, "order.retry", order_id, f"{len(items)} failed items queued again")
        return tuple(items)

    @staticmethod
    async def _order_action(action: Awaitable[T]) -> T:
        try:
            return await action
        except RequestRejected as e:
            kind = Refusal.NOT_FOUND if e.code == "InvalidOrderIdentifier" else Refusal.CONFLICT
            raise ActionRefused(kind, e.text) from None

    async def subscriptions(self) -> tuple[SubscriptionView, ...]:
        views: list[SubscriptionView] = []
        after: str | None = None
        while len(views) < MAX_SUBSCRIPTIONS:
            found = await self._orders.find(order_type=OrderType.SUBSCRIPTION_ORDER.value,
                                            statuses=frozenset(s for s in OrderStatus if not s.is_final),
                                            after=after, limit=min(200, MAX_SUBSCRIPTIONS - len(views)))
            for order in await self._orders.get_many(found.order_ids):
                view = _subscription(order)
                if view.ends_at is None:  # no DateRange: the end the service gave it
                    view = attrs.evolve(view, ends_at=await self._orders.subscribed_until(order.order_id,
                                                                                        view.collections))
                views.append(view)
            if found.next is None:
                break
            after = found.next
        return tuple(views)

    async def timeslot(self, actor: Actor, collection_id: str, timestamp: str, force: bool = False) -> tuple[str, ...]:
        try:
            served = await self._ordering.timeslot(collection_id, timestamp, force)
        except RequestRejected as e:
            kind = Refusal.NOT_FOUND if e.code == "UnsupportedCollection" else Refusal.INVALID
            raise ActionRefused(kind, e.text) from None
        await self._trail.record(actor, "subscription.timeslot", collection_id,
                          f"{timestamp}{' (forced)' if force else ''}: {len(served)} subscriptions served")
        return tuple(served)


def _subscription(order: Order) -> SubscriptionView:
    try:
        period = subscription_period(order.spec)
    except RequestRejected:
        period = None
    collections = sorted({i.collection_id for i in order.spec.items if i.subscription and i.collection_id})
    last_batch = max((item.batch for item in order.items), default=0)
    last_slot = next((item.spec.product_id for item in order.items if item.batch == last_batch), None)
    return SubscriptionView(order=order, collections=tuple(collections),
                            starts_at=period[0] if period else None, ends_at=period[1] if period else None,
                            batches=len({item.batch for item in order.items if item.batch > 0}),
                            last_timeslot=last_slot if last_batch > 0 else None)


def _shown(value: str) -> str:
    return f'"{value[:80]}"' + ("..." if len(value) > 80 else "")
