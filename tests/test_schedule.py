"""Periodic tasks: one daemon at a time (the leader lock on a real Redis),
each at its interval on the injected clock; result expiry and order purge."""

from __future__ import annotations

import attrs
import pytest
import pytest_twisted
from twisted.internet import task

from oseod.config import DEMO_COLLECTION, Config, OrdersConfig
from oseod.model.orders import Notification, OrderStatus
from oseod.schedule.scheduler import TICK, PeriodicTask, Scheduler
from oseod.store import keys
from oseod.store.connection import Redis, ReplicationShortfall
from oseod.store.leader import Deposed, Fence, LeaderLock, TaskRunRecord, TaskRuns
from oseod.store.orders import OrderStore
from tests.redis_process import RedisProcess
from tests.test_jobs_engine import ALICE, daemon, spec
from tests.test_store_orders import make_order

S = OrderStatus
DAY = 86400.0


@pytest_twisted.ensureDeferred
async def test_one_daemon_runs_the_tasks_each_at_its_interval(redis: Redis) -> None:
    clock = task.Clock()
    runs: list[tuple[str, str]] = []

    def scheduler(name: str) -> Scheduler:
        async def run(what: str) -> None:
            runs.append((name, what))

        return Scheduler(LeaderLock(redis, name), clock, [
            PeriodicTask("often", 20.0, lambda: run("often")),
            PeriodicTask("rarely", 60.0, lambda: run("rarely")),
            PeriodicTask("never", 0.0, lambda: run("never")),
        ])

    one, two = scheduler("one"), scheduler("two")
    await one.tick()
    await two.tick()
    assert (one.leading, two.leading) == (True, False)
    assert runs == [("one", "often"), ("one", "rarely")]
    runs.clear()
    for _ in range(6):  # a minute, one tick every TICK seconds
        clock.advance(TICK)
        await one.tick()
        await two.tick()
    assert runs == [("one", "often"), ("one", "often"), ("one", "often"), ("one", "rarely")]
    await one.stop()  # lets go of the lock: the other daemon takes over
    runs.clear()
    await two.tick()
    assert two.leading and runs == [("two", "often"), ("two", "rarely")]
    await two.stop()


@pytest_twisted.ensureDeferred
async def test_a_failing_task_does_not_stop_the_others(redis: Redis) -> None:
    ran: list[str] = []

    async def broken() -> None:
        raise RuntimeError("disk full")

    async def fine() -> None:
        ran.append("fine")

    scheduler = Scheduler(LeaderLock(redis, "x"), task.Clock(), [PeriodicTask("broken", 1.0, broken),
                                                                   PeriodicTask("fine", 1.0, fine)])
    await scheduler.tick()
    assert ran == ["fine"]
    await scheduler.stop()


@pytest_twisted.ensureDeferred
async def test_results_expire_after_the_availability_days(redis: Redis) -> None:
    config = attrs.evolve(Config(), orders=OrdersConfig(item_availability_days=2, max_active_items_per_user=100),
                          collections=(DEMO_COLLECTION,))
    d = daemon(redis, config=config)
    d.clock.advance(1_000_000.0)
    await d.engine.start()
    order = await d.service.submit(ALICE, spec("a", "b", collection=DEMO_COLLECTION.id), Notification())
    await d.engine.drain()
    assert len(await d.service.ready_items(ALICE, order.order_id)) == 2
    files = [p for p in d.results.rglob("*") if p.is_file()]
    assert len(files) == 2

    d.clock.advance(2 * DAY - 1)
    assert await d.service.expire_results(d.engine.clean) == 0
    d.clock.advance(2)
    assert await d.service.expire_results(d.engine.clean) == 2
    stored = await d.service.get(ALICE, order.order_id)
    assert [i.status.status for i in stored.items] == [S.Completed, S.Completed]
    assert all(i.status.additional_info == "Result expired on 1970-01-14T13:46:41Z: no longer downloadable"
               for i in stored.items)
    assert await d.service.ready_items(ALICE, order.order_id) == []
    assert not any(p.exists() for p in files)
    assert await d.service.expire_results(d.engine.clean) == 0  # once only
    await d.engine.stop()


@pytest_twisted.ensureDeferred
async def test_final_orders_are_purged_after_the_retention_days(redis: Redis) -> None:
    config = attrs.evolve(Config(), orders=OrdersConfig(retention_days=30, max_active_items_per_user=100),
                          collections=(DEMO_COLLECTION,))
    d = daemon(redis, config=config)
    d.clock.advance(1_000_000.0)
    done = await d.service.submit(ALICE, spec("a", collection=DEMO_COLLECTION.id), Notification())
    waiting = await d.service.submit(ALICE, spec("b", collection=DEMO_COLLECTION.id), Notification())
    await d.service.cancel(ALICE, waiting.order_id, Notification())
    await d.engine.start()
    await d.engine.drain()
    d.clock.advance(30 * DAY + 1)
    cancelled_late = await d.service.submit(ALICE, spec("c", collection=DEMO_COLLECTION.id), Notification())
    await d.service.cancel(ALICE, cancelled_late.order_id, Notification())
    assert await d.service.purge_final_orders() == 2
    for gone in (done, waiting):
        assert await d.service.find(gone.order_id) is None
    assert [o.order_id for o in await d.service.search(ALICE)] == [cancelled_late.order_id]
    assert await d.service.purge_final_orders() == 0
    await d.engine.stop()


# ------------------------------------------------------------------ fencing (issue 14)


async def lose_the_lock(redis: Redis) -> None:
    """As if the lock's time ran out (its holder frozen, or a failover lost it)."""
    await redis.conn.delete(keys.leader())


@pytest_twisted.ensureDeferred
async def test_each_taking_of_the_lock_is_a_newer_token(redis: Redis) -> None:
    one, two = LeaderLock(redis, "one"), LeaderLock(redis, "two")
    assert await one.hold(30.0) and one.fence is not None
    first = one.fence.token
    assert await one.hold(30.0) and one.fence.token == first  # renewed: the same token
    assert not await two.hold(30.0) and two.fence is None
    await lose_the_lock(redis)
    assert await two.hold(30.0) and two.fence is not None and two.fence.token == first + 1
    assert not await one.leads() and one.fence is None
    assert await two.leads()


@pytest_twisted.ensureDeferred
async def test_a_deposed_leader_cannot_purge(redis: Redis) -> None:
    store = OrderStore(redis)
    order = await store.create(make_order(status=S.Cancelled))
    old, new = LeaderLock(redis, "old"), LeaderLock(redis, "new")
    await old.hold(30.0)
    stale = old.fence
    await lose_the_lock(redis)
    await new.hold(30.0)
    with pytest.raises(Deposed):
        await store.purge(order.order_id, {S.Cancelled}, fence=stale)
    with pytest.raises(Deposed):
        await store.index_older_orders(fence=stale)
    assert await store.get(order.order_id) is not None
    assert await store.purge(order.order_id, {S.Cancelled}, fence=new.fence)
    with pytest.raises(Deposed):
        await TaskRuns(redis).record(TaskRunRecord("purge", 1.0, 0.1, True), stale)
    assert await TaskRuns(redis).last() == {}


@pytest_twisted.ensureDeferred
async def test_a_leader_deposed_in_mid_tick_stops_there(redis: Redis) -> None:
    """The old leader froze past the lock's expiry while running its tasks:
    its fenced write is refused, and it runs nothing more."""
    clock = task.Clock()
    store = OrderStore(redis)
    order = await store.create(make_order(status=S.Cancelled))
    other = Scheduler(LeaderLock(redis, "other"), clock, [])
    ran: list[str] = []

    async def taken_over() -> None:
        ran.append("taken over")
        await lose_the_lock(redis)
        await other.tick()  # the other daemon leads now

    async def purge(fence: Fence) -> None:
        ran.append("purge")
        await store.purge(order.order_id, {S.Cancelled}, fence=fence)

    async def later() -> None:
        ran.append("later")

    runs = TaskRuns(redis)
    frozen = Scheduler(LeaderLock(redis, "frozen"), clock, [
        PeriodicTask("taken over", 10.0, taken_over), PeriodicTask("purge", 10.0, purge, fenced=True),
        PeriodicTask("later", 10.0, later)], runs=runs)
    await frozen.tick()
    assert other.leading and not frozen.leading
    assert ran == ["taken over"]  # the check before the next task found the lock gone
    assert await store.get(order.order_id) is not None
    assert set(await runs.last()) == set()  # its run was not recorded either (another leads)

    # Deposed in the middle of a fenced task: its script refuses, and the tick ends there.
    ran.clear()

    async def purge_late(fence: Fence) -> None:
        ran.append("purge")
        await lose_the_lock(redis)
        await frozen.tick()  # the other way round: "frozen" leads again, "other" is the stale one
        await store.purge(order.order_id, {S.Cancelled}, fence=fence)

    other.tasks = [PeriodicTask("purge", 10.0, purge_late, fenced=True), PeriodicTask("later", 10.0, later)]
    frozen.tasks = []
    clock.advance(10.0)
    await lose_the_lock(redis)
    await other.tick()
    assert ran == ["purge"] and frozen.leading and not other.leading
    assert await store.get(order.order_id) is not None


@pytest_twisted.ensureDeferred
async def test_the_lock_is_taken_with_wait_under_min_replicas(redis_process: RedisProcess) -> None:
    """No replica has it: not leading (a failover could forget the lock)."""
    handle = Redis(redis_process.address, min_replicas=1, wait_timeout=0.05)
    await handle.connect()
    try:
        ran: list[str] = []

        async def work() -> None:
            ran.append("work")

        scheduler = Scheduler(LeaderLock(handle, "one"), task.Clock(), [PeriodicTask("work", 10.0, work)])
        with pytest.raises(ReplicationShortfall):
            await LeaderLock(handle, "two").hold(30.0)
        await scheduler.tick()
        assert not scheduler.leading and ran == []
    finally:
        await handle.close()
