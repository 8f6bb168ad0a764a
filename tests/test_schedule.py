"""Periodic tasks: one daemon at a time (the leader lock on a real Redis),
each at its interval on the injected clock; result expiry and order purge."""

from __future__ import annotations

import attrs
import pytest_twisted
from twisted.internet import task

from oseod.config import DEMO_COLLECTION, Config, OrdersConfig
from oseod.model.orders import Notification, OrderStatus
from oseod.schedule.scheduler import TICK, PeriodicTask, Scheduler
from oseod.store.connection import Redis
from oseod.store.leader import LeaderLock
from tests.test_jobs_engine import ALICE, daemon, spec

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
    assert len(await d.service.ready_items(ALICE, order.order_id, next_ready=False)) == 2
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
    assert await d.service.ready_items(ALICE, order.order_id, next_ready=False) == []
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
