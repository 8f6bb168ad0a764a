"""Where an order's items stand: the values the ordering core and the
orders store exchange when items change (the store keeps them; the core
derives the order's status from them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import attrs

from .orders import OrderStatus, OrderType, StatusInfo


class ItemChange(NamedTuple):
    """A new status for one item (see OrderStore.set_items_status)."""

    item_id: str
    status: StatusInfo
    completed_at: float | None = None


class StoredResult(NamedTuple):
    """An item with a result, as the expiry index holds it."""

    order_id: str
    item_id: str
    entry: str  # the index member, as the scripts wrote it


@attrs.frozen
class OrderProgress:
    """Where an order's items stand, as counts: what deriving the order's
    status needs, read in one step whatever the number of items."""

    order_id: str
    order_type: OrderType
    status: StatusInfo
    total: int
    counts: Mapping[OrderStatus, int]  # statuses with no item are left out
    last_failure: tuple[str, str] | None = None  # (item id, reason) of the latest failed item

    def count(self, *statuses: OrderStatus) -> int:
        return sum(self.counts.get(s, 0) for s in statuses)
