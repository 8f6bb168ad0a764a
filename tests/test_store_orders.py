from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable
from typing import Any

import attrs
import pytest
import pytest_twisted
from twisted.internet import defer

from oseod.model.orders import (
    DeliveryChoice,
    DeliveryMethod,
    Item,
    ItemSpec,
    Notification,
    OptionValue,
    Order,
    OrderSpec,
    OrderStatus,
    OrderType,
    StatusInfo,
    StatusNotification,
)
from oseod.store import keys
from oseod.store.connection import Redis
from oseod.store.orders import ItemChange, NoSuchItem, NoSuchOrder, OrderProgress, OrderStore, TooManyActiveItems

S = OrderStatus


def numbered() -> Callable[[], str]:
    """Order ids 1, 2, 3…, as versions before random ids made them: what
    tests of the indexes' order among ids use (and such ids must keep working)."""
    return map(str, itertools.count(1)).__next__


def make_order(owner: str = "alice", *, n_items: int = 2, status: OrderStatus = S.Accepted, at: float = 100.0,
               reference: str | None = None, order_type: OrderType = OrderType.PRODUCT_ORDER) -> Order:
    specs = tuple(ItemSpec(item_id=f"i{n}", product_id=f"p{n}", collection_id="c",
                           options=(OptionValue("format", "GeoTIFF"),)) for n in range(n_items))
    return Order(
        order_id="",
        owner=owner,
        spec=OrderSpec(order_type, items=specs, reference=reference,
                       delivery=DeliveryChoice(DeliveryMethod.ONLINE_DATA_ACCESS, "ftp")),
        status=StatusInfo(status, f"{status.value} text", changed_at=at),
        created_at=at,
        notification=Notification(StatusNotification.FINAL, "http://client/cb", "uuid:1", "1.2"),
        items=tuple(Item(s, StatusInfo(status, changed_at=at), batch=n % 3) for n, s in enumerate(specs)),
    )


async def index_members(redis: Redis, key: str) -> dict[str, float]:
    flat = await redis.conn.zrange(key, 0, -1, withscores=True)
    return {member.lstrip("0"): float(score) for member, score in flat}


async def assert_indexed(redis: Redis, store: OrderStore, order_id: str) -> None:
    """The order is in exactly the indexes its current state says, with its last update as score."""
    order = await store.get(order_id)
    assert order is not None
    updated = float(await redis.conn.hget(keys.order(order_id), "updated_at"))
    member = order_id.zfill(20)

    async def score(key: str) -> float | None:
        found = await redis.conn.execute_command("ZSCORE", key, member)  # txredisapi.zscore int()s
        return None if found is None else float(found)

    for owner in (order.owner, None):
        assert await score(keys.orders_updated(owner)) is None  # not written since issue 16: the status indexes are it
        for status in OrderStatus:
            assert await score(keys.orders_in_status(owner, status.value)) == (
                updated if status is order.status.status else None), status
        if order.spec.reference:
            assert await score(keys.orders_with_reference(owner, order.spec.reference)) == updated


@pytest_twisted.ensureDeferred
async def test_create_and_get(redis: Redis) -> None:
    store = OrderStore(redis, new_id=numbered())
    original = make_order(reference="0012")
    created = await store.create(original)
    assert created == attrs.evolve(original, order_id=created.order_id)
    assert await store.get(created.order_id) == created
    assert await store.get("1") == created
    second = await store.create(make_order("bob"))
    assert second.order_id == "2"
    for bad in ("3", "0", "01", "abc", "", "1 ", "٣", "9" * 30, "../1"):
        assert await store.get(bad) is None
    await assert_indexed(redis, store, "1")
    assert await store.count_active_items("alice") == 2
    assert await store.count_active_items("bob") == 2
    assert await store.count_active_items("carol") == 0


@pytest_twisted.ensureDeferred
async def test_status_is_stored_apart_from_the_spec(redis: Redis) -> None:
    store = OrderStore(redis)
    order = await store.create(make_order())
    async def spec_chunks() -> dict[str, str]:
        fields = await redis.conn.hgetall(keys.order(order.order_id))
        return {field: value for field, value in fields.items() if field.startswith("p/")}

    spec_before = await spec_chunks()
    assert spec_before
    await store.set_order_status(order.order_id, StatusInfo(S.InProduction, "going", changed_at=200.0))
    await store.set_item_status(order.order_id, "i0", StatusInfo(S.InProduction, changed_at=201.0))
    assert await spec_chunks() == spec_before


@pytest_twisted.ensureDeferred
async def test_order_status_change_moves_the_order_between_indexes(redis: Redis) -> None:
    store = OrderStore(redis, new_id=numbered())
    order = await store.create(make_order(reference="ref"))
    await store.create(make_order(reference="ref"))
    info = StatusInfo(S.InProduction, "1 of 2", "m", changed_at=250.5)
    assert await store.set_order_status(order.order_id, info)
    stored = await store.get(order.order_id)
    assert stored is not None and stored.status == info
    assert order.order_id not in await index_members(redis, keys.orders_in_status("alice", "Accepted"))
    assert order.order_id not in await index_members(redis, keys.orders_in_status(None, "Accepted"))
    assert "2" in await index_members(redis, keys.orders_in_status("alice", "Accepted"))
    for order_id in ("1", "2"):
        await assert_indexed(redis, store, order_id)
    # Refused when the current status is not an allowed one: nothing changes.
    assert not await store.set_order_status(order.order_id, StatusInfo(S.Cancelled, changed_at=300.0),
                                            allowed={S.Submitted})
    assert (await store.get(order.order_id)) == stored
    await assert_indexed(redis, store, order.order_id)
    with pytest.raises(NoSuchOrder):
        await store.set_order_status("99", info)


@pytest_twisted.ensureDeferred
async def test_notification_replaced_with_a_status_change(redis: Redis) -> None:
    store = OrderStore(redis)
    order = await store.create(make_order())
    other = Notification(StatusNotification.ALL, "http://other/cb", "uuid:2", "1.1")
    await store.set_order_status(order.order_id, StatusInfo(S.Cancelled, changed_at=200.0), notification=other)
    stored = await store.get(order.order_id)
    assert stored is not None and stored.notification == other


@pytest_twisted.ensureDeferred
async def test_item_status_change(redis: Redis) -> None:
    store = OrderStore(redis)
    order = await store.create(make_order(n_items=3))
    oid = order.order_id
    assert await store.count_active_items("alice") == 3
    assert await store.set_item_status(oid, "i0", StatusInfo(S.InProduction, "try 1", changed_at=110.0))
    assert await store.set_item_status(oid, "i0", StatusInfo(S.Completed, "ok", changed_at=120.0))
    assert await store.set_item_status(oid, "i1", StatusInfo(S.Completed, changed_at=130.0), completed_at=129.5)
    assert await store.count_active_items("alice") == 1
    stored = await store.get(oid)
    assert stored is not None
    assert [i.status for i in stored.items] == [StatusInfo(S.Completed, "ok", changed_at=120.0),
                                                StatusInfo(S.Completed, changed_at=130.0),
                                                StatusInfo(S.Accepted, changed_at=100.0)]
    assert [i.completed_at for i in stored.items] == [120.0, 129.5, None]
    assert [i.batch for i in stored.items] == [0, 1, 2]
    # The order's last update follows its items, and the order stays put in its status index.
    await assert_indexed(redis, store, oid)
    assert float(await redis.conn.hget(keys.order(oid), "updated_at")) == 130.0
    # Downloaded keeps the result and its completion time; Failed after Completed drops them.
    assert await store.set_item_status(oid, "i0", StatusInfo(S.Downloaded, changed_at=140.0))
    stored = await store.get(oid)
    assert stored is not None and stored.items[0].completed_at == 120.0
    # Back to an unfinished status: counted as active again.
    assert await store.set_item_status(oid, "i1", StatusInfo(S.InProduction, changed_at=150.0))
    assert await store.count_active_items("alice") == 2
    stored = await store.get(oid)
    assert stored is not None and stored.items[1].completed_at is None
    # Allowed statuses: refused, nothing changes.
    assert not await store.set_item_status(oid, "i0", StatusInfo(S.Cancelled, changed_at=160.0),
                                           allowed={S.Accepted, S.InProduction})
    assert (await store.get(oid)) == stored
    with pytest.raises(NoSuchItem):
        await store.set_item_status(oid, "nope", StatusInfo(S.Completed, changed_at=1.0))
    with pytest.raises(NoSuchOrder):
        await store.set_item_status("77", "i0", StatusInfo(S.Completed, changed_at=1.0))


@pytest_twisted.ensureDeferred
async def test_last_update_never_goes_back(redis: Redis) -> None:
    store = OrderStore(redis)
    order = await store.create(make_order(at=500.0))
    await store.set_item_status(order.order_id, "i0", StatusInfo(S.InProduction, changed_at=400.0))
    assert float(await redis.conn.hget(keys.order(order.order_id), "updated_at")) == 500.0
    await assert_indexed(redis, store, order.order_id)


@pytest_twisted.ensureDeferred
async def test_next_ready(redis: Redis) -> None:
    store = OrderStore(redis)
    oid = (await store.create(make_order(n_items=4))).order_id
    assert await store.next_ready(oid) == frozenset()
    await store.set_item_status(oid, "i0", StatusInfo(S.Completed, changed_at=1.0))
    await store.set_item_status(oid, "i1", StatusInfo(S.Completed, changed_at=1.0))
    assert await store.next_ready(oid) == {"i0", "i1"}
    assert await store.next_ready(oid) == frozenset()
    await store.set_item_status(oid, "i2", StatusInfo(S.Completed, changed_at=1.0))
    await store.set_item_status(oid, "i0", StatusInfo(S.Downloaded, changed_at=1.0))  # not new
    assert await store.next_ready(oid) == {"i2"}
    # An item that loses its result and gets one again is new again.
    await store.set_item_status(oid, "i1", StatusInfo(S.InProduction, changed_at=2.0))
    await store.set_item_status(oid, "i1", StatusInfo(S.Completed, changed_at=3.0))
    assert await store.next_ready(oid) == {"i1"}
    with pytest.raises(NoSuchOrder):
        await store.next_ready("99")
    assert not await redis.conn.exists(keys.order("99"))


@pytest_twisted.ensureDeferred
async def test_active_item_limit_is_atomic(redis: Redis) -> None:
    store = OrderStore(redis, new_id=numbered())
    await store.create(make_order(n_items=3), max_active_items=5)
    # Two concurrent submissions of 2 items each: exactly one fits.
    results = await defer.DeferredList(
        [defer.ensureDeferred(store.create(make_order(n_items=2), max_active_items=5)) for _ in range(2)],
        consumeErrors=True,
    )
    outcomes = sorted(ok for ok, _ in results)
    assert outcomes == [False, True]
    failure: Any = next(r for ok, r in results if not ok)
    assert failure.check(TooManyActiveItems)
    assert (failure.value.active, failure.value.added, failure.value.limit) == (5, 2, 5)
    assert await store.count_active_items("alice") == 5
    stored = await store.search_ids("alice", None, None, frozenset(), None, 10)
    assert len(stored) == 2 and stored[1] == "1"  # the refused order left nothing behind


@pytest_twisted.ensureDeferred
async def test_update_order_status_reads_progress_and_retries_on_conflict(redis: Redis) -> None:
    store = OrderStore(redis)
    oid = (await store.create(make_order(n_items=3))).order_id
    await store.set_item_status(oid, "i0", StatusInfo(S.Failed, "disk full", changed_at=101.0))
    seen: list[OrderProgress] = []
    real_set = store._set_order_status

    async def racing(*args: Any) -> bool:
        if len(seen) == 1:  # another worker changes an item between our read and our write
            await store.set_item_status(oid, "i1", StatusInfo(S.Completed, changed_at=102.0))
        return await real_set(*args)

    store._set_order_status = racing  # type: ignore[method-assign,assignment]

    def decide(progress: OrderProgress) -> StatusInfo | None:
        seen.append(progress)
        return StatusInfo(S.InProduction, f"{progress.count(S.Completed)} completed", changed_at=300.0)

    result = await store.update_order_status(oid, decide)
    assert len(seen) == 2
    before = StatusInfo(S.Accepted, "Accepted text", changed_at=100.0)
    assert seen[0] == OrderProgress(oid, OrderType.PRODUCT_ORDER, before, 3, {S.Accepted: 2, S.Failed: 1},
                                    ("i0", "disk full"))
    assert seen[1].counts == {S.Accepted: 1, S.Failed: 1, S.Completed: 1}
    assert result.status.additional_info == "1 completed"
    stored = await store.get(oid)
    assert stored is not None and stored.status.additional_info == "1 completed"
    # None from decide: no write at all.
    version = await redis.conn.hget(keys.order(oid), "version")
    await store.update_order_status(oid, lambda progress: None)
    assert await redis.conn.hget(keys.order(oid), "version") == version
    with pytest.raises(NoSuchOrder):
        await store.update_order_status("99", decide)


@pytest_twisted.ensureDeferred
async def test_big_order(redis: Redis) -> None:
    """Thousands of items pass through the scripts (Lua's unpack() limit)."""
    store = OrderStore(redis)
    order = await store.create(make_order(n_items=5000, order_type=OrderType.MASSIVE_ORDER))
    stored = await store.get(order.order_id)
    assert stored is not None and len(stored.items) == 5000 and stored == order
    assert await store.count_active_items("alice") == 5000


@pytest_twisted.ensureDeferred
async def test_created_with_a_result_is_refused(redis: Redis) -> None:
    with pytest.raises(ValueError):
        await OrderStore(redis).create(make_order(status=S.Completed))


# ---------------------------------------------------------------------- search


async def search(store: OrderStore, owner: str | None = "alice", since: float | None = None,
                 until: float | None = None, statuses: frozenset[OrderStatus] = frozenset(),
                 reference: str | None = None, limit: int = 100) -> list[str]:
    return [o.order_id for o in await store.search(owner, since, until, statuses, reference, limit)]


@pytest_twisted.ensureDeferred
async def test_search(redis: Redis) -> None:
    store = OrderStore(redis, new_id=numbered())
    # id: owner, created at, reference, then status changes
    await store.create(make_order("alice", at=10.0, reference="a"))               # 1
    await store.create(make_order("alice", at=20.0, reference="b"))               # 2
    await store.create(make_order("bob", at=30.0, reference="a"))                 # 3
    await store.create(make_order("alice", at=40.0, reference="a"))               # 4
    await store.create(make_order("alice", at=50.0))                              # 5
    await store.set_order_status("1", StatusInfo(S.Completed, changed_at=60.0))   # 1 is now the newest
    await store.set_order_status("2", StatusInfo(S.Failed, changed_at=45.0))

    assert await search(store) == ["1", "5", "2", "4"]
    assert await search(store, owner="bob") == ["3"]
    assert await search(store, owner=None) == ["1", "5", "2", "4", "3"]
    assert await search(store, owner="nobody") == []
    # time bounds are inclusive
    assert await search(store, since=45.0) == ["1", "5", "2"]
    assert await search(store, until=45.0) == ["2", "4"]
    assert await search(store, since=40.0, until=50.0) == ["5", "2", "4"]
    assert await search(store, since=51.0, until=59.0) == []
    # statuses
    assert await search(store, statuses=frozenset({S.Accepted})) == ["5", "4"]
    assert await search(store, statuses=frozenset({S.Completed, S.Failed})) == ["1", "2"]
    assert await search(store, statuses=frozenset({S.Completed, S.Accepted}), since=45.0) == ["1", "5"]
    assert await search(store, statuses=frozenset({S.Cancelled})) == []
    # reference
    assert await search(store, reference="a") == ["1", "4"]
    assert await search(store, owner=None, reference="a") == ["1", "4", "3"]
    assert await search(store, reference="zzz") == []
    # reference and status
    assert await search(store, reference="a", statuses=frozenset({S.Accepted})) == ["4"]
    assert await search(store, reference="a", statuses=frozenset({S.Completed, S.Accepted}), until=45.0) == ["4"]
    assert await search(store, reference="b", statuses=frozenset({S.Accepted})) == []
    # limit
    assert await search(store, limit=2) == ["1", "5"]
    assert await search(store, statuses=frozenset({S.Completed, S.Failed, S.Accepted}), limit=3) == ["1", "5", "2"]
    assert await search(store, limit=0) == []


@pytest_twisted.ensureDeferred
async def test_search_ties_newest_id_first(redis: Redis) -> None:
    store = OrderStore(redis, new_id=numbered())
    for _ in range(12):  # ids 1..12, all at the same instant: "9" must not sort above "12"
        await store.create(make_order(at=5.0))
    assert await search(store) == [str(n) for n in range(12, 0, -1)]
    assert await search(store, limit=3, statuses=frozenset({S.Accepted})) == ["12", "11", "10"]


@pytest.mark.slow
@pytest_twisted.ensureDeferred
async def test_search_is_exact_at_scale(redis: Redis) -> None:
    """10^4 orders: every search answers exactly what a full scan would."""
    rng = random.Random(7)
    store = OrderStore(redis)
    owners = ["alice", "bob", "carol"]
    references = [None, "r1", "r2", "Massive order"]
    statuses = [S.Submitted, S.Accepted, S.InProduction, S.Completed, S.Failed, S.Cancelled]
    plan = [(rng.choice(owners), rng.choice(references), float(rng.randrange(0, 5000))) for _ in range(10_000)]
    started = time.monotonic()

    async def create(owner: str, reference: str | None, at: float) -> Order:
        return await store.create(make_order(owner, n_items=1, at=at, reference=reference))

    created: list[Order] = []
    for chunk in range(0, len(plan), 500):
        created += await defer.gatherResults(
            [defer.ensureDeferred(create(*p)) for p in plan[chunk:chunk + 500]])
    # the model of what is stored: id -> (owner, reference, status, last update)
    model: dict[str, list[Any]] = {o.order_id: [o.owner, o.spec.reference, S.Accepted, o.created_at]
                                   for o in created}
    changes = rng.sample(sorted(model), 4000)
    for chunk in range(0, len(changes), 500):
        batch = []
        for oid in changes[chunk:chunk + 500]:
            status, at = rng.choice(statuses), float(rng.randrange(0, 8000))
            model[oid][2] = status
            model[oid][3] = max(model[oid][3], at)
            batch.append(defer.ensureDeferred(store.set_order_status(oid, StatusInfo(status, changed_at=at))))
        await defer.gatherResults(batch)
    filled = time.monotonic() - started

    def expected(owner: str | None, since: float | None, until: float | None, wanted: frozenset[OrderStatus],
                 reference: str | None, limit: int) -> list[str]:
        rows = [(at, oid.zfill(20)) for oid, (o, r, s, at) in model.items()
                if (owner is None or o == owner) and (since is None or at >= since)
                and (until is None or at <= until) and (not wanted or s in wanted)
                and (reference is None or r == reference)]
        return [oid.lstrip("0") for _, oid in sorted(rows, reverse=True)[:limit]]

    queries = [
        ("alice", None, None, frozenset(), None, 1000),
        ("bob", 1000.0, 2000.0, frozenset(), None, 1000),
        (None, 4000.0, None, frozenset(), None, 50),
        ("carol", None, None, frozenset({S.Failed}), None, 1000),
        ("alice", 2500.0, 6000.0, frozenset({S.Completed, S.Cancelled, S.Submitted}), None, 1000),
        ("bob", None, None, frozenset(), "r1", 1000),
        ("alice", 100.0, 3000.0, frozenset(), "Massive order", 7),
        ("carol", None, None, frozenset({S.InProduction}), "r2", 1000),
        ("alice", 1000.0, None, frozenset({S.Accepted, S.Failed}), "r1", 1000),
        (None, None, None, frozenset({S.Accepted}), "r2", 5),
        (None, None, None, frozenset({S.Completed}), None, 1000),
    ]
    queried = time.monotonic()
    for query in queries:
        want = expected(*query)
        assert await store.search_ids(*query) == want, query
    elapsed = time.monotonic() - queried
    assert elapsed < 5.0, f"searches took {elapsed:.1f}s"
    # A retrieve is one key; spot-check some orders and their indexes.
    for oid in rng.sample(sorted(model), 20):
        order = await store.get(oid)
        assert order is not None and order.status.status is model[oid][2]
        await assert_indexed(redis, store, oid)
    print(f"filled 10^4 orders + 4000 changes in {filled:.1f}s, {len(queries)} searches in {elapsed:.2f}s")


@pytest_twisted.ensureDeferred
async def test_a_store_sees_what_another_store_changed(redis: Redis) -> None:
    # Two daemons on one Redis: each keeps the orders it read, and must still
    # see every change the other one makes, items and order alike.
    here, there = OrderStore(redis), OrderStore(redis)
    order_id = (await here.create(make_order(n_items=3))).order_id
    first = await here.get(order_id)
    assert first is not None and first.version == 1
    assert await here.get(order_id) == first  # unchanged: answered from what it holds

    await there.set_item_status(order_id, "i1", StatusInfo(S.Completed, "done", changed_at=150.0))
    await there.set_order_status(order_id, StatusInfo(S.InProduction, "1 of 3 ready", changed_at=150.0))
    changed = await here.get(order_id)
    assert changed is not None and changed.version == 3
    assert changed.status == StatusInfo(S.InProduction, "1 of 3 ready", changed_at=150.0)
    assert [i.status.status for i in changed.items] == [S.Accepted, S.Completed, S.Accepted]
    assert changed.items[1].completed_at == 150.0
    assert changed.spec == first.spec
    [again] = await here.get_many([order_id])
    assert again == changed and again.version == 3


@pytest_twisted.ensureDeferred
async def test_an_order_removed_behind_a_stores_back_is_gone(redis: Redis) -> None:
    store = OrderStore(redis)
    order_id = (await store.create(make_order())).order_id
    assert await store.get(order_id) is not None
    await redis.conn.delete([keys.order(order_id), keys.order_items(order_id)])
    assert await store.get(order_id) is None
    assert await store.get_many([order_id]) == []


@pytest_twisted.ensureDeferred
async def test_a_store_that_keeps_no_orders_reads_the_same(redis: Redis) -> None:
    keeping, plain = OrderStore(redis), OrderStore(redis, cached_orders=0)
    order_id = (await keeping.create(make_order(n_items=2))).order_id
    for store in (keeping, plain):
        await store.get(order_id)
    await plain.set_item_status(order_id, "i0", StatusInfo(S.Failed, "gone", changed_at=120.0))
    assert await keeping.get(order_id) == await plain.get(order_id)


@pytest_twisted.ensureDeferred
async def test_several_items_change_in_one_step(redis: Redis) -> None:
    store = OrderStore(redis)
    order_id = (await store.create(make_order(n_items=3))).order_id
    await store.set_item_status(order_id, "i2", StatusInfo(S.Cancelled, changed_at=105.0))
    done = await store.set_items_status(order_id, [
        ItemChange("i0", StatusInfo(S.Completed, "ready", changed_at=110.0), completed_at=108.0),
        ItemChange("i1", StatusInfo(S.Failed, "broken", changed_at=111.0)),
        ItemChange("i2", StatusInfo(S.Completed, changed_at=111.0)),  # final already: refused
        ItemChange("i0", StatusInfo(S.Downloaded, changed_at=112.0)),  # after the first change of the call
    ], allowed={S.Accepted, S.InProduction, S.Completed})
    assert done == [True, True, False, True]
    order = await store.get(order_id)
    assert order is not None
    assert [(i.status.status, i.completed_at) for i in order.items] == [
        (S.Downloaded, 108.0), (S.Failed, None), (S.Cancelled, None)]
    progress = await store.update_order_status(order_id, lambda p: None)
    assert progress.counts == {S.Downloaded: 1, S.Failed: 1, S.Cancelled: 1}
    assert progress.last_failure == ("i1", "broken")
    assert await store.count_active_items("alice") == 0
    assert await store.next_ready(order_id) == frozenset({"i0"})
    assert float(await redis.conn.hget(keys.order(order_id), "updated_at")) == 112.0
    await assert_indexed(redis, store, order_id)


@pytest_twisted.ensureDeferred
async def test_an_unknown_item_changes_nothing_of_the_batch(redis: Redis) -> None:
    store = OrderStore(redis)
    order_id = (await store.create(make_order(n_items=2))).order_id
    before = await store.get(order_id)
    with pytest.raises(NoSuchItem) as error:
        await store.set_items_status(order_id, [ItemChange("i0", StatusInfo(S.Completed, changed_at=120.0)),
                                                ItemChange("nope", StatusInfo(S.Completed, changed_at=120.0))])
    assert error.value.args == ("nope",)
    after = await store.get(order_id)
    assert after == before and after is not None and after.version == before.version  # type: ignore[union-attr]
    with pytest.raises(NoSuchOrder):
        await store.set_items_status("999999", [ItemChange("i0", StatusInfo(S.Completed, changed_at=120.0))])
    assert await store.set_items_status(order_id, []) == []
