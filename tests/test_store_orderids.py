"""Order ids (oseod.store.orderids): random, unique across daemons on one
Redis, and the numeric ids of orders stored before them still work."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer

from oseod.auth.account import Account
from oseod.config import parse_config
from oseod.model.orders import Notification, OrderStatus, StatusInfo
from oseod.store import keys
from oseod.store.connection import Redis
from oseod.store.orderids import LENGTH, ORDER_ID, RandomOrderIds
from oseod.store.orders import ID_ATTEMPTS, OrderStore
from tests.parts import make_parts
from tests.test_core_ordering import order_spec
from tests.test_store_orders import make_order, numbered

S = OrderStatus


def test_new_ids_are_random_and_of_one_form() -> None:
    # (2000 ids: the drawer reads the kernel's bytes many times over.)
    draw = RandomOrderIds()
    ids = [draw() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for order_id in ids:
        assert ORDER_ID.match(order_id) and len(order_id) == LENGTH
        assert order_id[0].isalpha() and not order_id.isdigit()  # never taken for an old numeric id
        assert order_id == order_id.lower() and order_id.isalnum() and order_id.isascii()  # URL and FTP safe
    # Every character of the alphabet turns up in every place past the first: nothing to count.
    for place in range(1, LENGTH):
        assert len({order_id[place] for order_id in ids}) == 32


def test_the_id_pattern_takes_both_forms_and_nothing_else() -> None:
    for good in ("1", "42", "9" * 19, "k" * LENGTH, "a0123456789xyz"):
        assert ORDER_ID.match(good), good
    for bad in ("0", "01", "", "1 ", "٣", "9" * 20, "../1", "K" * LENGTH, "k" * (LENGTH - 1), "k" * (LENGTH + 1),
                "0" + "k" * (LENGTH - 1), "i" * LENGTH, "k/" + "k" * (LENGTH - 2), "k.." + "k" * (LENGTH - 3)):
        assert not ORDER_ID.match(bad), bad


@pytest_twisted.ensureDeferred
async def test_ids_are_unique_across_daemons_creating_at_once(redis: Redis) -> None:
    # Two daemons (each its own connection and store) on one Redis, each
    # creating orders concurrently.
    other = Redis(redis.address)
    await other.connect()
    try:
        stores = [OrderStore(redis), OrderStore(other)]
        created = await defer.gatherResults([
            defer.ensureDeferred(stores[n % 2].create(make_order(f"user{n % 3}", n_items=1))) for n in range(300)
        ])
    finally:
        await other.close()
    ids = [order.order_id for order in created]
    assert len(set(ids)) == len(ids) == 300
    assert all(ORDER_ID.match(i) and not i.isdigit() for i in ids)
    for order in created:
        stored = await stores[0].get(order.order_id)
        assert stored is not None and stored.owner == order.owner
    # Nothing counts orders any more: no counter to read the volume from.
    assert await redis.conn.get(keys.order_sequence()) is None


@pytest_twisted.ensureDeferred
async def test_two_daemons_parts_submitting_at_once_never_share_an_id(redis: Redis) -> None:
    # The whole object graph of two daemons, each on its own connection to
    # one Redis, taking Submits concurrently.
    other = Redis(redis.address)
    await other.connect()
    config = parse_config({"orders": {"moderation": "manual", "max_active_items_per_user": 10_000}})
    try:
        daemons = [make_parts(config, redis), make_parts(config, other)]
        users = [Account(f"user{n}") for n in range(3)]
        created = await defer.gatherResults([
            defer.ensureDeferred(daemons[n % 2].ordering.submit(users[n % 3], order_spec(), Notification()))
            for n in range(200)
        ])
        ids = [order.order_id for order in created]
        assert len(set(ids)) == len(ids) == 200
        for order in created:  # each one readable by its owner through the other daemon
            assert (await daemons[1].ordering.get(Account(order.owner), order.order_id)).order_id == order.order_id
    finally:
        await other.close()


@pytest_twisted.ensureDeferred
async def test_a_taken_id_is_never_handed_out_again(redis: Redis) -> None:
    # A generator that repeats itself: the creation script refuses the taken
    # id, and the store draws another; the first order is left alone.
    taken, fresh = "k" * LENGTH, "m" * LENGTH
    draws = iter([taken, taken, taken, fresh])
    first = await OrderStore(redis, new_id=lambda: taken).create(make_order("alice", n_items=2))
    second = await OrderStore(redis, new_id=lambda: next(draws)).create(make_order("bob", n_items=1))
    assert (first.order_id, second.order_id) == (taken, fresh)
    store = OrderStore(redis)
    kept, made = await store.get(taken), await store.get(fresh)
    assert kept is not None and kept.owner == "alice" and len(kept.items) == 2 and kept.version == 1
    assert made is not None and made.owner == "bob" and len(made.items) == 1
    assert await store.count_active_items("alice") == 2 and await store.count_active_items("bob") == 1
    # A generator that only ever repeats itself is a bug, not an endless loop.
    with pytest.raises(RuntimeError, match=f"{ID_ATTEMPTS} attempts"):
        await OrderStore(redis, new_id=lambda: taken).create(make_order("carol"))
    assert await store.count_active_items("carol") == 0


@pytest_twisted.ensureDeferred
async def test_orders_with_old_numeric_ids_keep_working_beside_new_ones(redis: Redis) -> None:
    old_store = OrderStore(redis, new_id=numbered())  # what an earlier version stored
    old = [await old_store.create(make_order(at=10.0)) for _ in range(3)]
    assert [o.order_id for o in old] == ["1", "2", "3"]
    store = OrderStore(redis)  # this version
    new = [await store.create(make_order(at=10.0)) for _ in range(3)]
    for order in old + new:
        got = await store.get(order.order_id)
        assert got is not None and got.order_id == order.order_id
    assert await store.set_order_status("2", StatusInfo(S.InProduction, changed_at=20.0))
    assert await store.set_item_status("2", "i0", StatusInfo(S.InProduction, changed_at=21.0))
    assert await store.search_ids("alice", None, None, frozenset({S.InProduction}), None, 10) == ["2"]
    # Paging through old and new ids alike, one at a time (the cursor holds an id of either form).
    seen: list[str] = []
    after = None
    for _ in range(10):
        page = await store.find(owner=None, limit=1, after=after)
        seen += page.order_ids
        after = page.next
        if after is None:
            break
    assert sorted(seen) == sorted(o.order_id for o in old + new)

