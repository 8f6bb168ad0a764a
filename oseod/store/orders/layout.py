"""What the modules of the orders store share: its constants, the values
filled in its Lua scripts, how an order's keys and index members are named,
and how script arguments are encoded."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any

import attrs
import txredisapi

from ...model import codec
from ...model.orders import Order, OrderSpec, OrderStatus, OrderType, StatusInfo
from .. import keys, lua
from ..jobs import Job, job_fields
from ..leader import FENCE_HOOK, Deposed, deposed
from ..stats import BUCKET_HOOK, DOWNLOADS, bucket_keys
from ..wsn import NOTIFY_HOOK

# The decoded orders an OrderStore keeps (see base._OrderCache): enough for every
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
# What is called layout 3 below (issue 16) changed only how values are
# written, not the keys: the order's spec in chunks (p/N), statuses and history
# lines as short JSON arrays; the readers take the layout-2 forms as well, an
# order is rewritten field by field as it changes, so no migration runs and
# schema_version stays "2".
LAYOUT_VERSION = "2"
# Redis keeps a hash (and a list's node) as one compact listpack only while
# every value is at most this long (hash-max-listpack-value, 64 by default):
# one longer value turns the whole order into a hashtable, about three times
# the memory. Long values are written in chunks of at most this many bytes.
CHUNK_BYTES = 64
CHUNKS_MAX = 32  # longer values are kept whole (lua/order_chunks.lua)
HISTORY_KEPT = 200  # status changes kept per order (a subscription changes little; items do not write here)
DOWNLOADS_KEPT = 500  # transfers kept per order

# What the scripts (oseod/store/lua/*.lua, each headed by its KEYS and ARGV)
# are given: the statuses, the constants above, the other modules' hooks.
_VALUES: dict[str, object] = {
    "N": len(_STATUSES),
    "POS": ", ".join(f"{s.value} = {i + 1}" for i, s in enumerate(_STATUSES)),
    "FINAL": ", ".join(f"{s.value} = true" for s in _STATUSES if s.is_final),
    "WITH_RESULT": ", ".join(f"{s.value} = true" for s in _WITH_RESULT),
    "HISTORY_KEPT": HISTORY_KEPT,
    "MEMBER_WIDTH": _MEMBER_WIDTH,
    "DOWNLOADS_KEPT": DOWNLOADS_KEPT,
    "CHUNK_BYTES": CHUNK_BYTES,
    "CHUNKS_MAX": CHUNKS_MAX,
    "DOWNLOADS": DOWNLOADS,
    "bucket_hook": BUCKET_HOOK,
    "fence_hook": FENCE_HOOK,
    "notify_hook": NOTIFY_HOOK,
}


def script(name: str) -> str:
    """The text of the orders store's script ``name`` (loaded at import)."""
    return lua.load(name, **_VALUES)


# The type of most orders: not written in the order hash (absent: this one).
DEFAULT_ORDER_TYPE = OrderType.PRODUCT_ORDER


def stored_spec(spec: OrderSpec) -> str:
    """The spec as its chunks (p/N) hold it: its JSON without what the order
    hash says already or a reader fills in, every byte of it being kept for as
    long as the order (issue 16): the order type (the hash's ``order_type``)
    and the items' ``"subscription": false`` (the default). :func:`read_spec`
    reads it and the whole JSON of orders written before."""
    data = codec.to_data(spec)
    del data["order_type"]
    for item in data["items"]:
        if item.get("subscription") is False:
            del item["subscription"]
    return codec.json_text(data)


def read_spec(text: str, order_type: str | None) -> OrderSpec:
    """An order's spec from its stored JSON (:func:`stored_spec`'s, or the
    whole spec), ``order_type`` the hash's field (None: absent)."""
    data = json.loads(text)
    data.setdefault("order_type", order_type or DEFAULT_ORDER_TYPE.value)
    return codec.from_data(OrderSpec, data)


def collections_of(order: Order) -> set[str]:
    """The collections of the order's items (its entries in the collection indexes)."""
    return {item.spec.collection_id for item in order.items if item.spec.collection_id}


def _history_entry(status: StatusInfo, by: str) -> str:
    """A line of history for the scripts (order_prelude's remember): [head,
    info], the head ``[at, status, by]`` as JSON (the readers, records.history,
    know the keys: not repeated per line)."""
    return codec.json_text([codec.json_text([status.changed_at, status.status.value, by]),
                            status.additional_info or ""])


def _packed_status(status: StatusInfo, *, named: bool = True) -> str:
    """A StatusInfo as stored in layout 3: ``[status, changed_at, additional
    info, mission-specific info]``, trailing nulls left out, so that what a
    status usually holds fits in CHUNK_BYTES; the order's own (``named``
    False) without the status, which its hash holds in ``status`` already
    ("Waiting for approval by an operator" with it would not fit).
    :func:`base._status` reads both and the layout-2 StatusInfo JSON; the
    scripts read an item's status name as ``[1]``."""
    packed: list[object] = [status.status.value] if named else []
    packed += [status.changed_at, status.additional_info, status.mission_specific_info]
    while packed[-1] is None:
        packed.pop()
    return codec.json_text(packed)


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
        # Written by earlier versions, only taken out of now (see _scored_indexes).
        keys.orders_updated(owner), keys.orders_updated(None),
        *_scored_indexes(identity),
    ]  # fmt: skip
    return layout


def _scored_indexes(identity: _Identity) -> list[str]:
    """The indexes an order is in whatever its status. Not "every order by
    last update" (of its owner, of everybody): each order is in exactly one
    status index of each scope, so the status indexes together are that
    index (search.OrderSearch.find reads them as one), and two entries of
    ~110 bytes per order are saved (issue 16). Orders written before are
    still in those indexes: an order leaves them when it next changes or is
    purged (see lua/order_prelude.lua)."""
    owner, reference = identity.owner, identity.reference
    found: list[str] = []
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
