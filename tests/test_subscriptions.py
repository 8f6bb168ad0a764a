"""Subscriptions: a batch per timeslot of their collection (once, unless
forced), cancelled ones left out, Terminated at their end."""

from __future__ import annotations

import attrs
import pytest
import pytest_twisted

from oseod.config import DEMO_COLLECTION, CollectionConfig, Config, OrdersConfig
from oseod.core.ordering import SUBSCRIPTION_DAYS
from oseod.model.errors import RequestRejected
from oseod.model.orders import ItemSpec, Notification, OptionValue, OrderSpec, OrderStatus, OrderType
from oseod.store.connection import Redis
from tests.test_jobs_engine import ALICE, daemon

S = OrderStatus
DAY = 86400.0
OTHER = CollectionConfig(id="urn:x:other", processor="dummy", order_types=("SUBSCRIPTION_ORDER",))
CONFIG = attrs.evolve(Config(), orders=OrdersConfig(max_active_items_per_user=100),
                      collections=(DEMO_COLLECTION, OTHER))


def subscription(*collections: str) -> OrderSpec:
    return OrderSpec(OrderType.SUBSCRIPTION_ORDER, items=tuple(
        ItemSpec(item_id=f"s{n}", collection_id=c, subscription=True) for n, c in enumerate(collections)))


@pytest_twisted.ensureDeferred
async def test_each_timeslot_makes_a_batch_for_each_active_subscription(redis: Redis) -> None:
    d = daemon(redis, config=CONFIG)
    d.clock.advance(1_700_000_000.0)
    await d.engine.start()
    one = await d.service.submit(ALICE, subscription(DEMO_COLLECTION.id), Notification())
    two = await d.service.submit(ALICE, subscription(DEMO_COLLECTION.id, OTHER.id), Notification())
    gone = await d.service.submit(ALICE, subscription(DEMO_COLLECTION.id), Notification())
    await d.service.cancel(ALICE, gone.order_id, Notification())
    assert (await d.service.get(ALICE, one.order_id)).status.additional_info == "Subscription is active"

    served = await d.service.timeslot(DEMO_COLLECTION.id, "2026-11-25T12:00:00Z")
    assert sorted(served) == sorted([one.order_id, two.order_id])
    assert await d.service.timeslot(DEMO_COLLECTION.id, "2026-11-25T12:00:00+00:00") == []  # once per timeslot
    await d.engine.drain()
    order = await d.service.get(ALICE, two.order_id)
    assert [(i.spec.item_id, i.status.status, i.batch) for i in order.items] == [
        ("s0", S.Accepted, 0), ("s1", S.Accepted, 0), ("s0@2026-11-25T12:00:00Z", S.Completed, 1)]
    assert order.status.status is S.Accepted  # a standing order: its items come and go
    ready = await d.service.describe_result_access(ALICE, two.order_id, next_ready=True)
    assert [r.item.spec.item_id for r in ready] == ["s0@2026-11-25T12:00:00Z"]

    forced = await d.service.timeslot(DEMO_COLLECTION.id, "2026-11-25T12:00:00Z", force=True)
    assert sorted(forced) == sorted([one.order_id, two.order_id])
    await d.engine.drain()
    ids = [i.spec.item_id for i in (await d.service.get(ALICE, one.order_id)).items]
    assert ids == ["s0", "s0@2026-11-25T12:00:00Z", "s0@2026-11-25T12:00:00Z#2"]
    assert [i.spec.item_id for i in (await d.service.get(ALICE, gone.order_id)).items] == ["s0"]
    await d.engine.stop()


@pytest_twisted.ensureDeferred
async def test_bad_timeslots_are_refused(redis: Redis) -> None:
    d = daemon(redis, config=CONFIG)
    for collection, timestamp, code in (("urn:x:none", "2026-01-01T00:00:00Z", "UnsupportedCollection"),
                                        (DEMO_COLLECTION.id, "yesterday", "InvalidParameterValue")):
        try:
            await d.service.timeslot(collection, timestamp)
        except RequestRejected as e:
            assert e.code == code
        else:
            raise AssertionError("accepted")


@pytest_twisted.ensureDeferred
async def test_subscriptions_end_after_a_year(redis: Redis) -> None:
    d = daemon(redis, config=CONFIG)
    d.clock.advance(1_700_000_000.0)
    order = await d.service.submit(ALICE, subscription(DEMO_COLLECTION.id), Notification())
    d.clock.advance(SUBSCRIPTION_DAYS * DAY - 1)
    assert await d.service.terminate_subscriptions() == 0
    d.clock.advance(1)
    assert await d.service.terminate_subscriptions() == 1
    info = (await d.service.get(ALICE, order.order_id)).status
    assert info.status is S.Terminated and info.additional_info == "Subscription ended on 2024-11-13T22:13:20Z"
    assert await d.service.timeslot(DEMO_COLLECTION.id, "2026-01-01T00:00:00Z") == []
    assert await d.service.terminate_subscriptions() == 0


def dated(text: str) -> OrderSpec:
    return attrs.evolve(subscription(DEMO_COLLECTION.id), options=(OptionValue("DateRange", text),))


@pytest_twisted.ensureDeferred
async def test_a_date_range_bounds_the_subscription(redis: Redis) -> None:
    d = daemon(redis, config=CONFIG)
    d.clock.advance(1_700_000_000.0)  # 2023-11-14
    order = await d.service.submit(ALICE, dated("2024-01-01T00:00:00Z/2024-02-01T00:00:00Z"), Notification())
    assert await d.service.timeslot(DEMO_COLLECTION.id, "2023-12-31T00:00:00Z") == []  # before it starts
    assert await d.service.timeslot(DEMO_COLLECTION.id, "2024-01-15T00:00:00Z") == [order.order_id]
    d.clock.advance(86400.0 * 79)  # 2024-02-01
    assert await d.service.terminate_subscriptions() == 1
    for bad, why in (("2024-01-01", "is not START/END"), ("2024-02-01T00:00:00Z/2024-01-01T00:00:00Z", "ends before"),
                     ("soon/later", "is not START/END")):
        with pytest.raises(RequestRejected) as refused:
            await d.service.submit(ALICE, dated(bad), Notification())
        assert refused.value.locator == "option" and why in refused.value.text
    product = OrderSpec(OrderType.PRODUCT_ORDER, options=(OptionValue("DateRange", "2024-01-01/2024-02-01"),),
                        items=(ItemSpec("p", product_id="x", collection_id=DEMO_COLLECTION.id),))
    with pytest.raises(RequestRejected) as refused:
        await d.service.submit(ALICE, product, Notification())
    assert "is for subscriptions" in refused.value.text
