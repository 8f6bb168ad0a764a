"""How an order is laid out in Redis (issue 16: its footprint), on a real
Redis: a typical order is one compact hash, and orders written by the
earlier layout (2: spec, statuses and history as JSON objects, items, ready
set and history in keys of their own) are still read and changed correctly."""

from __future__ import annotations

import json
from typing import Any

import pytest_twisted

from oseod.model import codec
from oseod.model.orders import (
    ItemSpec, Notification, Order, OrderSpec, OrderStatus, OrderType, StatusInfo, StatusNotification,
)
from oseod.store import keys
from oseod.store.connection import Redis
from oseod.store.orders import CHUNK_BYTES, CHUNKS_MAX, HISTORY_KEPT, ItemChange, OrderStore
from oseod.store.orders.base import _joined, _status
from oseod.store.orders.layout import read_spec
from tests.test_store_orders import make_order

S = OrderStatus


async def all_keys_of(redis: Redis, order_id: str) -> list[str]:
    """The order's own keys (its call-back queue, of the outbox, left out)."""
    return sorted(await redis.conn.keys(f"{keys.order(order_id)}*"))


async def as_layout_2(redis: Redis, order_id: str) -> None:
    """Rewrite a stored order as layout 2 wrote it (the indexes and counters
    are the same in both): 'spec' whole, StatusInfo JSON objects, the items in
    ``order:ID:items``, the ready items in ``order:ID:ready``, the history a
    list of JSON objects, 'reference', 'completion_seq' and 'ready_cursor'
    always there."""
    conn = redis.conn
    order_key = keys.order(order_id)
    fields: dict[str, str] = await conn.hgetall(order_key)
    old: dict[str, Any] = {"reference": fields.get("reference", ""), "ready_cursor": fields.get("ready_cursor", "0"),
                           "completion_seq": fields.get("completion_seq", "0"),
                           "notification": _joined(fields, "nt/") or codec.dumps(Notification())}
    chunks = sorted((f for f in fields if f.startswith("p/")), key=lambda f: int(f[2:]))
    # The spec whole, its type in it and in 'order_type'.
    spec = read_spec("".join(fields[f] for f in chunks), fields.get("order_type"))
    old["spec"], old["order_type"] = codec.dumps(spec), spec.order_type.value
    old["status_info"] = codec.dumps(_status(fields["status_info"], fields["status"]))
    items: dict[str, str] = {}
    ready: list[Any] = []
    history = []
    for n in range(1, int(fields.get("h", 0)) + 1):
        at, status, by = json.loads(fields[f"h/{n}"])
        history.append(codec.json_text({"at": at, "status": status, "info": fields.get(f"i/{n}", ""), "by": by}))
    for field, value in fields.items():
        if field[:2] in ("s/", "c/", "b/", "x/"):
            items[field] = codec.dumps(_status(value)) if field.startswith("s/") else value
        elif field.startswith("r/"):
            ready += [value, field[2:]]
    gone = [f for f in fields if f[:2] in ("s/", "c/", "b/", "x/", "r/", "p/", "h/", "i/") or f == "h"
            or f.startswith("nt/")]
    await conn.execute_command("HDEL", order_key, *gone)
    await conn.execute_command("HSET", order_key, *(x for pair in old.items() for x in pair))
    if items:
        await conn.execute_command("HSET", keys.order_items(order_id), *(x for pair in items.items() for x in pair))
    if ready:
        await conn.execute_command("ZADD", keys.order_ready(order_id), *ready)
    await conn.execute_command("RPUSH", keys.order_history(order_id), *history)


async def order_of_product(redis: Redis, product_id: str) -> Order:
    """A new one-item order of ``product_id``, stored."""
    base = make_order(n_items=1)
    spec = ItemSpec(item_id="i0", product_id=product_id, collection_id="c")
    return await OrderStore(redis).create(base.__class__(
        order_id="", owner=base.owner, spec=OrderSpec(base.spec.order_type, items=(spec,)), status=base.status,
        created_at=base.created_at, notification=base.notification,
        items=(base.items[0].__class__(spec, base.items[0].status),)))


@pytest_twisted.ensureDeferred
async def test_a_typical_order_is_one_compact_hash(redis: Redis) -> None:
    store = OrderStore(redis)
    order = await store.create(make_order(n_items=1, status=S.Submitted))
    oid = order.order_id
    await store.set_order_status(oid, StatusInfo(S.Accepted, "Waiting for approval by an operator", changed_at=101.0))
    await store.set_item_status(oid, "i0", StatusInfo(S.Completed, "Completed", changed_at=102.0))
    await store.set_order_status(oid, StatusInfo(S.Completed, "The item is ready", changed_at=102.0))
    assert await all_keys_of(redis, oid) == [keys.order(oid)]
    assert await redis.conn.execute_command("OBJECT", "ENCODING", keys.order(oid)) in ("listpack", "ziplist")
    fields = await redis.conn.hgetall(keys.order(oid))
    assert all(len(v.encode()) <= CHUNK_BYTES for v in fields.values())
    assert "spec" not in fields and "n/Submitted" not in fields
    # Nothing the hash says twice or a reader fills in: the type (PRODUCT_ORDER when absent), the defaults.
    assert "order_type" not in fields
    assert '"order_type"' not in _joined(fields, "p/") and '"subscription"' not in _joined(fields, "p/")
    again = await OrderStore(redis).get(oid)
    assert again is not None and again.spec == order.spec and again.items[0].status.status is S.Completed
    assert [(line.status, line.info) for line in await store.history(oid)] == [
        ("Submitted", "Submitted text"), ("Accepted", "Waiting for approval by an operator"),
        ("Completed", "The item is ready")]
    assert await store.next_ready(oid) == {"i0"}


@pytest_twisted.ensureDeferred
async def test_a_spec_is_cut_between_characters(redis: Redis) -> None:
    long_id = "é€𝄞x" * 40  # characters of 2, 3 and 4 bytes
    order = await order_of_product(redis, long_id)
    fields = await redis.conn.hgetall(keys.order(order.order_id))
    assert len([f for f in fields if f.startswith("p/")]) > 5
    assert all(len(v.encode()) <= CHUNK_BYTES for f, v in fields.items() if f.startswith("p/"))
    again = await OrderStore(redis).get(order.order_id)
    assert again is not None and again.items[0].spec.product_id == long_id


@pytest_twisted.ensureDeferred
async def test_a_long_spec_is_kept_whole(redis: Redis) -> None:
    """Past CHUNKS_MAX chunks a spec is one field: a megabyte in 64-byte
    chunks would be tens of thousands of fields, read back one reply each."""
    long_id = "p" * (CHUNK_BYTES * CHUNKS_MAX + 1)
    order = await order_of_product(redis, long_id)
    fields = await redis.conn.hgetall(keys.order(order.order_id))
    assert [f for f in fields if f.startswith("p/")] == ["p/0"]
    assert long_id in fields["p/0"]
    again = await OrderStore(redis).get(order.order_id)
    assert again is not None and again.items[0].spec.product_id == long_id


@pytest_twisted.ensureDeferred
async def test_orders_of_layout_2_are_read_and_changed(redis: Redis) -> None:
    store = OrderStore(redis)
    order = await store.create(make_order(n_items=3, status=S.InProduction, reference="ref-1"))
    oid = order.order_id
    await store.set_order_status(oid, StatusInfo(S.InProduction, "going", changed_at=110.0), by="operator")
    await store.set_items_status(oid, [ItemChange("i0", StatusInfo(S.Completed, "done", changed_at=111.0)),
                                       ItemChange("i1", StatusInfo(S.Failed, "broken", changed_at=112.0))])
    assert await store.next_ready(oid) == {"i0"}
    await store.record_download(oid, "i0", "a.tif", 113.0)
    before: Order | None = await store.get(oid)
    history = await store.history(oid)
    await as_layout_2(redis, oid)
    assert await all_keys_of(redis, oid) == sorted(
        [keys.order(oid), keys.order_items(oid), keys.order_ready(oid), keys.order_history(oid)])

    old = OrderStore(redis)  # nothing cached
    assert await old.get(oid) == before
    assert await old.history(oid) == history
    assert await old.downloads(oid) == {"i0": (1, 113.0)}
    progress = await old.update_order_status(oid, lambda p: None)
    assert progress.counts == {S.Completed: 1, S.Failed: 1, S.InProduction: 1}
    assert progress.last_failure == ("i1", "broken")
    # Changed as layout 2 keeps it: items in their hash, history in its list; nextReady goes on.
    await old.set_items_status(oid, [ItemChange("i2", StatusInfo(S.Completed, "done too", changed_at=120.0)),
                                     ItemChange("i0", StatusInfo(S.Completed, "again", changed_at=120.0))])
    assert await old.next_ready(oid) == {"i2"}
    notification = Notification(StatusNotification.ALL, "http://client/" + "x" * 100, "uuid:2", "1.1")
    await old.set_order_status(oid, StatusInfo(S.Completed, "finished", changed_at=121.0), notification=notification)
    after = await OrderStore(redis).get(oid)
    assert after is not None and after.status == StatusInfo(S.Completed, "finished", changed_at=121.0)
    assert after.notification == notification
    assert [i.status.status for i in after.items] == [S.Completed, S.Failed, S.Completed]
    assert after.items[2].completed_at == 120.0
    assert [line.info for line in await old.history(oid)] == [line.info for line in history] + ["finished"]
    assert not any(f.startswith(("s/", "p/", "h/")) for f in await redis.conn.hkeys(keys.order(oid)))
    found = await old.find(reference="ref-1", statuses={S.Completed})
    assert found.order_ids == (oid,)
    # Purged whole, its items out of the expiry index.
    assert await old.purge(oid, {S.Completed})
    assert await all_keys_of(redis, oid) == []
    assert await redis.conn.zcard(keys.results_by_completion()) == 0


@pytest_twisted.ensureDeferred
async def test_the_history_in_the_order_hash_keeps_its_last_lines(redis: Redis) -> None:
    store = OrderStore(redis)
    order = await store.create(make_order(n_items=1, status=S.InProduction))
    for n in range(HISTORY_KEPT + 5):  # an operator's changes are history even when the status stays
        await store.set_order_status(order.order_id, StatusInfo(S.InProduction, f"step {n}" if n % 2 else None,
                                                                changed_at=200.0 + n), by="op")
    lines = await store.history(order.order_id)
    assert len(lines) == HISTORY_KEPT
    # The first line (the order made) and the first five changes are gone.
    assert (lines[0].info, lines[0].at, lines[0].by) == ("step 5", 205.0, "op")
    assert (lines[1].info, lines[1].at) == ("", 206.0)
    assert [(line.info, line.status) for line in lines[-2:]] == [(f"step {HISTORY_KEPT + 3}", "InProduction"),
                                                                  ("", "InProduction")]
    fields = await redis.conn.hkeys(keys.order(order.order_id))
    assert len([f for f in fields if f.startswith("h/")]) == HISTORY_KEPT
    assert "h/6" not in fields and "i/5" not in fields and "h/7" in fields


async def as_indexed_by_update(redis: Redis, store: OrderStore, order_id: str) -> None:
    """Add the order to the indexes of every order by last update (the
    owner's, everybody's), as versions before issue 16's second footprint
    change wrote them."""
    order = await store.get(order_id)
    assert order is not None
    updated = await redis.conn.hget(keys.order(order_id), "updated_at")
    for owner in (order.owner, None):
        await redis.conn.execute_command("ZADD", keys.orders_updated(owner), updated, order_id.zfill(20))


@pytest_twisted.ensureDeferred
async def test_every_order_is_found_without_the_indexes_by_update(redis: Redis) -> None:
    store = OrderStore(redis)
    made = []
    for n, status in enumerate([S.Submitted, S.InProduction, S.Completed, S.Failed, S.Submitted, S.Cancelled]):
        order = await store.create(make_order(n_items=1, status=S.Submitted, at=100.0 + n))
        if status is not S.Submitted:
            await store.set_order_status(order.order_id, StatusInfo(status, changed_at=100.0 + n))
        made.append(order.order_id)
    newest_first = made[::-1]
    assert await redis.conn.exists(keys.orders_updated(None)) == 0
    assert await redis.conn.exists(keys.orders_updated("alice")) == 0
    # GetStatus by owner, no status: every order, newest update first, in pages with a stable cursor.
    assert await store.search_ids("alice", None, None, (), None, 10) == newest_first
    assert await store.search_ids("alice", 102.0, 104.0, (), None, 10) == newest_first[1:4]
    pages, after = [], None
    while True:
        found = await store.find(owner=None, limit=2, after=after)
        pages.append(found.order_ids)
        if found.next is None:
            break
        after = found.next
    assert [i for page in pages for i in page] == newest_first and all(len(p) == 2 for p in pages)
    oldest = await store.find(oldest_first=True, limit=4)
    assert oldest.order_ids == tuple(made[:4])
    # With a budget: a page cut short goes on where it stopped, nothing lost or repeated.
    seen: list[str] = []
    after = None
    for _ in range(20):
        found = await store.find(owner="alice", collection="c", limit=3, budget=2, after=after)
        seen += found.order_ids
        if found.next is None:
            break
        after = found.next
    assert seen == newest_first


@pytest_twisted.ensureDeferred
async def test_orders_indexed_by_update_are_found_and_leave_those_indexes(redis: Redis) -> None:
    store = OrderStore(redis)
    first = await store.create(make_order(n_items=1, status=S.Submitted, at=100.0))
    second = await store.create(make_order(n_items=1, status=S.Submitted, at=101.0))
    for order in (first, second):
        await as_indexed_by_update(redis, store, order.order_id)
    old = OrderStore(redis)
    assert await old.search_ids("alice", None, None, (), None, 10) == [second.order_id, first.order_id]
    # A change takes the order out of them (its score there would be stale); a purge too.
    await old.set_order_status(first.order_id, StatusInfo(S.Completed, changed_at=110.0))
    assert await redis.conn.zcard(keys.orders_updated(None)) == 1
    assert await redis.conn.zcard(keys.orders_updated("alice")) == 1
    assert await old.search_ids("alice", None, None, (), None, 10) == [first.order_id, second.order_id]
    await old.set_order_status(second.order_id, StatusInfo(S.Cancelled, changed_at=111.0))
    await as_indexed_by_update(redis, old, second.order_id)
    assert await old.purge(second.order_id, {S.Cancelled})
    assert await redis.conn.exists(keys.orders_updated(None)) == 0
    assert await redis.conn.exists(keys.orders_updated("alice")) == 0
    assert (await old.find()).order_ids == (first.order_id,)


@pytest_twisted.ensureDeferred
async def test_the_order_type_and_specs_written_whole_are_read(redis: Redis) -> None:
    store = OrderStore(redis)
    product = await store.create(make_order(n_items=1, status=S.Submitted))
    massive = await store.create(make_order(n_items=2, status=S.Submitted, order_type=OrderType.MASSIVE_ORDER))
    assert await redis.conn.hget(keys.order(massive.order_id), "order_type") == "MASSIVE_ORDER"
    # As the version before wrote them: the spec whole in its chunks, 'order_type' always.
    whole = await store.create(make_order(n_items=2, status=S.Submitted, reference="r"))
    fields = await redis.conn.hgetall(keys.order(whole.order_id))
    await redis.conn.execute_command("HDEL", keys.order(whole.order_id), *(f for f in fields if f.startswith("p/")))
    text = codec.dumps(whole.spec)
    chunks = [text[i:i + CHUNK_BYTES] for i in range(0, len(text), CHUNK_BYTES)]
    await redis.conn.execute_command("HSET", keys.order(whole.order_id), "order_type", "PRODUCT_ORDER",
                                     *(x for n, chunk in enumerate(chunks) for x in (f"p/{n}", chunk)))
    fresh = OrderStore(redis)  # nothing cached
    for order in (product, massive, whole):
        again = await fresh.get(order.order_id)
        assert again is not None and again.spec == order.spec
        progress = await fresh.update_order_status(order.order_id, lambda p: None)
        assert progress.order_type is order.spec.order_type
    assert set((await fresh.find(order_type="PRODUCT_ORDER")).order_ids) == {product.order_id, whole.order_id}
    assert (await fresh.find(order_type="MASSIVE_ORDER")).order_ids == (massive.order_id,)
    for order in (product, massive, whole):  # the identity read back names the type index: purged out of it
        await fresh.set_order_status(order.order_id, StatusInfo(S.Cancelled, changed_at=120.0))
        assert await OrderStore(redis).purge(order.order_id, {S.Cancelled})
    for order_type in OrderType:
        assert await redis.conn.exists(keys.orders_of_type(order_type.value)) == 0
