"""The values and errors of the orders store's interface. Those the rest of
oseod shares (transfers, history, item progress, the domain's errors) live
in :mod:`oseod.model` and are named here too, for the store's own modules."""

from __future__ import annotations

import attrs

from ...model.errors import BadCursor, NoSuchItem, NoSuchOrder, Resubmitted, TooManyActiveItems
from ...model.history import HistoryLine
from ...model.progress import ItemChange, OrderProgress, StoredResult
from ...model.transfers import Transfer

__all__ = ["BadCursor", "Conflict", "FoundOrders", "HistoryLine", "ItemChange", "NoSuchItem", "NoSuchOrder",
           "OrderProgress", "Resubmitted", "StoredResult", "TooManyActiveItems", "Transfer"]


@attrs.frozen
class FoundOrders:
    """A page of a search: the ids, the cursor of the next page (None: no
    more), whether the budget ended the page (more may match beyond), and
    the cursor after each id (for a reader that stops within the page)."""

    order_ids: tuple[str, ...]
    next: str | None
    truncated: bool = False
    cursors: tuple[str, ...] = ()

    @property
    def updated(self) -> tuple[float, ...]:
        """When each order was last updated (Unix seconds): its index score,
        the first part of its cursor."""
        return tuple(float(c.partition("~")[0]) for c in self.cursors)


class Conflict(Exception):
    """A compare-and-set lost too many races in a row."""
