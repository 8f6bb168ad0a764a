"""Writing orders: create (Submit), changes of status of the order and of
its items, items added (subscriptions), mails queued, DescribeResultAccess's
nextReady."""

from __future__ import annotations

import hashlib
import json
import operator
from collections.abc import Callable, Collection, Mapping, Sequence

import attrs
import txredisapi

from ...model import codec
from ...model.orders import Item, Notification, Order, OrderStatus, OrderType, StatusInfo
from .. import keys
from ..connection import ReplicationShortfall
from ..jobs import GROUP as JOB_GROUP
from ..jobs import Job, job_fields
from ..orderids import ORDER_ID
from ..outbox import CALLBACK, MAIL, Failure, failure_from_json
from ..wsn import WSN
from .base import OrderStoreBase, _status
from .layout import (
    _STATUSES, _WITH_RESULT, DEFAULT_ORDER_TYPE, ID_ATTEMPTS, _collections_field, _history_entry, _Identity, _jobs_argument,
    _json_array, _member, _order_keys, _packed_status, _score, _scored_indexes, _statuses, _stream_of, collections_of,
    script, stored_spec,
)
from .values import Conflict, ItemChange, NoSuchItem, NoSuchOrder, OrderProgress, Resubmitted, TooManyActiveItems

_CREATE = script("order_create")
_SPEC_OF = operator.attrgetter("spec")
# Most orders ask for no call-back: their notification is not written (absent: this one).
_NO_NOTIFICATION = Notification()
_FORGET_MESSAGE = script("order_forget_message")
_UNACCEPT = script("order_unaccept")
_SET_ORDER_STATUS = script("order_set_status")
_SET_ITEMS_STATUS = script("order_set_items_status")
_ADD_ITEMS = script("order_add_items")
_NEXT_READY = script("order_next_ready")
_QUEUE_MAIL = script("order_queue_mail")


class OrderWrites(OrderStoreBase):
    """Every change of an order: one Lua script each, indexes and counters included."""

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
        specs = tuple(map(_SPEC_OF, order.items))
        if len(specs) != len(order.spec.items) or not all(map(operator.is_, specs, order.spec.items)):
            # (A Submit's items are its spec's: no copy of the order for an equal one.)
            order = attrs.evolve(order, spec=attrs.evolve(order.spec, items=specs))
        status = order.status.status
        order_collections = collections_of(order)
        fields = [
            "owner", order.owner,
            "created_at", _score(order.created_at),
            "status", status.value,
            "status_info", _packed_status(order.status, named=False),
            "items_total", str(len(order.items)),
            "collections", _collections_field(order_collections),
        ]  # fmt: skip
        # Absent means empty (reference) or 0 (completion_seq, ready_cursor): not written, every byte
        # of the order hash is kept for as long as the order.
        if order.spec.reference:
            fields += ["reference", order.spec.reference]
        if order.spec.order_type is not DEFAULT_ORDER_TYPE:
            fields += ["order_type", order.spec.order_type.value]
        # One pass over the items: the items of a new order mostly share one
        # status, looked up (checked, packed, counted) once per StatusInfo.
        counts: dict[str, int] = {}
        item_fields: list[str] = []
        # (By identity: a new order's items share one StatusInfo object, and
        # an attrs hash is a Python call per item.)
        encoded: dict[int, tuple[str, str, bool]] = {}
        added = 0
        for item in order.items:
            known = encoded.get(id(item.status))
            if known is None:
                if item.status.status in _WITH_RESULT:
                    raise ValueError(f"item {item.spec.item_id} cannot be created {item.status.status.value}")
                known = encoded[id(item.status)] = (item.status.status.value, _packed_status(item.status),
                                                    not item.status.status.is_final)
            name, packed, active = known
            counts[name] = counts.get(name, 0) + 1
            added += active
            item_id = item.spec.item_id
            item_fields += [f"s/{item_id}", packed]
            if item.batch:
                item_fields += [f"b/{item_id}", str(item.batch)]
        for item_status, count in counts.items():
            fields += [f"n/{item_status}", str(count)]
        reference = order.spec.reference or None
        identity = _Identity(order.owner, reference, order.spec.order_type.value, tuple(sorted(order_collections)))
        subscription_keys = [] if subscribed_until is None else [
            keys.subscriptions(c) for c in sorted({i.spec.collection_id or "" for i in order.items})]
        # The same for every candidate id: encoded once.
        encoded_fields, encoded_items = _json_array(fields), _json_array(item_fields)
        spec, first_status = stored_spec(order.spec), codec.dumps(order.status) if self._mail else ""
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
                     history, per_status, str(self._message_seconds) if message_id else "", order_id,
                     "" if order.notification == _NO_NOTIFICATION else codec.dumps(order.notification)],
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
        items = order.items
        if any(i.completed_at is not None for i in items):
            items = tuple(i if i.completed_at is None else attrs.evolve(i, completed_at=None) for i in items)
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
            [change.item_id, change.status.status.value, _packed_status(change.status),
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
        fields = ["version", "order_type", "status_info", "status", "items_total", "failed_item", "failed_reason",
                  *(f"n/{s.value}" for s in _STATUSES)]
        for _ in range(attempts):
            values = await self._redis.conn.hmget(keys.order(order_id), fields) if ORDER_ID.match(order_id) else []
            if not values or values[0] is None:
                raise NoSuchOrder(order_id)
            version, order_type, status_info, status_name, total, failed_item, failed_reason, *counts = values
            progress = OrderProgress(
                order_id=order_id,
                order_type=OrderType(order_type or DEFAULT_ORDER_TYPE.value),
                status=_status(status_info, status_name),
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
        ids = await self._redis.conn.eval(_NEXT_READY, [keys.order(order_id), keys.order_items(order_id),
                                                        keys.order_ready(order_id)], [])
        if ids is None:
            raise NoSuchOrder(order_id)
        return frozenset(ids)

    async def add_items(self, order_id: str, items: Sequence[Item], job: Job, *, marker: str | None = None) -> bool:
        """Add ``items`` (all of one batch) to an unfinished order and queue
        ``job`` for them, in one step; with ``marker``, only once per marker
        (a subscription's timeslot). False when not added."""
        identity = await self._identity(order_id)
        payload = _json_array([[item.spec.item_id, codec.to_data(item.spec), _packed_status(item.status)]
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
             _history_entry(status, by), by, _packed_status(status, named=False)],
            acknowledged=acknowledged,
        ))
        if answer == -1:
            raise NoSuchOrder(order_id)
        return answer == 1
