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
"""

from __future__ import annotations

import collections
import hashlib
import json
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import attrs
import txredisapi
from twisted.logger import Logger

from ..model import codec
from ..model.orders import Item, ItemSpec, Notification, Order, OrderSpec, OrderStatus, OrderType, StatusInfo
from . import keys, lua
from .connection import ReplicationShortfall
from .jobs import GROUP as JOB_GROUP
from .jobs import Job, job_fields
from .leader import FENCE_HOOK, Deposed, Fence, deposed
from .orderids import ORDER_ID, new_order_id
from .outbox import CALLBACK, MAIL, ORDER_CHANNELS, Failure, failure_from_json
from .stats import BUCKET_HOOK, DOWNLOADS, bucket_keys
from .wsn import NOTIFY_HOOK, WSN

# The decoded orders an OrderStore keeps (see _OrderCache): enough for every
# order a busy service's clients poll; bigger (massive) orders are not kept.
CACHED_ORDERS = 4096
ID_ATTEMPTS = 8  # candidate ids drawn for one new order before giving up
# How long a Submit's wsa:MessageID names the order it made: a retry within
# that answers the same order (issue 14).
MESSAGE_SECONDS = 24 * 3600
CACHED_ITEMS = 1000
_MEMBER_WIDTH = 20
_STATUSES = tuple(OrderStatus)
_WITH_RESULT = (OrderStatus.Completed, OrderStatus.Downloaded)
# The layout this code writes (keys.schema_version once every order is in it):
# 2 added the collection and type indexes and the items-per-status counters.
LAYOUT_VERSION = "2"
HISTORY_KEPT = 200  # status changes kept per order (a subscription changes little; items do not write here)
DOWNLOADS_KEPT = 500  # transfers kept per order

# The scripts (oseod/store/lua/*.lua, each headed by its KEYS and ARGV),
# with what Python owns filled in: the statuses, the other modules' hooks.
_VALUES: dict[str, object] = {
    "N": len(_STATUSES),
    "POS": ", ".join(f"{s.value} = {i + 1}" for i, s in enumerate(_STATUSES)),
    "FINAL": ", ".join(f"{s.value} = true" for s in _STATUSES if s.is_final),
    "WITH_RESULT": ", ".join(f"{s.value} = true" for s in _WITH_RESULT),
    "HISTORY_KEPT": HISTORY_KEPT,
    "MEMBER_WIDTH": _MEMBER_WIDTH,
    "DOWNLOADS_KEPT": DOWNLOADS_KEPT,
    "DOWNLOADS": DOWNLOADS,
    "bucket_hook": BUCKET_HOOK,
    "fence_hook": FENCE_HOOK,
    "notify_hook": NOTIFY_HOOK,
}
_CREATE = lua.load("order_create", **_VALUES)
_FORGET_MESSAGE = lua.load("order_forget_message", **_VALUES)
_UNACCEPT = lua.load("order_unaccept", **_VALUES)
_SET_ORDER_STATUS = lua.load("order_set_status", **_VALUES)
_SET_ITEMS_STATUS = lua.load("order_set_items_status", **_VALUES)
_ADD_ITEMS = lua.load("order_add_items", **_VALUES)
_PURGE = lua.load("order_purge", **_VALUES)
_INDEX_OLDER = lua.load("order_index_older", **_VALUES)
_NEXT_READY = lua.load("order_next_ready", **_VALUES)
_QUEUE_MAIL = lua.load("order_queue_mail", **_VALUES)
_RECORD_TRANSFER = lua.load("order_record_transfer", **_VALUES)
_LOAD = lua.load("orders_load", **_VALUES)
_FIND = lua.load("orders_find", **_VALUES)

# Examined at most per search of every user's orders (operators' lists):
# bounds the time of a search whose criteria match few of many orders.
SEARCH_BUDGET = 20_000


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


def collections_of(order: Order) -> set[str]:
    """The collections of the order's items (its entries in the collection indexes)."""
    return {item.spec.collection_id for item in order.items if item.spec.collection_id}


def _history_entry(status: StatusInfo, by: str) -> str:
    return codec.json_text({"at": status.changed_at, "status": status.status.value,
                            "info": status.additional_info or "", "by": by})


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


def _member(order_id: str) -> str:
    return order_id.zfill(_MEMBER_WIDTH)


def _order_id(member: str) -> str:
    return member.lstrip("0")


def _score(moment: float) -> str:
    return repr(float(moment))


def _statuses(allowed: Iterable[OrderStatus] | None) -> str:
    return "" if allowed is None else "|" + "|".join(s.value for s in allowed) + "|"


def _order_keys(order_id: str, identity: _Identity, at: float) -> list[str]:
    """The KEYS of the order-changing scripts (see lua/order_prelude.lua), for a change at ``at``."""
    owner, reference = identity.owner, identity.reference
    layout = [
        keys.order(order_id), keys.order_items(order_id), keys.order_ready(order_id), keys.active_items(owner),
        keys.results_by_completion(), keys.items_by_status(), keys.order_history(order_id), *bucket_keys(at),
        *(keys.orders_in_status(owner, s.value) for s in _STATUSES),
        *(keys.orders_in_status(None, s.value) for s in _STATUSES),
        *_scored_indexes(identity),
    ]  # fmt: skip
    return layout


def _scored_indexes(identity: _Identity) -> list[str]:
    """The indexes an order is in whatever its status."""
    owner, reference = identity.owner, identity.reference
    found = [keys.orders_updated(owner), keys.orders_updated(None)]
    if reference:
        found += [keys.orders_with_reference(owner, reference), keys.orders_with_reference(None, reference)]
    if identity.order_type:
        found.append(keys.orders_of_type(identity.order_type))
    found += [keys.orders_in_collection(c) for c in identity.collections]
    return found


def _collections_field(collections: Iterable[str]) -> str:
    return codec.json_text(sorted(collections))


@attrs.frozen
class _Identity:
    """What never changes about an order and is needed to name its index keys."""

    owner: str
    reference: str | None
    order_type: str = ""
    collections: tuple[str, ...] = ()


class OrderStore:
    """Orders, their items and the indexes over them. Only the ordering core writes."""

    log = Logger()

    def __init__(self, redis: Any, *, cached_orders: int = CACHED_ORDERS, mail: bool = False,
                 new_id: Callable[[], str] = new_order_id, message_seconds: int = MESSAGE_SECONDS) -> None:
        """``mail``: e-mail is on, so every new order and change of status
        is queued for the e-mail channel with it. ``new_id``: draws a
        candidate id for a new order (:mod:`.orderids`)."""
        self._redis = redis
        self._mail = mail
        self._identities: dict[str, _Identity] = {}
        self._orders = _OrderCache(cached_orders)
        self._new_id = new_id
        self._message_seconds = message_seconds

    # ------------------------------------------------------------------ writing

    async def create(self, order: Order, *, max_active_items: int | None = None,
                     jobs: Callable[[str], Sequence[Job]] = lambda order_id: (),
                     subscribed_until: float | None = None, message_id: str | None = None,
                     acknowledged: bool = False) -> Order:
        """Store ``order`` under a new id (its ``order_id`` is ignored) and
        return it with that id. With ``max_active_items``, refuse with
        TooManyActiveItems when the owner's unfinished items plus this order's
        would exceed it (checked and counted in the same atomic step).
        ``jobs(order_id)``: the jobs to queue with it, in the same step (all
        of one priority). A subscription (``subscribed_until``, Unix time)
        is entered in the index of each of its items' collections.

        ``message_id`` (the Submit's wsa:MessageID): when the owner sent a
        Submit with it within MESSAGE_SECONDS, no order is made and
        Resubmitted raised with the first one (decided in the same atomic
        step, so concurrent retries make one order). ``acknowledged``: the
        client is told, so with ``[redis] min_replicas`` the order must be
        on the replicas; when it is not, it is taken back whole and
        ReplicationShortfall raised."""
        order = attrs.evolve(order, spec=attrs.evolve(order.spec, items=tuple(i.spec for i in order.items)))
        status = order.status.status
        fields = [
            "owner", order.owner,
            "order_type", order.spec.order_type.value,
            "reference", order.spec.reference or "",
            "created_at", _score(order.created_at),
            "notification", codec.dumps(order.notification),
            "status", status.value,
            "status_info", codec.dumps(order.status),
            "completion_seq", "0",
            "ready_cursor", "0",
            "items_total", str(len(order.items)),
            "collections", _collections_field(collections_of(order)),
        ]  # fmt: skip
        counts = collections.Counter(i.status.status.value for i in order.items)
        for item_status, count in counts.items():
            fields += [f"n/{item_status}", str(count)]
        item_fields: list[str] = []
        encoded: dict[StatusInfo, str] = {}  # the items of a new order mostly share one status
        for item in order.items:
            if item.status.status in _WITH_RESULT:
                raise ValueError(f"item {item.spec.item_id} cannot be created {item.status.status.value}")
            if item.status not in encoded:
                encoded[item.status] = codec.dumps(item.status)
            item_fields += [f"s/{item.spec.item_id}", encoded[item.status]]
            if item.batch:
                item_fields += [f"b/{item.spec.item_id}", str(item.batch)]
        added = sum(1 for item in order.items if not item.status.status.is_final)
        reference = order.spec.reference or None
        identity = _Identity(order.owner, reference, order.spec.order_type.value, tuple(sorted(collections_of(order))))
        subscription_keys = [] if subscribed_until is None else [
            keys.subscriptions(c) for c in sorted({i.spec.collection_id or "" for i in order.items})]
        # The same for every candidate id: encoded once.
        encoded_fields, encoded_items = _json_array(fields), _json_array(item_fields)
        spec, first_status = codec.dumps(order.spec), codec.dumps(order.status) if self._mail else ""
        history, per_status = _history_entry(order.status, ""), codec.json_text(counts)
        # Where the MessageID names the order (without one, a key the script leaves alone).
        seen = keys.submit_message(order.owner, hashlib.sha256(message_id.encode()).hexdigest()
                                   if message_id else "")
        for _ in range(ID_ATTEMPTS):
            # A random id is taken only by a one-in-2^69 chance; the script checks.
            order_id = self._new_id()
            queued = list(jobs(order_id))
            stream = _stream_of(queued)
            create_keys = [keys.order(order_id), keys.order_items(order_id), keys.active_items(order.owner),
                          stream, keys.items_by_status(), keys.order_history(order_id),
                          keys.orders_in_status(order.owner, status.value), keys.orders_in_status(None, status.value),
                          *_scored_indexes(identity), *subscription_keys, keys.outbox_queue(MAIL, order_id),
                          keys.outbox_due(), seen]
            try:
                answer = await self._redis.conn.eval(
                    _CREATE, create_keys,
                    [_member(order_id), _score(order.status.changed_at or order.created_at), str(added),
                     "" if max_active_items is None else str(max_active_items),
                     encoded_fields, encoded_items, _jobs_argument(queued), str(len(subscription_keys)),
                     # The spec on its own: the largest value, not encoded a second time inside the fields' JSON.
                     _score(subscribed_until or 0.0), spec, order_id if self._mail else "", first_status,
                     history, per_status, str(self._message_seconds) if message_id else "", order_id],
                    acknowledged=acknowledged,
                )
            except ReplicationShortfall as e:
                if isinstance(e.reply, list) and str(e.reply[0]) == "1":
                    await self._unaccept(order_id, identity, subscription_keys, stream, seen,
                                         [str(job) for job in e.reply[2:]])
                raise
            if str(answer[0]) == "3":
                first = await self.get(str(answer[1]))
                if first is not None:
                    raise Resubmitted(first)
                # Its order is gone (purged): the MessageID is free again, unless a concurrent retry took it.
                await self._redis.conn.eval(_FORGET_MESSAGE, [seen], [str(answer[1])])
                continue
            if str(answer[0]) != "2":
                break
        else:
            raise RuntimeError(f"no free order id in {ID_ATTEMPTS} attempts: is new_id random?")
        if str(answer[0]) != "1":
            raise TooManyActiveItems(int(answer[1]), added, max_active_items or 0)
        self._remember(order_id, identity)
        items = tuple(i if i.completed_at is None else attrs.evolve(i, completed_at=None) for i in order.items)
        return attrs.evolve(order, order_id=order_id, items=items, version=1)

    async def _unaccept(self, order_id: str, identity: _Identity, subscription_keys: list[str], stream: str,
                        seen: str, job_ids: list[str]) -> None:
        """Take back a new order its client is not told of (see _UNACCEPT)."""
        try:
            await self._redis.conn.eval(
                _UNACCEPT,
                _order_keys(order_id, identity, 0.0) + subscription_keys
                + [stream, keys.outbox_queue(MAIL, order_id), keys.outbox_due(), seen],
                [_member(order_id), order_id, str(len(subscription_keys)), _json_array(job_ids), JOB_GROUP])
        except Exception as e:
            # Left for an operator: the order stands, though its client was told to try again.
            self.log.error("order {order_id} was not replicated and could not be taken back: {error}",
                           order_id=order_id, error=e)
        self._orders.drop(order_id)
        self._identities.pop(order_id, None)

    async def set_order_status(self, order_id: str, status: StatusInfo, *,
                               allowed: Collection[OrderStatus] | None = None,
                               notification: Notification | None = None, jobs: Sequence[Job] = (),
                               by: str = "", acknowledged: bool = False) -> bool:
        """Set the order's status, at ``status.changed_at``. With ``allowed``,
        only if its current status is one of those; False when refused. A
        ``notification`` replaces the stored one, and ``jobs`` (of one
        priority) are queued, in the same step. ``by``: the operator who
        asked for the change (the order's history says so).
        ``acknowledged``: somebody is told of it (see ``Scripting.eval``)."""
        return await self._set_order_status(order_id, status, allowed, None, notification, jobs, by,
                                            acknowledged=acknowledged)

    async def set_item_status(self, order_id: str, item_id: str, status: StatusInfo,
                              completed_at: float | None = None, *,
                              allowed: Collection[OrderStatus] | None = None) -> bool:
        """Set one item's status, at ``status.changed_at``. On reaching
        Completed (or Downloaded) the item is ready for DescribeResultAccess,
        completed at ``completed_at`` (default: ``status.changed_at``); back in
        a status without a result, it is not. With ``allowed``, only if the
        item's current status is one of those; False when refused."""
        (done,) = await self.set_items_status(order_id, [ItemChange(item_id, status, completed_at)], allowed=allowed)
        return done

    async def queue_mail(self, order_id: str, data: Mapping[str, object], at: float) -> None:
        """With e-mail on, queue ``data`` for the e-mail channel behind the
        order's other mails (an event no status change tells, such as a
        batch being ready)."""
        if self._mail and ORDER_ID.match(order_id):
            await self._redis.conn.eval(_QUEUE_MAIL, [keys.order(order_id), keys.outbox_queue(MAIL, order_id),
                                                      keys.outbox_due()], [order_id, _score(at), json.dumps(data)])

    async def callback_failure(self, order_id: str) -> Failure | None:
        """The last status call-back of the order that the outbox gave up on."""
        text = await self._redis.conn.hget(keys.order(order_id), f"{CALLBACK}_failure")
        return failure_from_json(text) if text else None

    async def set_items_status(self, order_id: str, changes: Sequence[ItemChange], *,
                               allowed: Collection[OrderStatus] | None = None,
                               jobs: Sequence[Job] = (), acknowledged: bool = False) -> list[bool]:
        """:meth:`set_item_status` for several items of one order in one
        atomic step (a batch finishing, a cancel); the order counts as
        updated at the latest of their times. ``jobs`` (of one priority)
        are queued in the same step, unless a change was refused (items put
        back in the queue never get a job for items that did not move).
        Which changes were made."""
        if not changes:
            return []
        identity = await self._identity(order_id)
        payload = _json_array([
            [change.item_id, change.status.status.value, codec.dumps(change.status),
             "" if change.completed_at is None else _score(change.completed_at)]
            for change in changes
        ])
        try:
            at = max(c.status.changed_at for c in changes)
            answer = await self._redis.conn.eval(
                _SET_ITEMS_STATUS,
                _order_keys(order_id, identity, at) + ([_stream_of(jobs)] if jobs else []),
                [_member(order_id), _score(at), _statuses(allowed), payload, _jobs_argument(jobs)],
                acknowledged=acknowledged,
            )
        except txredisapi.ResponseError as e:
            message = str(e)
            if "NOITEM " in message:
                raise NoSuchItem(message.split("NOITEM ", 1)[1]) from None
            raise
        if not isinstance(answer, list):
            raise NoSuchOrder(order_id)
        return [int(result) == 1 for result in answer]

    async def update_order_status(self, order_id: str, decide: Callable[[OrderProgress], StatusInfo | None], *,
                                  attempts: int = 20) -> OrderProgress:
        """Compare-and-set: read the order's progress (O(1), whatever its
        number of items), ask ``decide`` for its new status (None: leave it),
        write it only if nothing changed the order or its items meanwhile,
        else start over. Returns the progress with the status decided on."""
        fields = ["version", "order_type", "status_info", "items_total", "failed_item", "failed_reason",
                  *(f"n/{s.value}" for s in _STATUSES)]
        for _ in range(attempts):
            values = await self._redis.conn.hmget(keys.order(order_id), fields) if ORDER_ID.match(order_id) else []
            if not values or values[0] is None:
                raise NoSuchOrder(order_id)
            version, order_type, status_info, total, failed_item, failed_reason, *counts = values
            progress = OrderProgress(
                order_id=order_id,
                order_type=OrderType(order_type),
                status=codec.loads(StatusInfo, status_info),
                total=int(total),
                counts={s: int(n) for s, n in zip(_STATUSES, counts) if n and int(n)},
                last_failure=(failed_item, failed_reason) if failed_item is not None else None,
            )
            status = decide(progress)
            if status is None:
                return progress
            if await self._set_order_status(order_id, status, None, version, None):
                return attrs.evolve(progress, status=status)
        raise Conflict(f"order {order_id} kept changing while its status was derived")

    async def next_ready(self, order_id: str) -> frozenset[str]:
        """The ids of the items that got a result since the previous call
        (all of them at the first call); the next call starts after them."""
        if not ORDER_ID.match(order_id):
            raise NoSuchOrder(order_id)
        ids = await self._redis.conn.eval(_NEXT_READY, [keys.order(order_id), keys.order_ready(order_id)], [])
        if ids is None:
            raise NoSuchOrder(order_id)
        return frozenset(ids)

    async def add_items(self, order_id: str, items: Sequence[Item], job: Job, *, marker: str | None = None) -> bool:
        """Add ``items`` (all of one batch) to an unfinished order and queue
        ``job`` for them, in one step; with ``marker``, only once per marker
        (a subscription's timeslot). False when not added."""
        identity = await self._identity(order_id)
        payload = _json_array([[item.spec.item_id, codec.to_data(item.spec), codec.dumps(item.status)]
                               for item in items])
        try:
            answer = int(await self._redis.conn.eval(
                _ADD_ITEMS, _order_keys(order_id, identity, max(i.status.changed_at for i in items))
                + [_stream_of([job])],
                [_member(order_id), _score(max(i.status.changed_at for i in items)),
                 f"m/{marker}" if marker else "", payload, str(items[0].batch), _json_array(job_fields(job))]))
        except txredisapi.ResponseError as e:
            if "ITEMEXISTS " in str(e):
                raise ValueError(f"order {order_id} has an item {str(e).split('ITEMEXISTS ', 1)[1]} already") from None
            raise
        if answer == -1:
            raise NoSuchOrder(order_id)
        return answer == 1

    async def subscriptions(self, collection_id: str, active_at: float) -> list[str]:
        """Ids of the subscriptions on ``collection_id`` whose end is after
        ``active_at`` (those cancelled since may be among them)."""
        members = await self._redis.conn.execute_command(
            "ZRANGEBYSCORE", keys.subscriptions(collection_id), f"({_score(active_at)}", "+inf")
        return [_order_id(m) for m in members or ()]

    async def subscriptions_ended(self, collection_id: str, before: float) -> list[str]:
        members = await self._redis.conn.execute_command(
            "ZRANGEBYSCORE", keys.subscriptions(collection_id), "-inf", _score(before))
        return [_order_id(m) for m in members or ()]

    async def subscribed_until(self, order_id: str, collection_ids: Iterable[str]) -> float | None:
        """When the subscription ends (its score in the collections'
        subscription indexes; None: in none of them)."""
        ends = []
        for collection_id in collection_ids:
            score = await self._redis.conn.execute_command("ZSCORE", keys.subscriptions(collection_id),
                                                           _member(order_id))
            if score is not None:
                ends.append(float(score))
        return min(ends) if ends else None

    async def unsubscribe(self, order_id: str, collection_ids: Iterable[str]) -> None:
        """Take the order out of these collections' subscription indexes."""
        for collection_id in collection_ids:
            await self._redis.conn.execute_command("ZREM", keys.subscriptions(collection_id), _member(order_id))

    async def record_download(self, order_id: str, item_id: str, name: str, at: float) -> set[str]:
        """Count a complete download of file ``name`` of the item, at ``at``;
        the names of the item's files downloaded completely so far."""
        prefix = f"d/{json.dumps(item_id)}/"
        items_key = keys.order_items(order_id)
        await self._redis.conn.hincrby(items_key, prefix + name, 1)
        await self._redis.conn.hset(items_key, f"dl/{item_id}", _score(at))
        fields = await self._redis.conn.hkeys(items_key)
        return {f[len(prefix):] for f in fields if f.startswith(prefix)}

    async def record_downloads(self, order_id: str, item_ids: Sequence[str], name: str, at: float) -> None:
        """Count a complete download of ``name`` for each of the items, at
        ``at``: a package holding them all."""
        items_key = keys.order_items(order_id)
        for item_id in item_ids:
            await self._redis.conn.hincrby(items_key, f"d/{json.dumps(item_id)}/{name}", 1)
        if item_ids:
            await self._redis.conn.hmset(items_key, {f"dl/{item_id}": _score(at) for item_id in item_ids})

    async def downloads(self, order_id: str) -> dict[str, tuple[int, float]]:
        """Per item: complete downloads so far (all files) and the last one's time."""
        fields: dict[str, str] = await self._redis.conn.hgetall(keys.order_items(order_id))
        counts: dict[str, int] = {}
        for field, value in fields.items():
            if field.startswith("d/"):
                item_id, _ = json.JSONDecoder().raw_decode(field[2:])
                counts[item_id] = counts.get(item_id, 0) + int(value)
        return {item_id: (count, float(fields.get(f"dl/{item_id}", "0"))) for item_id, count in counts.items()}

    async def record_transfer(self, order_id: str, transfer: Transfer) -> None:
        """Log one transfer of the order's results, complete or not (a
        complete one counts in the downloads of its hour and minute)."""
        if ORDER_ID.match(order_id):
            await self._redis.conn.eval(
                _RECORD_TRANSFER, [keys.order(order_id), keys.order_downloads(order_id), *bucket_keys(transfer.at)],
                [json.dumps(attrs.asdict(transfer), ensure_ascii=False), "1" if transfer.complete else ""])

    async def transfers(self, order_id: str) -> list[Transfer]:
        """The transfers of the order's results, oldest first (the last DOWNLOADS_KEPT)."""
        if not ORDER_ID.match(order_id):
            return []
        found = await self._redis.conn.lrange(keys.order_downloads(order_id), 0, -1) or ()
        return [Transfer(**json.loads(text)) for text in found]

    async def history(self, order_id: str) -> list[HistoryLine]:
        """The order's changes of status, oldest first (the last HISTORY_KEPT)."""
        if not ORDER_ID.match(order_id):
            return []
        found = await self._redis.conn.lrange(keys.order_history(order_id), 0, -1) or ()
        return [HistoryLine(**json.loads(text)) for text in found]

    async def index_older_orders(self, ids: int = 500, calls: int = 20, *,
                                 fence: Fence | None = None) -> tuple[bool, int]:
        """Add orders stored by a version before the collection and type
        indexes and the item counters to them, ``ids`` order ids per script
        (a few milliseconds of Redis), at most ``calls`` scripts. Whether
        every order is indexed now (then this is one GET), and how many were
        indexed by this call."""
        indexed = 0
        for _ in range(calls):
            finished, count = await _fenced(self._redis.conn.eval(
                _INDEX_OLDER,
                [keys.items_by_status(), keys.schema_version(), keys.index_cursor(), keys.orders_updated(None),
                 keys.order_sequence(), keys.leader_epoch()],
                [keys.order(""), keys.orders_of_type(""), keys.orders_in_collection(""), str(ids), LAYOUT_VERSION,
                 codec.json_text([s.value for s in _STATUSES]), "" if fence is None else fence.argument]))
            indexed += int(count)
            if str(finished) == "1":
                return True, indexed
        return False, indexed

    async def purge(self, order_id: str, statuses: Collection[OrderStatus], *, fence: Fence | None = None) -> bool:
        """Remove the order (and everything about it) if it is in one of
        ``statuses``; False when it is not. Final orders only: an unfinished
        one would leave its owner's count of active items wrong. With the
        leader's ``fence``, Deposed (and nothing removed) when a newer leader
        exists."""
        if not all(s.is_final for s in statuses):
            raise ValueError("only final orders are purged")
        identity = await self._identity(order_id)
        logs = [keys.order_downloads(order_id), *(keys.outbox_log(channel, order_id) for channel in ORDER_CHANNELS)]
        answer = int(await _fenced(self._redis.conn.eval(
            _PURGE, _order_keys(order_id, identity, 0.0) + logs + [keys.leader_epoch()],
            [_member(order_id), _statuses(statuses), str(len(logs)), "" if fence is None else fence.argument])))
        if answer == -1:
            raise NoSuchOrder(order_id)
        if answer == 1:
            self._orders.drop(order_id)
            self._identities.pop(order_id, None)
        return answer == 1

    async def final_before(self, moment: float, limit: int) -> list[str]:
        """Ids of orders in a final status whose last update is before ``moment``."""
        found: list[str] = []
        for status in _STATUSES:
            if status.is_final and len(found) < limit:
                members = await self._redis.conn.execute_command(
                    "ZRANGEBYSCORE", keys.orders_in_status(None, status.value), "-inf", f"({_score(moment)}",
                    "LIMIT", "0", str(limit - len(found)))
                found += [_order_id(m) for m in members or ()]
        return found

    async def results_completed_before(self, moment: float, limit: int) -> list[StoredResult]:
        """Results completed before ``moment``, oldest first."""
        members = await self._redis.conn.execute_command(
            "ZRANGEBYSCORE", keys.results_by_completion(), "-inf", f"({_score(moment)}", "LIMIT", "0", str(limit))
        found = []
        for member in members or ():
            order_member, item_id = json.loads(member)
            found.append(StoredResult(_order_id(order_member), item_id, member))
        return found

    async def forget_results(self, results: Sequence[StoredResult]) -> None:
        """Take these results out of the expiry index (they have expired)."""
        if results:
            await self._redis.conn.execute_command("ZREM", keys.results_by_completion(),
                                                   *(result.entry for result in results))

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
            criteria.insert(0, [keys.orders_updated(owner)])
        cursor_score, cursor_member = _cursor(after)
        if limit <= 0:
            return FoundOrders((), None)
        members, next_score, next_member, cut = await self._redis.conn.eval(
            _FIND, [k for criterion in criteria for k in criterion],
            [codec.json_text([len(c) for c in criteria]),
             "+inf" if updated_to is None else _score(updated_to), "-inf" if updated_from is None else _score(updated_from),
             str(limit), "1" if oldest_first else "", cursor_score, cursor_member, str(budget)])
        return FoundOrders(tuple(_order_id(m) for m in members or ()),
                           f"{next_score}~{next_member}" if next_member else None, bool(int(cut)))

    # ------------------------------------------------------------------ internals

    async def _set_order_status(self, order_id: str, status: StatusInfo, allowed: Collection[OrderStatus] | None,
                                version: str | None, notification: Notification | None,
                                jobs: Sequence[Job] = (), by: str = "", *, acknowledged: bool = False) -> bool:
        identity = await self._identity(order_id)
        answer = int(await self._redis.conn.eval(
            _SET_ORDER_STATUS,
            _order_keys(order_id, identity, status.changed_at) + ([_stream_of(jobs)] if jobs else [])
            + [keys.wsn_subscriptions(identity.owner), keys.outbox_sequences(), keys.outbox_queue(MAIL, order_id),
               keys.outbox_queue(CALLBACK, order_id), keys.outbox_due()],
            [_member(order_id), status.status.value, codec.dumps(status), _score(status.changed_at),
             _statuses(allowed), version or "", "" if notification is None else codec.dumps(notification),
             _jobs_argument(jobs), order_id, "1" if self._mail else "", keys.outbox_queue(WSN, ""),
             _history_entry(status, by), by],
            acknowledged=acknowledged,
        ))
        if answer == -1:
            raise NoSuchOrder(order_id)
        return answer == 1

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
                spec = codec.loads(OrderSpec, await self._redis.conn.hget(keys.order(order_id), "spec"))
                collections = _collections_field({i.collection_id for i in spec.items if i.collection_id})
            identity = _Identity(owner, reference or None, order_type or "", tuple(json.loads(collections)))
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
                version, owner, status_info, created_at, notification, spec, item_flat = reply
                order = Order(
                    order_id=order_id,
                    owner=owner,
                    spec=held.spec if spec is None and held is not None else codec.loads(OrderSpec, spec),
                    status=codec.loads(StatusInfo, status_info),
                    created_at=float(created_at),
                    notification=codec.loads(Notification, notification),
                    version=int(version),
                )
                fields = _pairs(item_flat)
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


async def _fenced(answer: Awaitable[Any]) -> Any:
    """``answer``; a fenced script's refusal raised as Deposed."""
    try:
        return await answer
    except txredisapi.ResponseError as e:
        if deposed(e):
            raise Deposed(str(e)) from None
        raise


def _stream_of(jobs: Sequence[Job]) -> str:
    priorities = {job.priority for job in jobs} or {"STANDARD"}
    if len(priorities) > 1:
        raise ValueError("the jobs queued with one change share one priority")
    return keys.job_stream(priorities.pop())


def _jobs_argument(jobs: Sequence[Job]) -> str:
    return _json_array([job_fields(job) for job in jobs]) if jobs else ""


def _json_array(values: Sequence[object]) -> str:
    return codec.json_text(values)


def _pairs(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[0::2], flat[1::2]))


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
            status=codec.loads(StatusInfo, item_fields[f"s/{item_id}"]),
            batch=int(item_fields.get(f"b/{item_id}", "0")),
            completed_at=float(completed) if completed is not None else None,
        ))
    return tuple(items)
