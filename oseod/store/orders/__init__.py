"""Orders and their items in Redis, and the indexes that GetStatus searches.

Layout (names in :mod:`oseod.store.keys`; ID a random order id, or a
number for orders stored before ids were random: :mod:`.orderids`):

* ``order:ID`` hash: ``owner``, ``order_type``, ``reference``, ``created_at``,
  ``spec`` (the OrderSpec with its items, JSON, written once),
  ``notification`` (JSON), ``status`` (the bare name, for the scripts),
  ``status_info`` (StatusInfo JSON), ``updated_at``, ``version`` (bumped by
  every change, for compare-and-set and for the readers' caches: a write that
  skipped it would leave them stale), ``completion_seq`` and ``ready_cursor``
  (DescribeResultAccess nextReady), and what deriving the order's status from
  its items needs without reading them: ``items_total``, ``n/STATUS`` (how
  many items are in each status), ``failed_item`` and ``failed_reason`` (the
  latest failure).
* ``order:ID:items`` hash: per item ``s/ITEM`` (StatusInfo JSON), ``c/ITEM``
  (completion time) and ``b/ITEM`` (batch, when not 0); a status change
  rewrites one small field, never the spec.
* ``order:ID:ready`` sorted set: the items with a result, by completion sequence.
* indexes, per owner and across owners, all scored by the order's last update
  (any change to the order or one of its items): every order; per status; per
  orderReference. Plus a per-owner counter of items not in a final status.

Every change is one Lua script that updates the data, the counter and every
index together, so an index never disagrees with the order it points to.
Searches read one sorted-set range per index (no scans, no KEYS).

The package, by concern (each a mixin of :class:`.base.OrderStoreBase`,
composed here as :class:`OrderStore`): :mod:`.writes` (create, changes of
status, items added), :mod:`.search`, :mod:`.records` (downloads, transfers,
history), :mod:`.subscriptions`, :mod:`.retention` (purge, expiry, migration of
older orders); :mod:`.base` reads orders and keeps the in-process caches,
:mod:`.layout` names keys and members, :mod:`.values` holds the interface's
values and errors. The Lua is in ``oseod/store/lua/order*.lua``.
"""

from __future__ import annotations

from .layout import (
    CACHED_ITEMS,
    CACHED_ORDERS,
    CHUNK_BYTES,
    DOWNLOADS_KEPT,
    HISTORY_KEPT,
    ID_ATTEMPTS,
    LAYOUT_VERSION,
    MESSAGE_SECONDS,
    collections_of,
)
from .records import OrderRecords
from .retention import OrderRetention
from .search import SEARCH_BUDGET, OrderSearch
from .subscriptions import OrderSubscriptions
from .values import (
    BadCursor,
    Conflict,
    FoundOrders,
    HistoryLine,
    ItemChange,
    NoSuchItem,
    NoSuchOrder,
    OrderProgress,
    Resubmitted,
    StoredResult,
    TooManyActiveItems,
    Transfer,
)
from .writes import OrderWrites

__all__ = [
    "CACHED_ITEMS", "CACHED_ORDERS", "CHUNK_BYTES", "DOWNLOADS_KEPT", "HISTORY_KEPT", "ID_ATTEMPTS", "LAYOUT_VERSION",
    "MESSAGE_SECONDS", "SEARCH_BUDGET", "BadCursor", "Conflict", "FoundOrders", "HistoryLine", "ItemChange",
    "NoSuchItem", "NoSuchOrder", "OrderProgress", "OrderStore", "Resubmitted", "StoredResult",
    "TooManyActiveItems", "Transfer", "collections_of",
]


class OrderStore(OrderWrites, OrderSearch, OrderRecords, OrderSubscriptions, OrderRetention):
    """Orders, their items and the indexes over them. Only the ordering core writes."""
