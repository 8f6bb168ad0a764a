"""The values and errors of the orders store's interface."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import attrs

from ...model.orders import Order, OrderStatus, OrderType, StatusInfo


@attrs.frozen
class FoundOrders:
    """A page of a search: the ids, the cursor of the next page (None: no
    more), and whether the budget ended the page (more may match beyond)."""

    order_ids: tuple[str, ...]
    next: str | None
    truncated: bool = False


class BadCursor(ValueError):
    pass


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
class Transfer:
    """One transfer of a result file (or package) to a client, as logged."""

    at: float
    item_id: str  # "" for the order's package
    file: str
    user: str
    via: str  # "ftp", "ftps", "sftp" or "http"
    address: str
    bytes: int
    complete: bool


@attrs.frozen
class HistoryLine:
    """One change of an order's status, as logged."""

    at: float
    status: str
    info: str
    by: str = ""


class Resubmitted(Exception):
    """A Submit with a wsa:MessageID its owner used before: ``order`` is the
    one that first Submit made (answer it again)."""

    def __init__(self, order: Order) -> None:
        super().__init__(order.order_id)
        self.order = order


class NoSuchOrder(KeyError):
    pass


class NoSuchItem(KeyError):
    pass


class TooManyActiveItems(Exception):
    """Creating the order would put its owner over the limit of unfinished items."""

    def __init__(self, active: int, added: int, limit: int) -> None:
        super().__init__(f"{active} items unfinished, {added} more, limit {limit}")
        self.active = active
        self.added = added
        self.limit = limit


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


class Conflict(Exception):
    """A compare-and-set lost too many races in a row."""
