"""Turns orders into GetStatusResponse documents.

Clients poll: the same orders are rendered again and again while they stay
the same. An order's rendering depends only on the order, and the store
bumps its version on every change, so each orderMonitorSpecification is kept,
serialised, under (order, version, presentation) and reused until the order
changes."""

from __future__ import annotations

from collections.abc import Sequence

from ..model.orders import Order
from ..oseo.soap import Encoding, wrap
from ..oseo.status import render_get_status_response, serialise_order_monitor

CACHE_SIZE = 4096
CACHED_ITEMS = 1000  # bigger orders are rendered each time: their bytes would crowd out the rest

_Key = tuple[str, bool]


class StatusPresenter:
    def __init__(self, cache_size: int = CACHE_SIZE) -> None:
        self._cache_size = cache_size
        self._monitors: dict[_Key, tuple[int, bytes]] = {}

    def render(self, encoding: Encoding, orders: Sequence[Order], full: bool) -> bytes:
        return wrap(encoding, render_get_status_response(self._monitor(order, full) for order in orders))

    def _monitor(self, order: Order, full: bool) -> bytes:
        key = (order.order_id, full)
        kept = self._monitors.pop(key, None)
        if kept is not None and kept[0] == order.version and order.version:
            self._monitors[key] = kept  # most recently used: last
            return kept[1]
        monitor = serialise_order_monitor(order, full)
        if order.version and len(order.items) <= CACHED_ITEMS and self._cache_size > 0:
            self._monitors[key] = (order.version, monitor)
            if len(self._monitors) > self._cache_size:
                del self._monitors[next(iter(self._monitors))]
        return monitor
