"""The processing engine on a real Redis: durability, takeover, priorities,
several engines sharing the work, idempotent results."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task
from zope.interface import implementer

from oseod.auth.account import Account
from oseod.config import DEMO_COLLECTION, CollectionConfig, Config, OrdersConfig, ProcessingConfig
from oseod.core.ordering import OrderingService
from oseod.jobs.dummy import content
from oseod.core.deliverables import path_name, result_directory
from oseod.jobs.engine import BUILTINS, Engine
from oseod.jobs.registry import ProcessorRegistry
from oseod.jobs.processors import IItemProcessor, IMassiveExpansion, IOrderChecks, ItemWork
from oseod.model.errors import RequestRejected
from oseod.model.orders import ItemSpec, Notification, OrderSpec, OrderStatus, OrderType, Priority
from oseod.store.connection import Redis
from oseod.store.jobs import Job, JobStore
from oseod.store.orders import OrderStore
from tests.parts import RESULTS
from tests.pools import POOLS

S = OrderStatus
ALICE = Account("alice")
COUNTED = CollectionConfig(id="urn:x:counted", processor="counting",
                           order_types=("PRODUCT_ORDER", "MASSIVE_ORDER"))
CONFIG = Config(orders=OrdersConfig(max_items_per_order=50, max_active_items_per_user=10_000),
                processing=ProcessingConfig(workers=4, max_attempts=2, retry_delay=10.0),
                collections=(DEMO_COLLECTION, COUNTED))


@implementer(IItemProcessor)
class CountingProcessor:
    """Records every item it makes, across engines (class-level)."""

    made: Counter[tuple[str, str]] = Counter()

    def __init__(self, options: Mapping[str, Any], reactor: Any, clock: Any) -> None:
        pass

    def prepare_item(self, work: ItemWork) -> None:
        self.made[(work.order_id, work.item.item_id)] += 1

    def deliver_item(self, work: ItemWork) -> None:
        pass

    def clean_item(self, work: ItemWork) -> None:
        pass


@attrs.define
class Daemon:
    """What of a daemon processing needs: its core and its engine."""

    service: OrderingService
    engine: Engine
    clock: task.Clock
    results: Path


def daemon(redis: Redis, consumer: str | None = None, *, lease: float | None = None, config: Config = CONFIG,
           clock: task.Clock | None = None, jobs: JobStore | None = None, turns: Any = reactor) -> Daemon:
    """``turns``: the reactor whose turns the engine shares (a Clock to watch them)."""
    clock = clock or task.Clock()
    processors = ProcessorRegistry(config, turns, clock, threads=POOLS, builtins={
        **BUILTINS, "counting": CountingProcessor, "picky": PickyProcessor, "flaky": FlakyProcessor,
        "expanding": ExpandingProcessor})
    service = OrderingService(OrderStore(redis), config, clock, resolve=processors.resolve,
                              check_item=processors.check_item)
    results = RESULTS / uuid.uuid4().hex
    engine = Engine(service, jobs or JobStore(redis), config, turns, clock, results=results,
                    consumer=consumer or uuid.uuid4().hex, lease_seconds=lease, processors=processors, threads=POOLS)
    service.dispatcher = engine
    return Daemon(service, engine, clock, results)


async def died_holding(redis: Redis, consumer: str) -> list[Job]:
    """The jobs a daemon named ``consumer`` claimed just before it died."""
    jobs = JobStore(redis)
    await jobs.setup()
    return await jobs.claim(consumer, 10)


def spec(*products: str, collection: str = COUNTED.id, priority: Priority | None = None) -> OrderSpec:
    return OrderSpec(OrderType.PRODUCT_ORDER, priority=priority, items=tuple(
        ItemSpec(item_id=f"i{n}", product_id=p, collection_id=collection) for n, p in enumerate(products)))


async def statuses(d: Daemon, order_id: str) -> tuple[OrderStatus, list[OrderStatus]]:
    order = await d.service.get(ALICE, order_id)
    return order.status.status, [i.status.status for i in order.items]


@pytest_twisted.ensureDeferred
async def test_an_order_accepted_while_no_engine_runs_is_made_by_the_next_one(redis: Redis) -> None:
    CountingProcessor.made.clear()
    submitting = daemon(redis)  # its engine never starts: a daemon that died right after the SubmitAck
    order = await submitting.service.submit(ALICE, spec("a", "b"), Notification())
    worker = daemon(redis)
    await worker.engine.start()
    await worker.engine.drain()
    assert await statuses(worker, order.order_id) == (S.Completed, [S.Completed, S.Completed])
    assert CountingProcessor.made == {(order.order_id, "i0"): 1, (order.order_id, "i1"): 1}
    await worker.engine.stop()


@pytest_twisted.ensureDeferred
async def test_a_restarted_daemon_takes_back_its_own_jobs(redis: Redis) -> None:
    CountingProcessor.made.clear()
    before = daemon(redis, "host-a")
    order = await before.service.submit(ALICE, spec("a"), Notification())
    [claimed] = await died_holding(redis, "host-a")
    jobs = JobStore(redis)
    assert claimed.order_id == order.order_id
    after = daemon(redis, "host-a", lease=3600.0)  # nobody else would take it for an hour
    await after.engine.start()
    await after.engine.drain()
    assert await statuses(after, order.order_id) == (S.Completed, [S.Completed])
    assert await jobs.depth() == {"FAST_TRACK": 0, "STANDARD": 0, "delayed": 0}
    await after.engine.stop()


@pytest_twisted.ensureDeferred
async def test_another_daemon_takes_over_jobs_left_unrenewed(redis: Redis) -> None:
    CountingProcessor.made.clear()
    first = daemon(redis, "host-a")
    order = await first.service.submit(ALICE, spec("a", "b"), Notification())
    assert len(await died_holding(redis, "host-a")) == 1
    second = daemon(redis, "host-b", lease=0.0)  # (a lease of 0: host-a's has run out)
    await second.engine.start()
    second.clock.advance(1.0)  # the takeover timer
    await second.engine.drain()
    assert await statuses(second, order.order_id) == (S.Completed, [S.Completed, S.Completed])
    assert sum(CountingProcessor.made.values()) == 2
    await second.engine.stop()


@pytest_twisted.ensureDeferred
async def test_a_job_redone_after_a_crash_does_not_redo_finished_items(redis: Redis) -> None:
    CountingProcessor.made.clear()
    d = daemon(redis, "host-a")
    order = await d.service.submit(ALICE, spec("a", "b"), Notification())
    await died_holding(redis, "host-a")
    # The crash came after item i0's outcome was stored, before the job's end.
    await d.service.start_items(order.order_id, ["i0", "i1"])
    await d.service.complete_items(order.order_id, ["i0"])
    await d.engine.start()
    await d.engine.drain()
    assert await statuses(d, order.order_id) == (S.Completed, [S.Completed, S.Completed])
    assert CountingProcessor.made == {(order.order_id, "i1"): 1}
    await d.engine.stop()


@pytest_twisted.ensureDeferred
async def test_a_front_daemon_without_workers_takes_orders_that_others_make(redis: Redis) -> None:
    CountingProcessor.made.clear()
    front = daemon(redis, "front", lease=0.0, config=attrs.evolve(CONFIG, processing=ProcessingConfig(workers=0)))
    await front.engine.start()
    order = await front.service.submit(ALICE, spec("a", "b"), Notification())
    # Left by a worker that died holding it: even then the front takes nothing.
    await died_holding(redis, "front")
    front.clock.advance(60.0)
    await front.engine.drain()
    assert await statuses(front, order.order_id) == (S.Accepted, [S.Accepted, S.Accepted])
    assert not CountingProcessor.made and front.engine.running == 0
    await front.engine.stop()
    worker = daemon(redis, "worker", lease=0.0)
    await worker.engine.start()
    worker.clock.advance(1.0)  # the takeover timer
    await worker.engine.drain()
    assert await statuses(worker, order.order_id) == (S.Completed, [S.Completed, S.Completed])
    assert CountingProcessor.made == {(order.order_id, "i0"): 1, (order.order_id, "i1"): 1}
    await worker.engine.stop()


@pytest_twisted.ensureDeferred
async def test_two_daemons_share_a_load_and_make_each_item_once(redis: Redis) -> None:
    CountingProcessor.made.clear()
    one, two = daemon(redis, "one"), daemon(redis, "two")
    await one.engine.start()
    await two.engine.start()
    submitted = await defer.gatherResults([
        defer.ensureDeferred((one if n % 2 else two).service.submit(ALICE, spec(*(f"p{k}" for k in range(5))),
                                                                     Notification()))
        for n in range(30)])
    for _ in range(3):  # a Submit wakes its own daemon; the other one finds work on its timer
        for d in (one, two):
            d.clock.advance(1.0)
            await d.engine.drain()
    for order in submitted:
        assert await statuses(one, order.order_id) == (S.Completed, [S.Completed] * 5)
    assert len(CountingProcessor.made) == 150 and set(CountingProcessor.made.values()) == {1}
    await one.engine.stop()
    await two.engine.stop()


@pytest_twisted.ensureDeferred
async def test_fast_track_jobs_go_first(redis: Redis) -> None:
    CountingProcessor.made.clear()
    config = attrs.evolve(CONFIG, processing=ProcessingConfig(workers=1))
    d = daemon(redis, config=config)
    standard = [await d.service.submit(ALICE, spec("s"), Notification()) for _ in range(3)]
    fast = await d.service.submit(ALICE, spec("f", priority=Priority.FAST_TRACK), Notification())
    await d.engine.start()
    await d.engine.drain()
    made = [order_id for order_id, _ in CountingProcessor.made]
    assert made[0] == fast.order_id and sorted(made[1:]) == sorted(o.order_id for o in standard)
    await d.engine.stop()


@pytest_twisted.ensureDeferred
async def test_the_dummy_writes_one_file_per_item_however_often_it_runs(redis: Redis) -> None:
    d = daemon(redis)
    await d.engine.start()
    order = await d.service.submit(ALICE, spec("urn:oseod:demo:x/../1", collection=DEMO_COLLECTION.id),
                                   Notification())
    await d.engine.drain()
    directory = result_directory(d.results, "alice", order.order_id, "i0")
    assert directory.parent.parent == d.results / "alice"
    files = list(directory.iterdir())
    assert [f.name for f in files] == ["urn_oseod_demo_x_.._1.dat"]
    assert files[0].read_bytes() == content("i0", 1024)
    # Run again (as after a crash): the same one file.
    processor = d.engine.processors.processor(DEMO_COLLECTION.id)
    await processor.prepare_item(ItemWork(order.order_id, "alice", order.items[0].spec, 2, directory))
    assert [f.name for f in directory.iterdir()] == ["urn_oseod_demo_x_.._1.dat"]
    await d.engine.stop()


def test_path_names_are_single_safe_components() -> None:
    for text in ("..", ".", "a/b", "", "x\0y", ".hidden", "ok-1.2"):
        name = path_name(text)
        assert "/" not in name and "\0" not in name and name not in ("", ".", "..")
        assert not name.startswith(".")
    assert path_name("ok-1.2") == "ok-1.2"


@pytest_twisted.ensureDeferred
async def test_a_massive_order_queues_its_batches_one_after_the_other(redis: Redis) -> None:
    CountingProcessor.made.clear()
    config = attrs.evolve(CONFIG, orders=attrs.evolve(CONFIG.orders, max_items_per_order=4))
    d = daemon(redis, config=config)
    massive = attrs.evolve(spec(*(f"p{n}" for n in range(10))), reference="Massive order")
    order = await d.service.submit(ALICE, massive, Notification())
    assert [item.batch for item in order.items] == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
    jobs = JobStore(redis)
    assert (await jobs.depth())["STANDARD"] == 1  # the first batch only: back-pressure
    await d.engine.start()
    await d.engine.drain()
    assert await statuses(d, order.order_id) == (S.Completed, [S.Completed] * 10)
    made = [item_id for _, item_id in CountingProcessor.made]
    assert made == [f"i{n}" for n in range(10)] and set(CountingProcessor.made.values()) == {1}
    assert await jobs.depth() == {"FAST_TRACK": 0, "STANDARD": 0, "delayed": 0}
    await d.engine.stop()


@implementer(IItemProcessor)
class FlakyProcessor(CountingProcessor):
    """Fails each item of ``failing`` as many times as it says."""

    failing: Counter[str] = Counter()

    def prepare_item(self, work: ItemWork) -> None:
        super().prepare_item(work)
        if self.failing[work.item.item_id] > 0:
            self.failing[work.item.item_id] -= 1
            raise RuntimeError("the archive is away")


@pytest_twisted.ensureDeferred
async def test_a_retried_batch_gets_every_attempt_and_does_not_queue_the_next_again(redis: Redis) -> None:
    CountingProcessor.made.clear()
    FlakyProcessor.failing = Counter({"i1": 3, "i9": 2})  # attempts used up at first; i1 fails once more
    config = attrs.evolve(CONFIG, orders=attrs.evolve(CONFIG.orders, max_items_per_order=4),
                          collections=(DEMO_COLLECTION, attrs.evolve(COUNTED, processor="flaky")))
    assert config.processing.max_attempts == 2
    d = daemon(redis, config=config)

    async def run() -> None:
        for _ in range(3):
            await d.engine.drain()
            d.clock.advance(config.processing.retry_delay)  # the retries fall due
        await d.engine.drain()

    order = await d.service.submit(ALICE, attrs.evolve(spec(*(f"p{n}" for n in range(10))),
                                                      reference="Massive order"), Notification())
    await d.engine.start()
    await run()
    assert [n for n, s in enumerate((await statuses(d, order.order_id))[1]) if s is S.Failed] == [1, 9]
    # An operator's retry (oseoctl order retry) makes the failed items of
    # batches 0 and 2 again, with every attempt (i1 needs both), and nothing else.
    assert await d.service.retry_failed(order.order_id) == ["i1", "i9"]
    await run()
    assert await statuses(d, order.order_id) == (S.Completed, [S.Completed] * 10)
    assert {key[1]: n for key, n in CountingProcessor.made.items() if n != 1} == {"i1": 4, "i9": 3}
    assert sum(CountingProcessor.made.values()) == 15
    assert await JobStore(redis).depth() == {"FAST_TRACK": 0, "STANDARD": 0, "delayed": 0}
    await d.engine.stop()


@implementer(IItemProcessor, IOrderChecks)
class PickyProcessor(CountingProcessor):
    """Claims the "ZZ-" products and will not make the "bad" ones."""

    def collection_of(self, identifier: str) -> str | None:
        return COUNTED.id if identifier.startswith("ZZ-") else None

    def check_item(self, item: ItemSpec) -> str | None:
        return "this archive has no bad products" if (item.product_id or "").startswith("bad") else None


@pytest_twisted.ensureDeferred
async def test_processors_may_claim_identifiers_and_refuse_items_at_submit(redis: Redis) -> None:
    config = attrs.evolve(CONFIG, collections=(DEMO_COLLECTION, attrs.evolve(COUNTED, processor="picky")))
    d = daemon(redis, config=config)
    service, engine = d.service, d.engine
    await engine.start()
    claimed = await service.submit(ALICE, OrderSpec(OrderType.PRODUCT_ORDER, items=(
        ItemSpec(item_id="i0", product_id="ZZ-1"),)), Notification())
    assert claimed.items[0].spec.collection_id == COUNTED.id
    with pytest.raises(RequestRejected) as refused:
        await service.submit(ALICE, spec("good", "bad-1"), Notification())
    assert (refused.value.code, refused.value.locator) == ("InvalidParameterValue", "orderItem")
    assert refused.value.text == 'item "i1": this archive has no bad products'
    await engine.drain()
    await engine.stop()


@implementer(IItemProcessor, IMassiveExpansion)
class ExpandingProcessor(CountingProcessor):
    """Expands a massive order's one item into the products of its options'
    "count" (p1, p2, ...), a batch at a time."""

    asked: list[int] = []

    def batch_identifiers(self, item: ItemSpec, index: int, size: int) -> list[str]:
        self.asked.append(index)
        total = int(item.product_id or "0")
        return [f"p{n}" for n in range(index * size + 1, min((index + 1) * size, total) + 1)]


@pytest_twisted.ensureDeferred
async def test_a_massive_order_of_one_item_is_expanded_batch_by_batch(redis: Redis) -> None:
    CountingProcessor.made.clear()
    ExpandingProcessor.asked.clear()
    expanding = CollectionConfig(id="urn:x:exp", processor="expanding", order_types=("MASSIVE_ORDER",))
    config = attrs.evolve(CONFIG, orders=attrs.evolve(CONFIG.orders, max_items_per_order=4),
                          collections=(expanding,))
    d = daemon(redis, config=config)
    service, engine = d.service, d.engine
    massive = OrderSpec(OrderType.PRODUCT_ORDER, reference="Massive order",
                        items=(ItemSpec("all", product_id="9", collection_id=expanding.id),))
    order = await service.submit(ALICE, massive, Notification())
    await engine.start()
    await engine.drain()
    stored = await service.get(ALICE, order.order_id)
    assert [(i.spec.item_id, i.spec.product_id, i.batch, i.status.status) for i in stored.items] == [
        ("all", "9", 0, S.Completed),
        *((f"all-{n}", f"p{n}", (n - 1) // 4 + 1, S.Completed) for n in range(1, 10))]
    assert stored.items[0].status.additional_info == "Expanded into 9 items in 3 batches"
    assert stored.status.status is S.Completed
    assert ExpandingProcessor.asked == [0, 1, 2, 3]  # one batch at a time, then the end
    assert sorted(item for _, item in CountingProcessor.made) == sorted(f"all-{n}" for n in range(1, 10))
    assert await JobStore(redis).depth() == {"FAST_TRACK": 0, "STANDARD": 0, "delayed": 0}
    await engine.stop()


class FlakyJobStore(JobStore):
    """A queue whose retry promotion fails once, as when Redis is away."""

    failures = 1

    async def promote(self, now: float, limit: int = 1000) -> int:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("Redis went away")
        return await super().promote(now, limit)


@pytest_twisted.ensureDeferred
async def test_a_timer_step_that_fails_runs_again_at_the_next_tick(redis: Redis) -> None:
    jobs = FlakyJobStore(redis)
    d = daemon(redis, jobs=jobs)
    await jobs.setup()
    order = await d.service.submit(ALICE, spec("x"), Notification())
    [job] = await jobs.claim("someone-else", 1)  # its first attempt failed elsewhere: a retry is due now
    await jobs.retry(job, attrs.evolve(job, attempt=2, entry_id=""), due=d.clock.seconds())
    await d.engine.start()
    d.clock.advance(1.0)  # the promotion fails ...
    await d.engine.drain()
    assert jobs.failures == 0 and (await jobs.depth())["delayed"] == 1
    d.clock.advance(1.0)  # ... and runs again: the retry goes back to the queue and is made
    await d.engine.drain()
    assert await statuses(d, order.order_id) == (S.Completed, [S.Completed])
    await d.engine.stop()
