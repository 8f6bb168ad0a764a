"""Orders and their items in Redis, and the indexes that GetStatus searches.

Layout (names in :mod:`oseod.store.keys`; ID a random order id, or a
number for orders stored before ids were random: :mod:`.orderids`):

* ``order:ID`` hash (layout 3: one key for a typical order, kept a compact
  listpack by writing no value over 64 bytes, see layout.CHUNK_BYTES):
  ``owner``, ``order_type`` (absent: PRODUCT_ORDER), ``reference`` (when
  given), ``created_at``, the spec (the OrderSpec with its items, JSON,
  written once, without its type and the items' default ``subscription``:
  layout.stored_spec) in chunks ``p/0``, ``p/1``, ..., the notification (JSON; absent when it asks for nothing) in
  chunks ``nt/0``, ...,
  ``status`` (the bare name, for the scripts), ``status_info``
  ([changed_at, info, mission info]), ``updated_at``, ``version`` (bumped by
  every change, for compare-and-set and for the readers' caches: a write that
  skipped it would leave them stale), ``completion_seq`` and ``ready_cursor``
  (DescribeResultAccess nextReady; absent: 0), and what deriving the order's
  status from its items needs without reading them: ``items_total``,
  ``n/STATUS`` (how many items are in each status; absent: 0),
  ``failed_item`` and ``failed_reason`` (the latest failure). The history:
  ``h`` (lines so far), ``h/N`` ([at, status, by]) and ``i/N`` (its info,
  when not empty). The items: per item ``s/ITEM`` ([status, changed_at,
  info, mission info]), ``c/ITEM`` (completion time), ``r/ITEM`` (its place
  in the completion sequence, for nextReady) and ``b/ITEM`` (batch, when not
  0); ``x/ITEM`` for items added later. A status change rewrites a few small
  fields, never the spec.
* ``order:ID:items`` hash: the download counts (``d/"ITEM"/FILE``,
  ``dl/ITEM``), made at the first download.
* Layout 2 (orders stored before; read and changed as they are): the spec,
  notification and statuses as whole JSON objects (``spec``,
  ``notification``), the items' fields in ``order:ID:items``, the ready items
  in the sorted set ``order:ID:ready``, the history in the list
  ``order:ID:history``. An order is in layout 3 when it has ``p/0``.
* indexes, per owner and across owners, all scored by the order's last update
  (any change to the order or one of its items): per status; per
  orderReference. Plus a per-owner counter of items not in a final status.
  "Every order" is the status indexes together (each order is in exactly one):
  versions before wrote an index of every order too (``orders_updated``);
  nothing reads it now, an order leaves it when it next changes.

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
    CHUNKS_MAX,
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
    "CACHED_ITEMS", "CACHED_ORDERS", "CHUNK_BYTES", "CHUNKS_MAX", "DOWNLOADS_KEPT", "HISTORY_KEPT", "ID_ATTEMPTS", "LAYOUT_VERSION",
    "MESSAGE_SECONDS", "SEARCH_BUDGET", "BadCursor", "Conflict", "FoundOrders", "HistoryLine", "ItemChange",
    "NoSuchItem", "NoSuchOrder", "OrderProgress", "OrderStore", "Resubmitted", "StoredResult",
    "TooManyActiveItems", "Transfer", "collections_of",
]


class OrderStore(OrderWrites, OrderSearch, OrderRecords, OrderSubscriptions, OrderRetention):
    """Orders, their items and the indexes over them. Only the ordering core writes."""
