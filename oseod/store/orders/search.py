"""Searching orders (GetStatus, the operators' lists): pages read from the
indexes only, with a cursor."""

from __future__ import annotations

from collections.abc import Collection

from ...model import codec
from ...model.orders import Order, OrderStatus
from .. import keys
from ..orderids import ORDER_ID
from .base import OrderStoreBase
from .layout import _MEMBER_WIDTH, _STATUSES, _order_id, _score, script
from .values import BadCursor, FoundOrders

# Examined at most per search of every user's orders (operators' lists):
# bounds the time of a search whose criteria match few of many orders.
SEARCH_BUDGET = 20_000

_FIND = script("orders_find")
_COUNT = script("orders_count")


def _cursor(text: str | None) -> tuple[str, str]:
    """A page's cursor (made by OrderStore.find) as the script's score and member."""
    if not text:
        return "", ""
    score, _, member = text.partition("~")
    try:
        float(score)
    except ValueError:
        raise BadCursor(f"not a cursor: {text[:40]!r}") from None
    if len(member) != _MEMBER_WIDTH or not ORDER_ID.match(_order_id(member)):
        raise BadCursor(f"not a cursor: {text[:40]!r}")
    return score, member


class OrderSearch(OrderStoreBase):
    """Searches over the indexes."""

    async def search(self, owner: str | None, last_update: float | None, last_update_end: float | None,
                     statuses: Collection[OrderStatus], reference: str | None, limit: int) -> list[Order]:
        """The orders of ``owner`` (None: of everybody) last updated within
        [last_update, last_update_end], in one of ``statuses`` (empty: any),
        with orderReference ``reference`` (None: any); newest update first, at
        most ``limit``."""
        ids = await self.search_ids(owner, last_update, last_update_end, statuses, reference, limit)
        return await self.get_many(ids)

    async def search_ids(self, owner: str | None, last_update: float | None, last_update_end: float | None,
                         statuses: Collection[OrderStatus], reference: str | None, limit: int) -> list[str]:
        if limit <= 0:
            return []
        found = await self.find(owner=owner, statuses=statuses, reference=reference, updated_from=last_update,
                                updated_to=last_update_end, limit=limit, budget=0)
        return list(found.order_ids)

    async def find(self, *, owner: str | None = None, statuses: Collection[OrderStatus] = (),
                   reference: str | None = None, collection: str | None = None, order_type: str | None = None,
                   updated_from: float | None = None, updated_to: float | None = None, oldest_first: bool = False,
                   after: str | None = None, limit: int = 50, budget: int = SEARCH_BUDGET) -> FoundOrders:
        """A page of the orders matching every criterion given (of
        ``owner``, None: everybody; in one of ``statuses``; with
        orderReference ``reference``; with an item of ``collection``; of
        ``order_type``; last updated within [updated_from, updated_to]),
        newest update first (``oldest_first``: the other way), after the
        cursor ``after`` of the page before (BadCursor when it is not one).
        Reads indexes only, examining at most ``budget`` entries (0: no bound)."""
        criteria: list[list[str]] = []
        if statuses:
            criteria.append([keys.orders_in_status(owner, s.value) for s in _STATUSES if s in statuses])
        if reference:
            criteria.append([keys.orders_with_reference(owner, reference)])
        if collection:
            criteria.append([keys.orders_in_collection(collection)])
        if order_type:
            criteria.append([keys.orders_of_type(order_type)])
        if not criteria or (owner is not None and not (statuses or reference)):
            # Every order of ``owner`` (of everybody): its status indexes together,
            # each order in exactly one (see layout._scored_indexes).
            criteria.insert(0, [keys.orders_in_status(owner, s.value) for s in _STATUSES])
        cursor_score, cursor_member = _cursor(after)
        if limit <= 0:
            return FoundOrders((), None)
        members, next_score, next_member, cut, scores = await self._redis.conn.eval(
            _FIND, [k for criterion in criteria for k in criterion],
            [codec.json_text([len(c) for c in criteria]),
             "+inf" if updated_to is None else _score(updated_to), "-inf" if updated_from is None else _score(updated_from),
             str(limit), "1" if oldest_first else "", cursor_score, cursor_member, str(budget)])
        members = members or ()
        return FoundOrders(tuple(_order_id(m) for m in members),
                           f"{next_score}~{next_member}" if next_member else None, bool(int(cut)),
                           tuple(f"{score}~{member}" for score, member in zip(scores or (), members)))

    async def count(self, owner: str, statuses: Collection[OrderStatus] | None = None, order_type: str | None = None,
                    budget: int = SEARCH_BUDGET) -> int | None:
        """How many orders ``owner`` has in one of ``statuses`` (None: any),
        of ``order_type`` (None: any): the sum of the status indexes'
        cardinalities; with a type, their intersection with the type's
        index (everybody's), counted over the smaller side, None when that
        side is over ``budget`` entries (too long to count in one script)."""
        chosen = _STATUSES if statuses is None else [s for s in _STATUSES if s in statuses]
        if not chosen:
            return 0
        status_keys = [keys.orders_in_status(owner, s.value) for s in chosen]
        type_keys = [keys.orders_of_type(order_type)] if order_type else []
        counted = int(await self._redis.conn.eval(_COUNT, [*status_keys, *type_keys],
                                                  ["1" if order_type else "", str(budget)]))
        return None if counted < 0 else counted
