"""One page of an OData list of orders: the rows a :class:`~.query.ListQuery`
selects, read through the store's indexes, its ``@odata.count``, and the
``$skiptoken`` of the next page.

Two ways, chosen by the query:

* **in index order** (no ``$orderby``): the orders are read as the store's
  status indexes hold them, oldest last update first, from the store's
  cursor on, narrowed by the hints (Status, a date's lower bound); each
  rendered row is checked against the filter, until the page is full or
  ``budget`` orders were examined (then the page ends early, with a token).
  The token is the store's cursor after the last row examined: a row never
  moves before it, so no order is missed however orders change between
  pages; an order changed meanwhile is listed again at its new place
  (that is what "last update" order means).
* **sorted** (``$orderby``, or a filter naming Ids): every matching row is
  gathered (``budget`` bounds it: beyond, a 400 asks for a narrower filter),
  sorted by the keys and then Id, and the page starts after the token's
  keys (the last row's values: a keyset, right whatever was added or removed).

``$count=true``: the indexes' cardinalities when the filter names Status
only (exact, one call), else by counting the scan (bounded likewise).

Pure: the store and the rendering are the caller's callables."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import urlencode

import attrs
import orjson

from ..model.accounts import Account
from ..model.errors import BadCursor, RequestRejected
from ..model.orders import Order, OrderStatus, OrderType
from .errors import ODataError, bad_request
from .query import ListQuery, SortKey
from .values import iso_time

Row = dict[str, Any]
MIN_READ = 32  # orders asked of the store at once when rows are checked
MAX_IDS = 1000  # Ids a filter may name (Id eq ... or ..., Id in (...))


class FoundPage(Protocol):
    """What ``find`` answers (core's OrderPage): the orders, the store's
    cursor after each of them, the cursor after the page (None: no more)."""

    @property
    def orders(self) -> Sequence[Order]: ...

    @property
    def cursors(self) -> Sequence[str]: ...

    @property
    def next(self) -> str | None: ...

    @property
    def updated(self) -> Sequence[float]: ...


class Find(Protocol):
    """find(statuses (None: any), updated_from, after (a cursor), limit):
    oldest update first, or with ``newest_first`` the other way."""

    def __call__(self, statuses: frozenset[OrderStatus] | None, updated_from: float | None, after: str | None,
                 limit: int, *, newest_first: bool = False) -> Awaitable[FoundPage]: ...


# Sort keys whose value is never after the order's last update: a list by
# one of them, newest first, can end its walk of the indexes early.
_BEFORE_UPDATE = frozenset({"SubmissionDate", "CompletedDate"})
# count(statuses (None: any)) -> how many orders (None: the indexes cannot tell cheaply)
Count = Callable[[frozenset[OrderStatus] | None], Awaitable[int | None]]
# get(order id) -> the caller's order of this list, None when it is not one
Get = Callable[[str], Awaitable[Order | None]]
Render = Callable[[Order], Row]


class Orders(Protocol):
    """The core calls a list is made of (oseod.core.ordering.OrderingService)."""

    async def find_orders(self, account: Account, *, statuses: frozenset[OrderStatus] | None = None,
                          updated_from: float | None = None, after: str | None = None, limit: int = 100,
                          order_type: OrderType | None = None, newest_first: bool = False) -> FoundPage: ...

    async def count_orders(self, account: Account, statuses: frozenset[OrderStatus] | None = None,
                           order_type: OrderType | None = None) -> int | None: ...

    async def get(self, account: Account, order_id: str) -> Order: ...


@attrs.frozen
class Page:
    rows: list[Row]
    count: int | None = None  # @odata.count (None: not asked)
    next_token: str | None = None  # $skiptoken of the next page (None: last page)


@attrs.frozen
class _Position:
    """A $skiptoken, decoded: the store cursor (index order) or the last
    row's sort values (sorted), the rows still to skip and to give."""

    cursor: str | None = None
    keys: list[Any] | None = None
    skip: int = 0
    top: int | None = None


def _fingerprint(query: ListQuery) -> str:
    return hashlib.sha256(query.fingerprint.encode()).hexdigest()[:12]


def _token(query: ListQuery, position: _Position) -> str:
    data = {"f": _fingerprint(query), "c": position.cursor, "k": position.keys, "s": position.skip,
            "t": position.top}
    return base64.urlsafe_b64encode(orjson.dumps(data)).decode().rstrip("=")


def _position(query: ListQuery) -> _Position:
    """Where this page starts: from the $skiptoken, else the start with $skip and $top."""
    if query.skiptoken is None:
        return _Position(skip=query.skip, top=query.top)
    text = query.skiptoken
    try:
        data = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        if not isinstance(data, dict) or data.get("f") != _fingerprint(query):
            raise ValueError
        cursor, keys, skip, top = data.get("c"), data.get("k"), data.get("s"), data.get("t")
        if (not (cursor is None or isinstance(cursor, str)) or not (keys is None or isinstance(keys, list))
                or not isinstance(skip, int) or not (top is None or isinstance(top, int))):
            raise ValueError
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise bad_request("$skiptoken", "not a $skiptoken of this list (follow @odata.nextLink as given)") from None
    return _Position(cursor, keys, max(0, skip), top)


def next_link_query(args: Mapping[str, str], token: str) -> str:
    """The query string of ``@odata.nextLink``: the request's options with
    ``$skiptoken`` (which carries what is left of $skip and $top)."""
    kept = {k: v for k, v in args.items() if k not in ("$skiptoken", "$skip", "$top")}
    kept["$skiptoken"] = token
    return urlencode(kept, safe="$,'()")


async def list_page(query: ListQuery, *, find: Find, count: Count, get: Get, render: Render,
                    budget: int) -> Page:
    """One page of the list ``query`` asks for (see the module's words)."""
    position = _position(query)
    hints = query.hints
    total: int | None = None
    if hints.statuses is not None and not hints.statuses:
        return Page([], 0 if query.count else None)  # (a filter nothing can match)
    if hints.order_ids is not None or query.orderby:
        return await _sorted_page(query, position, find, get, render, budget)
    try:
        if query.count:
            total = await count(hints.statuses) if hints.index_only else None
            if total is None:
                total = await _scan_count(query, find, render, budget)
        rows, cursor, top, skip = await _index_page(query, position, find, render, budget)
    except BadCursor:
        raise bad_request("$skiptoken", "not a $skiptoken of this list (follow @odata.nextLink as given)") from None
    token = None
    if cursor is not None and top != 0:
        token = _token(query, _Position(cursor=cursor, skip=skip, top=top))
    return Page(rows, total, token)


async def list_orders(orders: Orders, account: Account, query: ListQuery, *, render: Render, budget: int,
                      order_type: OrderType | None = None) -> Page:
    """:func:`list_page` of ``account``'s orders (of ``order_type``, None:
    any) through the core: what the /odata/v1 lists call."""

    async def find(statuses: frozenset[OrderStatus] | None, updated_from: float | None, after: str | None,
                   limit: int, *, newest_first: bool = False) -> FoundPage:
        return await orders.find_orders(account, statuses=statuses, updated_from=updated_from, after=after,
                                        limit=limit, order_type=order_type, newest_first=newest_first)

    async def count(statuses: frozenset[OrderStatus] | None) -> int | None:
        return await orders.count_orders(account, statuses, order_type)

    async def get(order_id: str) -> Order | None:
        try:
            order = await orders.get(account, order_id)
        except RequestRejected:  # (another user's, or none: not in this list)
            return None
        return order if order_type is None or order.spec.order_type is order_type else None

    return await list_page(query, find=find, count=count, get=get, render=render, budget=budget)


def _wanted(query: ListQuery, top: int | None) -> int:
    return query.page_size if top is None else min(query.page_size, top)


async def _index_page(query: ListQuery, position: _Position, find: Find, render: Render,
                      budget: int) -> tuple[list[Row], str | None, int | None, int]:
    """The rows of a page in index order, the cursor after the last order
    examined (None: the end), and what is left of $top and of $skip."""
    hints, top, skip = query.hints, position.top, position.skip
    want = _wanted(query, top)
    rows: list[Row] = []
    cursor = position.cursor
    examined = 0
    while len(rows) < want:
        if examined >= budget:
            break  # (a page cut short: the token goes on from here)
        # (one more than the page needs: whether more follow is then known, no empty last page)
        limit = want - len(rows) + skip + 1
        if not hints.index_only:
            limit = max(limit, MIN_READ)
        found = await find(hints.statuses, hints.updated_from, cursor, min(limit, budget - examined + 1))
        stopped = False
        for n, (order, after) in enumerate(zip(found.orders, found.cursors)):
            examined += 1
            cursor = after
            row = render(order)
            if hints.index_only or query.matches(row):
                if skip:
                    skip -= 1
                else:
                    rows.append(row)
                    if len(rows) == want:
                        stopped = True
                        if n == len(found.orders) - 1 and found.next is None:
                            cursor = None  # (that was the last)
                        break
        if not stopped:
            if found.next is None:
                cursor = None
                break
            cursor = found.next
            if not found.orders:
                examined += MIN_READ  # (the store's budget ended the read: count it, so this ends)
    if top is not None:
        top -= len(rows)
    return rows, cursor, top, skip  # (a $skip beyond what this page examined: carried on)


async def _scan_count(query: ListQuery, find: Find, render: Render, budget: int) -> int:
    """The rows matching a filter the indexes cannot count, by reading them."""
    hints, cursor, examined, total = query.hints, None, 0, 0
    while True:
        found = await find(hints.statuses, hints.updated_from, cursor, min(1000, budget + 1 - examined))
        for order in found.orders:
            examined += 1
            total += query.matches(render(order))
        if found.next is None:
            return total
        if examined >= budget or not found.orders:
            raise _too_many("$count", budget)
        cursor = found.next


def _too_many(target: str, budget: int) -> ODataError:
    return bad_request(target, f"more than {budget} orders to examine: narrow $filter with Status, "
                               f"Id or a lower bound of SubmissionDate or CompletedDate")


async def _sorted_page(query: ListQuery, position: _Position, find: Find, get: Get, render: Render,
                       budget: int) -> Page:
    hints = query.hints
    rows: list[Row] = []
    if hints.order_ids is not None:
        if len(hints.order_ids) > MAX_IDS:
            raise bad_request("$filter", f"at most {MAX_IDS} Ids at once")
        for order_id in hints.order_ids:
            order = await get(order_id)
            if order is not None:
                row = render(order)
                if query.matches(row):
                    rows.append(row)
    elif not query.count and query.orderby[0].descending and query.orderby[0].name in _BEFORE_UPDATE:
        rows = await _newest_rows(query, position, find, render, budget)
    else:
        target = "$orderby"
        cursor, examined = None, 0
        try:
            while True:
                found = await find(hints.statuses, hints.updated_from, cursor, min(1000, budget + 1 - examined))
                for order in found.orders:
                    examined += 1
                    row = render(order)
                    if hints.index_only or query.matches(row):
                        rows.append(row)
                if found.next is None:
                    break
                if examined >= budget or not found.orders:
                    raise _too_many(target, budget)
                cursor = found.next
        except BadCursor:  # (no cursor of ours is given: a store that changed its mind)
            raise _too_many(target, budget) from None
    keys = query.orderby + (SortKey("Id"),)
    rows.sort(key=functools.cmp_to_key(lambda a, b: _compare_rows(_values(a, keys), _values(b, keys), keys)))
    total = len(rows) if query.count else None
    if position.keys is not None:
        if len(position.keys) != len(keys):
            raise bad_request("$skiptoken", "not a $skiptoken of this list (follow @odata.nextLink as given)")
        rows = [r for r in rows if _compare_rows(_values(r, keys), position.keys, keys) > 0]
    rows = rows[position.skip:]
    want = _wanted(query, position.top)
    page, rest = rows[:want], rows[want:]
    top = None if position.top is None else position.top - len(page)
    token = None
    if rest and top != 0:
        token = _token(query, _Position(keys=_values(page[-1], keys), top=top))
    return Page(page, total, token)


async def _newest_rows(query: ListQuery, position: _Position, find: Find, render: Render, budget: int) -> list[Row]:
    """The rows a page sorted newest first by SubmissionDate or CompletedDate
    needs (and one more), without reading every order: the indexes are read
    newest update first, and an order's submission and completion are never
    after its last update, so once enough rows are later than the update
    reached, no order still unread can come before them (the usual "latest
    orders" page reads a page's worth of orders, not the whole list)."""
    hints, keys = query.hints, query.orderby + (SortKey("Id"),)
    first = query.orderby[0].name
    need = position.skip + _wanted(query, position.top) + 1
    rows: list[Row] = []
    settled, cursor, examined = 0, None, 0
    read = max(MIN_READ, need)  # (the first read usually settles the page; then twice as many each time)
    while True:
        found = await find(hints.statuses, hints.updated_from, cursor, min(read, 1000, budget + 1 - examined),
                           newest_first=True)
        read *= 2
        for order in found.orders:
            examined += 1
            row = render(order)
            if (hints.index_only or query.matches(row)) and (
                    position.keys is None or _compare_rows(_values(row, keys), position.keys, keys) > 0):
                rows.append(row)
        if found.next is None:
            return rows
        if found.updated:
            # (fixed-width texts: later than every unread order's value, strictly)
            reached = iso_time(found.updated[-1])
            settled = sum(1 for r in rows if r.get(first) is not None and r[first] > reached)
            if settled >= need:
                return rows
        if examined >= budget or not found.orders:
            raise _too_many("$orderby", budget)
        cursor = found.next


def _values(row: Mapping[str, Any], keys: Sequence[SortKey]) -> list[Any]:
    return [row.get(k.name) for k in keys]


def _compare_rows(a: Sequence[Any], b: Sequence[Any], keys: Sequence[SortKey]) -> int:
    """-1, 0, 1: a before, with or after b. Nulls come first ascending (OData),
    last descending."""
    for x, y, key in zip(a, b, keys):
        if x == y:
            continue
        if x is None:
            order = -1
        elif y is None:
            order = 1
        else:
            try:
                order = -1 if x < y else 1
            except TypeError:  # (values of two types: a tampered token; by their text)
                order = -1 if str(x) < str(y) else 1
        return -order if key.descending else order
    return 0
