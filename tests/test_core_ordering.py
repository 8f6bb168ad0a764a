from __future__ import annotations

import random
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task
from zope.interface import implementer
from zope.interface.verify import verifyObject

from oseod.auth.account import Account
from oseod.config import DEMO_COLLECTION, CollectionConfig, Config, NotificationsConfig, OptionConfig, OrdersConfig
from oseod.core.ordering import (
    DAY,
    IDispatcher,
    OrderingService,
    ReadyItem,
    derive_order_status,
)
from oseod.core.validation import resolve_collection
from oseod.model.errors import RequestRejected
from oseod.model.orders import (
    DeliveryChoice,
    DeliveryMethod,
    Item,
    ItemSpec,
    Notification,
    OnlineAddress,
    OptionValue,
    Order,
    OrderSpec,
    OrderStatus,
    OrderType,
    StatusInfo,
    StatusNotification,
)
from oseod.store.connection import Redis
from oseod.core.deliverables import result_directory
from oseod.core.orderstate import ITEMS_PER_WRITE
from oseod.jobs.engine import BUILTINS, Engine
from oseod.jobs.processors import IItemProcessor, ItemWork
from oseod.store.jobs import JobStore
from oseod.store.orders import OrderProgress, OrderStore
from tests.parts import RESULTS
from tests.polling import eventually
from tests.pools import POOLS

S = OrderStatus
DEMO = DEMO_COLLECTION.id
START = 1_700_000_000.0

COLLECTIONS = (
    DEMO_COLLECTION,
    CollectionConfig(id="urn:x:manual", moderation="manual", processor="other", order_types=("PRODUCT_ORDER",),
                     online_data_access=("http",), packaging=("zip",)),
    CollectionConfig(id="urn:x:engine", processor="other",
                     order_types=("PRODUCT_ORDER", "SUBSCRIPTION_ORDER", "TASKING_ORDER"),
                     option=(OptionConfig(name="band", choices=("red", "nir")),)),
    CollectionConfig(id="urn:x:secret", groups=("eo",)),
    CollectionConfig(id="urn:x:slow", processor="dummy", processor_options={"delay": 5.0}),
    CollectionConfig(id="urn:x:broken", processor="dummy", processor_options={"fail_rate": 1.0}),
)
CONFIG = Config(orders=OrdersConfig(max_items_per_order=5, max_active_items_per_user=8, item_availability_days=2),
                collections=COLLECTIONS)
ALICE = Account("alice")
BOB = Account("bob")
NONE = Notification()


@implementer(IItemProcessor)
class ElsewhereProcessor:
    """The "other" collections' processor: its items are made by the tests
    themselves (start_item, complete_item...), or fail when the engine tries."""

    def __init__(self, options: Any, reactor: Any, clock: Any) -> None:
        pass

    def prepare_item(self, work: ItemWork) -> None:
        raise RuntimeError("made elsewhere")

    def deliver_item(self, work: ItemWork) -> None:
        pass

    def clean_item(self, work: ItemWork) -> None:
        pass


@attrs.define
class World:
    service: OrderingService
    store: OrderStore
    engine: Engine
    clock: task.Clock

    async def start(self) -> None:
        if not self.engine.started:
            await self.engine.start()

    async def process(self) -> None:
        """Run the engine (from the first call on) until the jobs it can take are done."""
        await self.start()
        await self.engine.drain()


def build(redis: Redis, config: Config = CONFIG) -> World:
    clock = task.Clock()
    clock.advance(START)
    store = OrderStore(redis)
    service = OrderingService(store, config, clock)
    name = uuid.uuid4().hex
    engine = Engine(service, JobStore(redis), config, reactor, clock, results=RESULTS / name, consumer=name,
                    builtins={**BUILTINS, "other": ElsewhereProcessor}, threads=POOLS)
    service.dispatcher = engine
    return World(service, store, engine, clock)


def product(*identifiers: str, collection: str | None = DEMO, **item: Any) -> tuple[ItemSpec, ...]:
    return tuple(ItemSpec(item_id=f"item{n}", product_id=i, collection_id=collection, **item)
                 for n, i in enumerate(identifiers))


def order_spec(items: tuple[ItemSpec, ...] | None = None, **kwargs: Any) -> OrderSpec:
    kwargs.setdefault("order_type", OrderType.PRODUCT_ORDER)
    return OrderSpec(items=product("p1", "p2") if items is None else items, **kwargs)


async def order_status(world: World, order_id: str) -> OrderStatus:
    return (await world.service.get(ALICE, order_id)).status.status


async def item_status(world: World, order_id: str, index: int) -> OrderStatus:
    return (await world.service.get(ALICE, order_id)).items[index].status.status


async def is_(value: Awaitable[object], expected: object) -> bool:
    return await value is expected


async def rejected(call: Awaitable[Any]) -> RequestRejected:
    with pytest.raises(RequestRejected) as info:
        await call
    return info.value


# ------------------------------------------------------------------ validation

ODA = DeliveryChoice(DeliveryMethod.ONLINE_DATA_ACCESS, "ftp")
REJECTIONS: list[tuple[str, OrderSpec, Notification, str, str, tuple[str, ...]]] = [
    ("collection hidden from the caller", order_spec(product("p", collection="urn:x:secret")), NONE,
     "UnsupportedCollection", "collectionId", ('"urn:x:secret"',)),
    ("massive orders disabled", order_spec(product("p", collection="urn:x:slow"), order_type=OrderType.PRODUCT_ORDER,
                                           reference="Massive order"), NONE,
     "ProductOrderingNotSupported", "orderType", ('"urn:x:slow"', "massive")),
    ("subscriptions disabled", order_spec((ItemSpec("s", collection_id="urn:x:manual", subscription=True),),
                                          order_type=OrderType.SUBSCRIPTION_ORDER), NONE,
     "SubscriptionNotSupported", "orderType", ('"urn:x:manual"', "SUBSCRIPTION_ORDER")),
    ("tasking disabled", order_spec((ItemSpec("t", collection_id=DEMO, tasking_request_id="urn:sps:1"),),
                                    order_type=OrderType.TASKING_ORDER), NONE,
     "FutureProductNotSupported", "orderType", (f'"{DEMO}"', "TASKING_ORDER")),
    ("product orders disabled", order_spec((ItemSpec("x", product_id="p", collection_id="urn:x:tasking"),)),
     NONE, "ProductOrderingNotSupported", "orderType", ('"urn:x:tasking"', "PRODUCT_ORDER")),
    ("unknown collection", order_spec(product("p", collection="urn:nope")), NONE,
     "UnsupportedCollection", "collectionId", ('"urn:nope"',)),
    ("no identifier", order_spec(product("")), NONE, "MissingParameterValue", "productId", ('"item0"',)),
    ("no collection found", order_spec(product("urn:other:p", collection=None)), NONE,
     "UnsupportedCollection", "collectionId", ('"urn:other:p"',)),
    ("subscription item in a product order",
     order_spec((ItemSpec("s", collection_id=DEMO, subscription=True),)), NONE,
     "InvalidParameterValue", "orderItem", ('"s"', "productId")),
    ("product item in a subscription",
     order_spec(product("p"), order_type=OrderType.SUBSCRIPTION_ORDER), NONE,
     "InvalidParameterValue", "orderItem", ('"item0"', "subscriptionId")),
    ("unknown option", order_spec(product("p", options=(OptionValue("colour", "red"),))), NONE,
     "InvalidParameterValue", "option", ('"colour"', "format")),
    ("bad option value", order_spec(product("p", options=(OptionValue("format", "JPEG"),))), NONE,
     "InvalidParameterValue", "option", ('"JPEG"', '"format"', "GeoTIFF, NetCDF")),
    ("bad global option value", order_spec(options=(OptionValue("format", "HDF5"),)), NONE,
     "InvalidParameterValue", "option", ('"HDF5"', '"format"')),
    ("global option of another collection",
     order_spec(product("p") + (ItemSpec("q", product_id="q", collection_id="urn:x:engine"),),
                options=(OptionValue("band", "red"),)),
     NONE, "InvalidParameterValue", "option", ('"band"', f'"{DEMO}"')),
    ("protocol not offered", order_spec(delivery=DeliveryChoice(DeliveryMethod.ONLINE_DATA_ACCESS, "sftp")), NONE,
     "InvalidParameterValue", "deliveryOptions", ('"sftp"', "ftp, http")),
    ("item protocol not offered",
     order_spec(product("p", collection="urn:x:manual", delivery=ODA)), NONE,
     "InvalidParameterValue", "deliveryOptions", ('"ftp"', '"urn:x:manual"', "http")),
    ("online delivery without address",
     order_spec(delivery=DeliveryChoice(DeliveryMethod.ONLINE_DATA_DELIVERY, "ftp")), NONE,
     "MissingParameterValue", "onlineAddress", ("onlineAddress",)),
    ("media delivery", order_spec(delivery=DeliveryChoice(DeliveryMethod.MEDIA_DELIVERY, package_medium="DVD")),
     NONE, "InvalidParameterValue", "deliveryOptions", ("mediaDelivery",)),
    ("packaging not offered", order_spec(product("p", collection="urn:x:manual"), packaging="tar"), NONE,
     "InvalidParameterValue", "packaging", ('"tar"', "zip")),
    ("too many items", order_spec(product(*"abcdef")), NONE,
     "InvalidParameterValue", "orderItem", ("at most 5 items", "has 6")),
    ("no items", order_spec(()), NONE, "MissingParameterValue", "orderItem", ("at least one",)),
    ("duplicate itemId", order_spec(product("a") + product("b")), NONE,
     "InvalidParameterValue", "itemId", ('"item0"',)),
    ("long reference", order_spec(reference="r" * 31), NONE, "InvalidParameterValue", "orderReference", ("30",)),
    ("long itemId", order_spec((ItemSpec("i" * 81, product_id="p", collection_id=DEMO),)), NONE,
     "InvalidParameterValue", "itemId", ("80",)),
    ("Final without ReplyTo", order_spec(), Notification(StatusNotification.FINAL, message_id="m"),
     "InvalidNotificationValue", "ws-address", ("Final", "ReplyTo")),
    ("All to anonymous", order_spec(),
     Notification(StatusNotification.ALL, "http://www.w3.org/2005/08/addressing/anonymous", "m"),
     "InvalidNotificationValue", "ws-address", ("All", "anonymous")),
    ("All without MessageID", order_spec(), Notification(StatusNotification.ALL, "http://client/cb"),
     "InvalidNotificationValue", "ws-address", ("MessageID",)),
]


@pytest.mark.parametrize("spec, notification, code, locator, words", [r[1:] for r in REJECTIONS],
                         ids=[r[0] for r in REJECTIONS])
@pytest_twisted.ensureDeferred
async def test_submit_rejections(redis: Redis, spec: OrderSpec, notification: Notification, code: str,
                                 locator: str, words: tuple[str, ...]) -> None:
    config = attrs.evolve(CONFIG, collections=COLLECTIONS + (
        CollectionConfig(id="urn:x:tasking", order_types=("TASKING_ORDER",)),))
    world = build(redis, config)
    error = await rejected(world.service.submit(ALICE, spec, notification))
    assert (error.code, error.locator) == (code, locator), error.text
    for word in words:
        assert word in error.text
    assert await world.store.search_ids(None, None, None, frozenset(), None, 10) == []


@pytest_twisted.ensureDeferred
async def test_active_item_limit(redis: Redis) -> None:
    world = build(redis)
    first = await world.service.submit(ALICE, order_spec(product("a", "b", "c", collection="urn:x:engine")), NONE)
    await world.service.submit(ALICE, order_spec(product("a", "b", "c", "d", collection="urn:x:engine")), NONE)
    error = await rejected(world.service.submit(ALICE, order_spec(product("a", "b", collection="urn:x:engine")),
                                                NONE))
    assert (error.code, error.locator) == ("InvalidParameterValue", "orderItem")
    assert "at most 8 items" in error.text and "you have 7" in error.text and "add 2" in error.text
    # Other users have their own allowance; finished items free it.
    await world.service.submit(BOB, order_spec(product("a", "b", collection="urn:x:engine")), NONE)
    await world.service.fail_item(first.order_id, "item0", "broken")
    await world.service.submit(ALICE, order_spec(product("a", "b", collection="urn:x:engine")), NONE)


@pytest_twisted.ensureDeferred
async def test_secret_collection_for_its_group(redis: Redis) -> None:
    world = build(redis)
    order = await world.service.submit(Account("eve", group="eo"), order_spec(product("p", collection="urn:x:secret")),
                                       NONE)
    assert order.items[0].spec.collection_id == "urn:x:secret"


def test_resolve_collection() -> None:
    assert resolve_collection("anything", (DEMO_COLLECTION,)) == DEMO
    collections = (CollectionConfig(id="urn:a"), CollectionConfig(id="urn:a:b"), CollectionConfig(id="urn:c"))
    assert resolve_collection("urn:a:b:product-1", collections) == "urn:a:b"
    assert resolve_collection("urn:a:x", collections) == "urn:a"
    assert resolve_collection("urn:d:x", collections) is None


@pytest_twisted.ensureDeferred
async def test_collection_resolved_and_stored(redis: Redis) -> None:
    world = build(redis)
    order = await world.service.submit(ALICE, order_spec(product("urn:x:engine:p7", collection=None)), NONE)
    assert order.items[0].spec.collection_id == "urn:x:engine"
    stored = await world.store.get(order.order_id)
    assert stored is not None and stored.spec.items[0].collection_id == "urn:x:engine"
    # The hook is replaceable.
    world.service.checker.resolve = lambda identifier: "urn:x:manual"
    order = await world.service.submit(ALICE, order_spec(product("whatever", collection=None)), NONE)
    assert order.items[0].spec.collection_id == "urn:x:manual"


@pytest_twisted.ensureDeferred
async def test_massive_order(redis: Redis) -> None:
    world = build(redis, attrs.evolve(CONFIG, orders=attrs.evolve(CONFIG.orders, max_active_items_per_user=100)))
    spec = order_spec(product(*(f"p{n}" for n in range(12)), collection="urn:x:engine"), reference="Massive order")
    error = await rejected(world.service.submit(ALICE, spec, NONE))  # urn:x:engine has no MASSIVE_ORDER
    assert error.code == "ProductOrderingNotSupported"
    spec = order_spec(product(*(f"p{n}" for n in range(12))), reference="Massive order")
    order = await world.service.submit(ALICE, spec, NONE)
    assert order.spec.order_type is OrderType.MASSIVE_ORDER
    assert order.spec.order_type.wire == "PRODUCT_ORDER" and order.spec.reference == "Massive order"
    assert [i.batch for i in order.items] == [0] * 5 + [1] * 5 + [2] * 2  # batches of max_items_per_order


# ------------------------------------------------------------------ moderation and processing


@pytest_twisted.ensureDeferred
async def test_auto_accepted_demo_order_is_completed_inline(redis: Redis) -> None:
    world = build(redis)
    notification = Notification(StatusNotification.ALL, "https://client/cb", "uuid:7", "1.2")
    order = await world.service.submit(ALICE, order_spec(delivery=ODA, reference="mine"), notification)
    assert order.created_at == START
    await world.process()
    stored = await world.service.get(ALICE, order.order_id)
    assert stored.status.status is S.Completed
    assert stored.status.additional_info == "All 2 items are ready"
    assert stored.status.changed_at == START
    assert [(i.status.status, i.completed_at) for i in stored.items] == [(S.Completed, START)] * 2
    assert stored.notification == notification
    assert await world.store.count_active_items("alice") == 0


@pytest_twisted.ensureDeferred
async def test_manual_moderation(redis: Redis) -> None:
    world = build(redis)
    order = await world.service.submit(ALICE, order_spec(product("p", collection="urn:x:manual")), NONE)
    assert order.status.status is S.Submitted
    assert [i.status.status for i in order.items] == [S.Submitted]
    # An order touching a manual collection waits, whatever its other collections say.
    mixed = await world.service.submit(ALICE, order_spec(product("p") + (
        ItemSpec("m", product_id="q", collection_id="urn:x:manual"),)), NONE)
    await world.process()
    assert (await world.service.get(ALICE, mixed.order_id)).status.status is S.Submitted
    # Not started before approval.
    assert not await world.service.start_item(order.order_id, "item0")
    world.clock.advance(60)
    approved = await world.service.approve(mixed.order_id)
    assert approved.status == StatusInfo(S.Accepted, "Accepted; waiting for processing", changed_at=START + 60)
    await world.process()
    done = await world.service.get(ALICE, mixed.order_id)
    # The dummy item completed; the other collection's processor failed the
    # first attempt at its item, which says why and waits for the next.
    assert [i.status.status for i in done.items] == [S.Completed, S.InProduction]
    assert "Attempt 1 failed: made elsewhere" in (done.items[1].status.additional_info or "")
    assert done.status == StatusInfo(S.InProduction, "In production: 1 of 2 items completed", changed_at=START + 60)
    error = await rejected(world.service.approve(mixed.order_id))
    assert (error.code, error.locator) == ("InvalidParameterValue", "orderId")
    rejected_order = await world.service.reject(order.order_id, "quota exceeded")
    assert rejected_order.status.status is S.Cancelled
    assert rejected_order.status.additional_info == "Rejected by an operator: quota exceeded"
    assert [i.status.status for i in rejected_order.items] == [S.Cancelled]
    assert (await rejected(world.service.approve("99"))).code == "InvalidOrderIdentifier"


@pytest_twisted.ensureDeferred
async def test_collection_moderation_overrides_the_default(redis: Redis) -> None:
    auto = attrs.evolve(COLLECTIONS[2], moderation="auto")
    config = attrs.evolve(CONFIG, orders=attrs.evolve(CONFIG.orders, moderation="manual"),
                          collections=(DEMO_COLLECTION, auto))
    world = build(redis, config)
    waiting = await world.service.submit(ALICE, order_spec(product("p")), NONE)
    accepted = await world.service.submit(ALICE, order_spec(product("p", collection=auto.id)), NONE)
    assert (waiting.status.status, accepted.status.status) == (S.Submitted, S.Accepted)


@pytest_twisted.ensureDeferred
async def test_subscription_and_tasking_stay_accepted(redis: Redis) -> None:
    world = build(redis)
    subscription = await world.service.submit(ALICE, order_spec(
        (ItemSpec("s", collection_id=DEMO, subscription=True),), order_type=OrderType.SUBSCRIPTION_ORDER), NONE)
    tasking = await world.service.submit(ALICE, order_spec(
        (ItemSpec("t", tasking_request_id="urn:sps:1", collection_id="urn:x:engine"),),
        order_type=OrderType.TASKING_ORDER), NONE)
    await world.process()
    assert (await world.service.get(ALICE, subscription.order_id)).status == StatusInfo(
        S.Accepted, "Subscription is active", changed_at=START)
    assert (await world.service.get(ALICE, tasking.order_id)).status.status is S.Accepted


@pytest_twisted.ensureDeferred
async def test_cascade(redis: Redis) -> None:
    world = build(redis)
    service = world.service
    order = await service.submit(ALICE, order_spec(product(*"abcde", collection="urn:x:engine")), NONE)
    oid = order.order_id

    async def status() -> tuple[OrderStatus, str | None, float]:
        info = (await service.get(ALICE, oid)).status
        return info.status, info.additional_info, info.changed_at

    assert await status() == (S.Accepted, "Accepted; waiting for processing", START)
    world.clock.advance(10)
    assert await service.start_item(oid, "item0")
    assert await status() == (S.InProduction, "In production: 0 of 5 items completed", START + 10)
    assert await service.start_item(oid, "item1", "attempt 2")  # nothing new to say: untouched
    assert await status() == (S.InProduction, "In production: 0 of 5 items completed", START + 10)
    world.clock.advance(10)
    for item in ("item0", "item1", "item2"):
        assert await service.complete_item(oid, item)
    assert await service.fail_item(oid, "item3", "disk full")
    assert await status() == (S.InProduction, "In production: 3 of 5 items completed, 1 failed", START + 20)
    world.clock.advance(10)
    assert await service.fail_item(oid, "item4", "bad input")
    assert await status() == (S.Completed, "3 of 5 items completed, 2 failed", START + 30)
    # Final items and final orders don't move any more.
    assert not await service.complete_item(oid, "item3")
    assert not await service.start_item(oid, "item0")
    assert await world.store.count_active_items("alice") == 0


@pytest_twisted.ensureDeferred
async def test_cascade_failures(redis: Redis) -> None:
    world = build(redis)
    service = world.service
    one = await service.submit(ALICE, order_spec(product("a", collection="urn:x:engine")), NONE)
    await service.fail_item(one.order_id, "item0", "no such product")
    assert (await service.get(ALICE, one.order_id)).status.additional_info == 'Item "item0" failed: no such product'
    two = await service.submit(ALICE, order_spec(product("a", "b", collection="urn:x:engine")), NONE)
    await service.fail_item(two.order_id, "item0", "timeout")
    await service.fail_item(two.order_id, "item1", "timeout again")
    info = (await service.get(ALICE, two.order_id)).status
    assert (info.status, info.additional_info) == (S.Failed,
                                                   'All 2 items failed; the last, item "item1": timeout again')
    # The dummy fails when told to: each attempt, then for good.
    broken = await service.submit(ALICE, order_spec(product("a", collection="urn:x:broken")), NONE)
    await world.process()
    for attempt, delay in ((1, 30), (2, 60)):
        item = (await service.get(ALICE, broken.order_id)).items[0].status
        assert item.status is S.InProduction
        assert item.additional_info == (f"Attempt {attempt} failed: the dummy processor failed on purpose "
                                        f"(fail_rate 1.0); trying again in {delay} s")
        world.clock.advance(delay - 1)
        await world.process()
        assert (await service.get(ALICE, broken.order_id)).items[0].status == item  # not yet
        world.clock.advance(1)
        await world.process()
    info = (await service.get(ALICE, broken.order_id)).status
    assert info.status is S.Failed and "fail_rate" in (info.additional_info or "")
    assert await world.engine.jobs.depth() == {"FAST_TRACK": 0, "STANDARD": 0, "delayed": 0}
    broken_stats = world.engine.stats["urn:x:broken"]
    assert (broken_stats.completed, broken_stats.retried, broken_stats.failed) == (0, 2, 1)


@pytest_twisted.ensureDeferred
async def test_cascade_under_concurrent_item_changes(redis: Redis) -> None:
    """Workers finishing items of one order at once: the last word is the right one."""
    world = build(redis, attrs.evolve(CONFIG, orders=OrdersConfig(max_items_per_order=200,
                                                                  max_active_items_per_user=1000)))
    for _ in range(5):
        order = await world.service.submit(ALICE, order_spec(product(*map(str, range(60)), collection="urn:x:engine")),
                                           NONE)
        finish = [world.service.complete_item(order.order_id, f"item{n}") for n in range(59)]
        finish.append(world.service.fail_item(order.order_id, "item59", "bad"))
        assert await defer.gatherResults([defer.ensureDeferred(f) for f in finish]) == [True] * 60
        info = (await world.service.get(ALICE, order.order_id)).status
        assert (info.status, info.additional_info) == (S.Completed, "59 of 60 items completed, 1 failed")


@pytest_twisted.ensureDeferred
async def test_batches_of_items_move_in_one_step(redis: Redis) -> None:
    world = build(redis)
    service = world.service
    oid = (await service.submit(ALICE, order_spec(product(*"abcd", collection="urn:x:engine")), NONE)).order_id
    world.clock.advance(5)
    assert await service.start_items(oid, ["item0", "item1", "item2"]) == {"item0": True, "item1": True,
                                                                          "item2": True}
    assert (await service.get(ALICE, oid)).status.additional_info == "In production: 0 of 4 items completed"
    assert await service.fail_items(oid, {"item2": "corrupt", "item3": ""}) == {"item2": True, "item3": True}
    assert await service.complete_items(oid, ["item0", "item1", "item2"]) == {"item0": True, "item1": True,
                                                                             "item2": False}
    order = await service.get(ALICE, oid)
    assert (order.status.status, order.status.additional_info) == (S.Completed, "2 of 4 items completed, 2 failed")
    assert [i.status.additional_info for i in order.items] == ["Completed", "Completed", "corrupt", "Failed"]
    assert await service.start_items(oid, []) == {}
    assert await world.store.count_active_items("alice") == 0


def test_derive_order_status() -> None:
    def progress(order_type: OrderType = OrderType.PRODUCT_ORDER, status: OrderStatus = S.InProduction,
                 failure: tuple[str, str] | None = None, **counts: int) -> OrderProgress:
        return OrderProgress("1", order_type, StatusInfo(status, "before"), sum(counts.values()),
                             {S(k): v for k, v in counts.items()}, failure)

    assert derive_order_status(progress(Accepted=3), 1.0) is None  # nothing started
    assert derive_order_status(progress(status=S.Cancelled, Completed=1), 1.0) is None  # final stays final
    assert derive_order_status(progress(OrderType.SUBSCRIPTION_ORDER, S.Accepted, Completed=1), 1.0) is None
    assert derive_order_status(progress(Completed=1, Downloaded=1), 9.0) == StatusInfo(
        S.Completed, "All 2 items are ready", changed_at=9.0)
    assert derive_order_status(progress(Cancelled=2), 1.0) == StatusInfo(
        S.Cancelled, "Every item was cancelled", changed_at=1.0)
    assert derive_order_status(progress(Accepted=1, Completed=1, Failed=1, Cancelled=1), 1.0) == StatusInfo(
        S.InProduction, "In production: 1 of 4 items completed, 1 failed, 1 cancelled", changed_at=1.0)
    assert derive_order_status(progress(failure=("x", ""), Failed=2, Cancelled=1), 1.0) == StatusInfo(
        S.Failed, '2 of 3 items failed, none completed; the last, item "x": no reason given', changed_at=1.0)
    derived = derive_order_status(progress(failure=("x", "y" * 5000), Failed=1), 1.0)
    assert derived is not None and len(derived.additional_info or "") == 4000


@pytest_twisted.ensureDeferred
async def test_the_dummy_delay_uses_the_clock(redis: Redis) -> None:
    world = build(redis)
    await world.start()
    order = await world.service.submit(ALICE, order_spec(product("a", collection="urn:x:slow")), NONE)
    await eventually(lambda: is_(order_status(world, order.order_id), S.InProduction))
    assert await item_status(world, order.order_id, 0) is S.InProduction
    world.clock.advance(5)
    await world.process()
    info = (await world.service.get(ALICE, order.order_id)).status
    assert (info.status, info.changed_at) == (S.Completed, START + 5)
    verifyObject(IDispatcher, world.engine)


# ------------------------------------------------------------------ ownership, search


@pytest_twisted.ensureDeferred
async def test_ownership(redis: Redis) -> None:
    world = build(redis)
    order = await world.service.submit(ALICE, order_spec(), NONE)
    bobs = await world.service.submit(BOB, order_spec(), NONE)
    assert (await world.service.get(ALICE, order.order_id)).owner == "alice"
    # Another user's order is refused exactly as one that does not exist:
    # same code, locator and words (only the id quoted differs).
    missing = "k" * len(order.order_id)
    for order_id in (order.order_id, missing):
        for call in (world.service.get(BOB, order_id),
                     world.service.ready_items(BOB, order_id),
                     world.service.describe_result_access(BOB, order_id, next_ready=True),
                     world.service.cancel(BOB, order_id, NONE)):
            error = await rejected(call)
            assert (error.code, error.locator) == ("InvalidOrderIdentifier", "orderId")
            assert error.text.replace(order_id, "ID") == 'you have no order "ID"'
    assert (await world.service.get(ALICE, order.order_id)).status.status is not S.Cancelled
    for unknown in ("99", "abc", "", "-1"):
        error = await rejected(world.service.get(ALICE, unknown))
        assert (error.code, error.locator) == ("InvalidOrderIdentifier", "orderId")
        assert f'"{unknown}"' in error.text
    assert [o.order_id for o in await world.service.search(ALICE)] == [order.order_id]
    assert [o.order_id for o in await world.service.search(BOB)] == [bobs.order_id]


@pytest_twisted.ensureDeferred
async def test_search(redis: Redis) -> None:
    world = build(redis)
    service = world.service
    first = await service.submit(ALICE, order_spec(product("a", collection="urn:x:engine"), reference="r1"), NONE)
    world.clock.advance(100)
    second = await service.submit(ALICE, order_spec(product("a", collection="urn:x:manual"), reference="r2"), NONE)
    world.clock.advance(100)
    third = await service.submit(ALICE, order_spec(reference="r1"), NONE)
    await service.complete_items(third.order_id, [i.spec.item_id for i in third.items])  # as the engine would

    names = {first.order_id: "1", second.order_id: "2", third.order_id: "3"}

    async def ids(**criteria: Any) -> list[str]:
        return [names[o.order_id] for o in await service.search(ALICE, **criteria)]

    assert await ids() == ["3", "2", "1"]
    assert await ids(last_update=START + 50) == ["3", "2"]
    assert await ids(last_update_end=START + 100) == ["2", "1"]
    assert await ids(statuses={S.Submitted, S.Completed}) == ["3", "2"]
    assert await ids(reference="r1") == ["3", "1"]
    assert await ids(reference="r1", statuses=frozenset({S.Accepted})) == ["1"]
    # An item change is an update of its order.
    world.clock.advance(100)
    await service.start_item(first.order_id, "item0")
    assert await ids(last_update=START + 250) == ["1"]
    # Fully loaded orders, items included.
    assert [len(o.items) for o in await service.search(ALICE)] == [1, 2, 1]


# ------------------------------------------------------------------ cancel


@pytest_twisted.ensureDeferred
async def test_cancel_product_order(redis: Redis) -> None:
    world = build(redis)
    service = world.service
    order = await service.submit(ALICE, order_spec(product("a", "b", "c", collection="urn:x:engine")), NONE)
    oid = order.order_id
    await service.start_item(oid, "item0")
    await service.complete_item(oid, "item0")
    await service.start_item(oid, "item1")
    world.clock.advance(30)
    callback = Notification(StatusNotification.FINAL, "http://client/cancelled", "uuid:c", "1.1")
    cancelled = await service.cancel(ALICE, oid, callback)
    assert cancelled.status == StatusInfo(S.Cancelled, "Cancelled at the user's request; 1 of 3 items had completed",
                                          changed_at=START + 30)
    assert [i.status.status for i in cancelled.items] == [S.Completed, S.Cancelled, S.Cancelled]
    assert cancelled.notification == attrs.evolve(callback, cancel=True)  # its call-backs answer the Cancel now
    assert await world.store.count_active_items("alice") == 0
    # The engine learns the item was cancelled when it tries to finish it.
    assert not await service.complete_item(oid, "item1")
    error = await rejected(service.cancel(ALICE, oid, NONE))
    assert (error.code, error.locator) == ("InvalidParameterValue", "orderId")
    assert error.text == f"order {oid} is already Cancelled"
    # Completed results stay downloadable.
    assert [r.item.spec.item_id for r in await service.ready_items(ALICE, oid)] == ["item0"]


@pytest_twisted.ensureDeferred
async def test_cancel_rules(redis: Redis) -> None:
    world = build(redis)
    service = world.service
    done = await service.submit(ALICE, order_spec(), NONE)
    await world.process()
    error = await rejected(service.cancel(ALICE, done.order_id, NONE))
    assert error.text == f"order {done.order_id} is already Completed"
    subscription = await service.submit(ALICE, order_spec(
        (ItemSpec("s", collection_id=DEMO, subscription=True),), order_type=OrderType.SUBSCRIPTION_ORDER), NONE)
    unsubscribed = await service.cancel(ALICE, subscription.order_id, NONE)
    assert unsubscribed.status.status is S.Cancelled
    assert unsubscribed.status.additional_info == "Unsubscribed at the user's request"
    assert unsubscribed.notification == NONE
    waiting = await service.submit(ALICE, order_spec(product("p", collection="urn:x:manual")), NONE)
    error = await rejected(service.cancel(ALICE, waiting.order_id,
                                          Notification(StatusNotification.ALL, None, "m")))
    assert error.code == "InvalidNotificationValue"
    assert (await service.cancel(ALICE, waiting.order_id, NONE)).status.status is S.Cancelled
    assert (await rejected(service.cancel(ALICE, "42", NONE))).code == "InvalidOrderIdentifier"


# ------------------------------------------------------------------ DescribeResultAccess


@pytest_twisted.ensureDeferred
async def test_ready_items(redis: Redis) -> None:
    world = build(redis)
    service = world.service
    order = await service.submit(ALICE, order_spec(product("a", "b", "c", collection="urn:x:engine")), NONE)
    oid = order.order_id

    async def ready(next_ready: bool) -> list[tuple[str, str, float]]:
        found = await (service.describe_result_access(ALICE, oid, next_ready=True) if next_ready
                       else service.ready_items(ALICE, oid))
        return [(r.item.spec.item_id, r.protocol, r.expires_at) for r in found]

    keep = 2 * DAY
    assert await ready(False) == [] and await ready(True) == []
    await service.complete_item(oid, "item0")
    world.clock.advance(10)
    await service.complete_item(oid, "item1")
    # No deliveryOptions: onlineDataAccess over the collection's first protocol.
    assert await ready(False) == [("item0", "ftp", START + keep), ("item1", "ftp", START + 10 + keep)]
    assert await ready(True) == [("item0", "ftp", START + keep), ("item1", "ftp", START + 10 + keep)]
    assert await ready(True) == []
    await service.complete_item(oid, "item2")  # same instant as the previous nextReady: still new
    assert [r[0] for r in await ready(True)] == ["item2"]
    assert [r[0] for r in await ready(False)] == ["item0", "item1", "item2"]
    # Expired results are not offered.
    world.clock.advance(keep - 10)
    assert [r[0] for r in await ready(False)] == ["item1", "item2"]
    world.clock.advance(10)
    assert await ready(False) == []


@pytest_twisted.ensureDeferred
async def test_ready_items_follow_the_delivery_choice(redis: Redis) -> None:
    # The pushed item's server: a closed loopback port, refused at once (no DNS, no wait).
    world = build(redis, attrs.evolve(CONFIG, notifications=NotificationsConfig(allowed_networks=("127.0.0.0/8",))))
    service = world.service
    http = DeliveryChoice(DeliveryMethod.ONLINE_DATA_ACCESS, "http")
    push = DeliveryChoice(DeliveryMethod.ONLINE_DATA_DELIVERY, "ftp")
    spec = order_spec(product("a", "b", delivery=None) + (ItemSpec("pushed", product_id="c", collection_id=DEMO,
                                                                   delivery=push),),
                      delivery=http, online_addresses=(OnlineAddress("ftp", "127.0.0.1:1"),))
    order = await service.submit(ALICE, spec, NONE)
    await world.process()
    ready = await service.ready_items(ALICE, order.order_id)
    assert all(isinstance(r, ReadyItem) for r in ready)
    assert [(r.item.spec.item_id, r.protocol) for r in ready] == [("item0", "http"), ("item1", "http")]


@pytest_twisted.ensureDeferred
async def test_cancel_stops_running_work(redis: Redis) -> None:
    world = build(redis)
    await world.start()
    order = await world.service.submit(ALICE, order_spec(product("a", "b", collection="urn:x:slow")), NONE)
    await eventually(lambda: is_(item_status(world, order.order_id, 0), S.InProduction))
    await world.service.cancel(ALICE, order.order_id, NONE)
    # The running work stops at once (the clock has not moved: the dummy's
    # delay is cut short) and its job leaves the queue.
    await world.engine.drain()
    assert await world.engine.jobs.depth() == {"FAST_TRACK": 0, "STANDARD": 0, "delayed": 0}
    results = result_directory(world.engine.results, "alice", order.order_id, "item0")
    world.clock.advance(5)
    await world.process()
    stored = await world.service.get(ALICE, order.order_id)
    assert stored.status.status is S.Cancelled
    assert [i.status.status for i in stored.items] == [S.Cancelled, S.Cancelled]
    assert not results.exists()


@pytest_twisted.ensureDeferred
async def test_each_part_of_the_core_works_alone_on_the_same_store(redis: Redis) -> None:
    """The parts split by caller share nothing but the store: each can be
    built alone, as a caller that needs only it would."""
    from oseod.core.downloads import DownloadRecords
    from oseod.core.moderation import Moderation
    from oseod.core.ordering import ClientOrders
    from oseod.core.production import ItemProgress
    from oseod.core.retention import Retention

    clock = task.Clock()
    clock.advance(START)
    store = OrderStore(redis)
    client, engine = ClientOrders(store, CONFIG, clock), ItemProgress(store, CONFIG, clock)
    order = await client.submit(ALICE, order_spec(product("p1", "p2", collection="urn:x:engine")), NONE)
    assert (await Moderation(store, CONFIG, clock).order(order.order_id)).status.status is S.Accepted
    assert await engine.start_items(order.order_id, ["item0", "item1"]) == {"item0": True, "item1": True}
    assert await engine.complete_items(order.order_id, ["item0", "item1"]) == {"item0": True, "item1": True}
    assert (await client.get(ALICE, order.order_id)).status.status is S.Completed
    assert await DownloadRecords(store, CONFIG, clock).record_download(order.order_id, "item0", "a.tif", ["a.tif"])
    assert (await client.get(ALICE, order.order_id)).items[0].status.status is S.Downloaded
    cleaned: list[str] = []

    async def clean(order: Order, item: Item) -> None:
        cleaned.append(item.spec.item_id)

    clock.advance(3 * 86400)  # past item_availability_days
    assert await Retention(store, CONFIG, clock).expire_results(clean) == 2
    assert sorted(cleaned) == ["item0", "item1"]


class WritesCounted(OrderStore):
    """The store, recording how many items each set_items_status changes."""

    def __init__(self, redis: Redis) -> None:
        super().__init__(redis)
        self.sizes: list[int] = []

    async def set_items_status(self, order_id: str, changes: Any, **kwargs: Any) -> list[bool]:
        self.sizes.append(len(changes))
        return await super().set_items_status(order_id, changes, **kwargs)


@pytest_twisted.ensureDeferred
async def test_the_engine_changes_a_large_batch_a_few_items_per_write(redis: Redis) -> None:
    # Redis runs one script at a time: 200 items in one held every other
    # client (a GetStatus) for tens of milliseconds.
    config = attrs.evolve(CONFIG, orders=OrdersConfig(max_items_per_order=200, max_active_items_per_user=200))
    store = WritesCounted(redis)
    progress = OrderingService(store, config, task.Clock())
    order = await progress.submit(ALICE, order_spec(product(*(f"p{n}" for n in range(70)),
                                                            collection="urn:x:engine")), NONE)
    ids = [item.spec.item_id for item in order.items]
    store.sizes.clear()
    started = await progress.start_items(order.order_id, ids)
    assert all(started.values()) and list(started) == ids
    assert store.sizes == [ITEMS_PER_WRITE, ITEMS_PER_WRITE, 70 - 2 * ITEMS_PER_WRITE]
    done = await progress.complete_items(order.order_id, ids)
    assert all(done.values())
    stored = await progress.get(ALICE, order.order_id)
    assert [item.status.status for item in stored.items] == [S.Completed] * 70
    assert stored.status.status is S.Completed
