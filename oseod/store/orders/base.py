"""The orders store's base: its connection and settings, the in-process
caches of orders and of what names an order's keys, and reading orders.
The other modules of the package are mixins of it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import attrs
from twisted.logger import Logger

from ...model import codec
from ...model.orders import Item, ItemSpec, Notification, Order, OrderStatus, StatusInfo
from .. import keys
from ..orderids import ORDER_ID, RandomOrderIds
from .layout import (
    CACHED_ITEMS, CACHED_ORDERS, DEFAULT_ORDER_TYPE, MESSAGE_SECONDS, _collections_field, _Identity, read_spec, script,
)
from .values import NoSuchOrder


_LOAD = script("orders_load")


class OrderStoreBase:
    """What every part of :class:`~oseod.store.orders.OrderStore` uses."""

    log = Logger()

    def __init__(self, redis: Any, *, cached_orders: int = CACHED_ORDERS, mail: bool = False,
                 new_id: Callable[[], str] | None = None, message_seconds: int = MESSAGE_SECONDS) -> None:
        """``mail``: e-mail is on, so every new order and change of status
        is queued for the e-mail channel with it. ``new_id``: draws a
        candidate id for a new order (by default, :class:`.RandomOrderIds`)."""
        self._redis = redis
        self._mail = mail
        self._identities: dict[str, _Identity] = {}
        self._orders = _OrderCache(cached_orders)
        self._new_id = new_id or RandomOrderIds()
        self._message_seconds = message_seconds

    # ------------------------------------------------------------------ reading

    async def get(self, order_id: str) -> Order | None:
        if not ORDER_ID.match(order_id):
            return None
        loaded = await self._load([order_id])
        return loaded[0] if loaded else None

    async def get_many(self, order_ids: Iterable[str]) -> list[Order]:
        """The orders that exist among ``order_ids``, in that order."""
        return await self._load([i for i in order_ids if ORDER_ID.match(i)])

    async def count_active_items(self, owner: str) -> int:
        """How many items of ``owner``'s orders are not in a final status."""
        return int(await self._redis.conn.get(keys.active_items(owner)) or 0)

    async def _identity(self, order_id: str) -> _Identity:
        identity = self._identities.get(order_id)
        if identity is None:
            if not ORDER_ID.match(order_id):
                raise NoSuchOrder(order_id)
            owner, reference, order_type, collections = await self._redis.conn.hmget(
                keys.order(order_id), ["owner", "reference", "order_type", "collections"])
            if owner is None:
                raise NoSuchOrder(order_id)
            if collections is None:
                # An order stored before the collection indexes: its spec says (once: identities are kept).
                fields = await self._redis.conn.hgetall(keys.order(order_id))
                spec = read_spec(_spec_text(fields) or "", fields.get("order_type"))
                collections = _collections_field({i.collection_id for i in spec.items if i.collection_id})
            identity = _Identity(owner, reference or None, order_type or DEFAULT_ORDER_TYPE.value,
                                 tuple(json.loads(collections)))
            self._remember(order_id, identity)
        return identity

    def _remember(self, order_id: str, identity: _Identity) -> None:
        # Owner and reference never change, so any daemon may cache them; the
        # bound only keeps memory flat.
        if len(self._identities) >= 10_000:
            self._identities.clear()
        self._identities[order_id] = identity

    async def _load(self, order_ids: list[str]) -> list[Order]:
        """The existing orders among ``order_ids``, in that order. An order
        read before and unchanged since (same version) costs one HGET and no
        decoding: status polling reads the same orders over and over."""
        if not order_ids:
            return []
        known = [self._orders.get(order_id) for order_id in order_ids]
        replies = await self._redis.conn.eval(
            _LOAD, [k for order_id in order_ids for k in (keys.order(order_id), keys.order_items(order_id))],
            ["" if order is None else str(order.version) for order in known])
        loaded = []
        for order_id, held, reply in zip(order_ids, known, replies):
            if not reply:
                self._orders.drop(order_id)
                continue
            if len(reply) == 1 and held is not None:
                order = held
            else:
                version, order_flat, item_flat = reply
                stored = _pairs(order_flat)
                spec = _spec_text(stored)
                order = Order(
                    order_id=order_id,
                    owner=stored["owner"],
                    spec=held.spec if spec is None and held is not None else read_spec(spec or "",
                                                                                       stored.get("order_type")),
                    status=_status(stored["status_info"], stored.get("status")),
                    created_at=float(stored["created_at"]),
                    # Absent: the default, no call-backs (writes.OrderWrites.create).
                    notification=codec.loads(Notification,
                                             stored.get("notification") or _joined(stored, "nt/") or "{}"),
                    version=int(version),
                )
                fields = _pairs(item_flat) if item_flat else stored  # layout 3: items in the order hash
                order = attrs.evolve(order, items=_items((*order.spec.items, *_added_specs(fields)), fields))
                self._orders.put(order)
            loaded.append(order)
        return loaded


class _OrderCache:
    """The orders read last, by id, least recently used dropped first. Kept
    only as a starting point: every read still asks Redis for the version."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._orders: dict[str, Order] = {}

    def get(self, order_id: str) -> Order | None:
        order = self._orders.pop(order_id, None)
        if order is not None:
            self._orders[order_id] = order  # most recently used: last
        return order

    def put(self, order: Order) -> None:
        if self._limit <= 0 or len(order.items) > CACHED_ITEMS:
            return
        self._orders.pop(order.order_id, None)
        self._orders[order.order_id] = order
        if len(self._orders) > self._limit:
            del self._orders[next(iter(self._orders))]

    def drop(self, order_id: str) -> None:
        self._orders.pop(order_id, None)


def _pairs(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[0::2], flat[1::2]))


def _spec_text(fields: dict[str, str]) -> str | None:
    """The order's spec JSON from its hash: layout 3's chunks ``p/0``,
    ``p/1``, ... joined, else layout 2's ``spec``; None when neither is there."""
    return _joined(fields, "p/") if "p/0" in fields else fields.get("spec")


def _joined(fields: dict[str, str], prefix: str) -> str:
    """A value kept as chunks PREFIX0, PREFIX1, ... (lua/order_chunks.lua)."""
    chunks, n = [], 0
    while f"{prefix}{n}" in fields:
        chunks.append(fields[f"{prefix}{n}"])
        n += 1
    return "".join(chunks)


def _status(stored: str, status: str | None = None) -> StatusInfo:
    """A stored status: layout 3's array (layout._packed_status; an order's
    is without its ``status``, given here) or layout 2's StatusInfo JSON."""
    if stored.startswith("{"):
        return codec.loads(StatusInfo, stored)
    packed = json.loads(stored)
    if isinstance(packed[0], str):
        status, *packed = packed
    changed_at, *info = packed
    return StatusInfo(OrderStatus(status), info[0] if info else None, info[1] if len(info) > 1 else None,
                      float(changed_at))


def _added_specs(item_fields: dict[str, str]) -> list[ItemSpec]:
    """The items added after the order was made (a subscription's
    timeslots), in the order they were added."""
    added = [json.loads(value) for field, value in item_fields.items() if field.startswith("x/")]
    return [codec.from_data(ItemSpec, spec) for _, spec in sorted(added, key=lambda pair: pair[0])]


def _items(specs: Iterable[ItemSpec], item_fields: dict[str, str]) -> tuple[Item, ...]:
    items = []
    for spec in specs:
        item_id = spec.item_id
        completed = item_fields.get(f"c/{item_id}")
        items.append(Item(
            spec=spec,
            status=_status(item_fields[f"s/{item_id}"]),
            batch=int(item_fields.get(f"b/{item_id}", "0")),
            completed_at=float(completed) if completed is not None else None,
        ))
    return tuple(items)
