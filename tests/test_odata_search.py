"""Pages of OData order lists on a real Redis: OrderingService.find_orders
and count_orders over the store's indexes, and oseod.odata.search.list_page
following its $skiptoken pages while orders change between them."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.internet import task

from oseod.auth.account import Account
from oseod.config import DEMO_COLLECTION, Config, OrdersConfig
from oseod.core.ordering import OrderingService
from oseod.model.errors import BadCursor
from oseod.model.orders import ItemSpec, Notification, Order, OrderSpec, OrderStatus, OrderType, Priority
from oseod.odata import edm
from oseod.odata.errors import ODataError
from oseod.odata.ids import order_uuid
from oseod.odata.query import ListQuery, parse_list_query
from oseod.odata.search import Page, list_orders, next_link_query
from oseod.odata.values import JOB_STATUS_OF, iso_time, odata_priority
from oseod.store.connection import Redis
from oseod.store.orders import OrderStore

S = OrderStatus
START = 1_780_000_000.0
CONFIG = Config(orders=OrdersConfig(max_active_items_per_user=10_000), collections=(DEMO_COLLECTION,))
ALICE, BOB = Account("alice"), Account("bob")
E = edm.PRODUCTION_ORDER


class World:
    def __init__(self, redis: Redis) -> None:
        self.clock = task.Clock()
        self.clock.advance(START)
        self.store = OrderStore(redis)
        self.service = OrderingService(self.store, CONFIG, self.clock)  # no dispatcher: nothing runs

    async def submit(self, account: Account = ALICE, name: str = "", fast: bool = False) -> Order:
        self.clock.advance(10)
        spec = OrderSpec(OrderType.PRODUCT_ORDER, items=(ItemSpec("1", product_id=f"p-{name}",
                                                                  collection_id=DEMO_COLLECTION.id),),
                         reference=name or None, priority=Priority.FAST_TRACK if fast else None)
        return await self.service.submit(account, spec, Notification())

    async def cancel(self, order: Order) -> None:
        self.clock.advance(10)
        await self.service.cancel(ALICE, order.order_id, Notification())

    async def page(self, q: ListQuery, budget: int = 10_000, account: Account = ALICE,
                   order_type: OrderType | None = None) -> Page:
        return await list_orders(self.service, account, q, render=render, budget=budget, order_type=order_type)

    async def refusal(self, q: ListQuery, budget: int = 10_000) -> ODataError:
        """The 400 a page of ``q`` gets (it must get one)."""
        with pytest.raises(ODataError) as info:
            await self.page(q, budget=budget)
        return info.value

    async def every_page(self, args: dict[str, str], *, page_size: int = 3, budget: int = 10_000,
                         between: Any = None) -> tuple[list[list[str]], list[int | None]]:
        """The Names on each page, following the tokens, and each page's count."""
        pages, counts = [], []
        token = None
        while True:
            q = parse_list_query({**args, **({"$skiptoken": token} if token else {})}, E, page_size=page_size)
            page = await self.page(q, budget)
            pages.append([r["Name"] for r in page.rows])
            counts.append(page.count)
            if page.next_token is None:
                return pages, counts
            token = page.next_token
            if between is not None:
                await between(len(pages))
            assert len(pages) < 100


def render(order: Order) -> dict[str, Any]:
    """The ProductionOrder row fields these tests filter on (as the views render them)."""
    return {"Id": order_uuid(order.order_id), "Name": order.spec.reference,
            "Status": JOB_STATUS_OF[order.status.status], "SubmissionDate": iso_time(order.created_at),
            "Priority": odata_priority(order.spec.priority)}


@pytest.fixture
def world(redis: Redis) -> World:
    return World(redis)


def flat(pages: list[list[str]]) -> list[str]:
    return [name for page in pages for name in page]


@pytest_twisted.ensureDeferred
async def test_find_orders_pages_oldest_update_first(world: World) -> None:
    mine = [await world.submit(name=f"a{n}") for n in range(7)]
    await world.submit(BOB, "b0")
    await world.cancel(mine[2])  # last updated now
    first = await world.service.find_orders(ALICE, limit=4)
    assert [o.spec.reference for o in first.orders] == ["a0", "a1", "a3", "a4"]
    assert len(first.cursors) == 4 and first.next is not None
    # a page may start after any of its orders
    rest = await world.service.find_orders(ALICE, after=first.cursors[1], limit=10)
    assert [o.spec.reference for o in rest.orders] == ["a3", "a4", "a5", "a6", "a2"] and rest.next is None
    queued = await world.service.find_orders(ALICE, statuses={S.Accepted}, limit=10,
                                             updated_from=mine[5].created_at)
    assert [o.spec.reference for o in queued.orders] == ["a5", "a6"]
    assert (await world.service.find_orders(ALICE, statuses=frozenset(), limit=10)).orders == ()
    with pytest.raises(BadCursor):
        await world.service.find_orders(ALICE, after="nonsense", limit=1)


@pytest_twisted.ensureDeferred
async def test_count_orders_from_the_indexes(world: World) -> None:
    mine = [await world.submit(name=f"a{n}") for n in range(5)]
    for n in range(3):
        await world.submit(BOB, f"b{n}")
    await world.cancel(mine[0])
    service = world.service
    assert await service.count_orders(ALICE) == 5
    assert await service.count_orders(ALICE, {S.Accepted}) == 4
    assert await service.count_orders(ALICE, {S.Cancelled, S.Failed}) == 1
    assert await service.count_orders(ALICE, frozenset()) == 0
    assert await service.count_orders(BOB) == 3
    # with a type: the owner's orders among everybody's of that type
    assert await service.count_orders(ALICE, None, OrderType.PRODUCT_ORDER) == 5
    assert await service.count_orders(ALICE, {S.Cancelled}, OrderType.PRODUCT_ORDER) == 1
    assert await service.count_orders(ALICE, None, OrderType.MASSIVE_ORDER) == 0
    # both ways of walking the intersection (the smaller side)
    assert await world.store.count("alice", {S.Cancelled}, "PRODUCT_ORDER") == 1
    assert await world.store.count("alice", None, "PRODUCT_ORDER") == 5
    assert await world.store.count("alice", None, "PRODUCT_ORDER", budget=2) is None


@pytest_twisted.ensureDeferred
async def test_pages_follow_tokens_with_index_counts(world: World) -> None:
    for n in range(8):
        await world.submit(name=f"a{n}", fast=n % 2 == 1)
    await world.submit(BOB, "b0")
    pages, counts = await world.every_page({"$filter": "Status eq 'queued'", "$count": "true"})
    assert pages == [["a0", "a1", "a2"], ["a3", "a4", "a5"], ["a6", "a7"]]
    assert counts == [8, 8, 8]
    # no empty last page when the rows end with a page
    pages, _ = await world.every_page({"$filter": "Status eq 'queued'"}, page_size=4)
    assert pages == [["a0", "a1", "a2", "a3"], ["a4", "a5", "a6", "a7"]]
    pages, _ = await world.every_page({"$filter": "Priority gt 50"}, page_size=2)
    assert pages == [["a1", "a3"], ["a5", "a7"]]
    # a filter the indexes cannot answer: rows checked, counted by reading them
    pages, counts = await world.every_page({"$filter": "Priority gt 50", "$count": "true"})
    assert flat(pages) == ["a1", "a3", "a5", "a7"] and set(counts) == {4}
    # $top over pages, $skip first
    pages, _ = await world.every_page({"$top": "5", "$skip": "2"})
    assert pages == [["a2", "a3", "a4"], ["a5", "a6"]]
    pages, _ = await world.every_page({"$top": "3"})
    assert pages == [["a0", "a1", "a2"]]
    pages, _ = await world.every_page({"$top": "0", "$count": "true"})
    assert pages == [[]]
    # nothing can match: no store call needed, count 0
    pages, counts = await world.every_page({"$filter": "Status eq 'queued' and Status eq 'failed'",
                                            "$count": "true"})
    assert pages == [[]] and counts == [0]


@pytest_twisted.ensureDeferred
async def test_a_small_budget_ends_pages_early_and_loses_nothing(world: World) -> None:
    for n in range(12):
        await world.submit(name=f"a{n}", fast=n in (1, 9, 10))
    pages, _ = await world.every_page({"$filter": "Priority gt 50"}, page_size=2, budget=4)
    assert flat(pages) == ["a1", "a9", "a10"]
    assert len(pages) > 2  # (short pages with a token: the budget ended them)
    # $skip beyond one page's budget is carried on in the token
    pages, _ = await world.every_page({"$filter": "Priority gt 50", "$skip": "2"}, page_size=2, budget=4)
    assert flat(pages) == ["a10"]
    # a count needing more than the budget is refused, with what to do
    q = parse_list_query({"$filter": "Priority gt 50", "$count": "true"}, E, page_size=2)
    refused = await world.refusal(q, budget=4)
    assert refused.target == "$count" and "narrow $filter" in refused.message


@pytest_twisted.ensureDeferred
async def test_tokens_stay_right_while_orders_change(world: World) -> None:
    orders = [await world.submit(name=f"a{n}") for n in range(9)]

    async def change(page_number: int) -> None:
        if page_number == 1:
            await world.cancel(orders[1])  # seen: listed again at its new place
            await world.cancel(orders[5])  # not seen yet: moves to the end, still listed
            await world.submit(name="new")
            await world.cancel(orders[4])
            await world.store.purge(orders[4].order_id, {S.Cancelled})  # gone: not listed

    pages, _ = await world.every_page({}, between=change)
    assert flat(pages) == ["a0", "a1", "a2", "a3", "a6", "a7", "a8", "a1", "a5", "new"]
    # filtered on status: the cancelled ones leave the list, none is missed
    orders = [await world.submit(name=f"c{n}") for n in range(6)]

    async def cancel_some(page_number: int) -> None:
        if page_number == 1:
            await world.cancel(orders[0])
            await world.cancel(orders[3])

    pages, _ = await world.every_page({"$filter": "Status eq 'queued' and startswith(Name,'c')"},
                                      between=cancel_some)
    assert flat(pages) == ["c0", "c1", "c2", "c4", "c5"]


@pytest_twisted.ensureDeferred
async def test_orderby_pages_by_keys(world: World) -> None:
    orders = [await world.submit(name=f"a{n}", fast=n in (2, 5)) for n in range(7)]
    pages, counts = await world.every_page({"$orderby": "Priority desc,SubmissionDate desc", "$count": "true"})
    assert pages == [["a5", "a2", "a6"], ["a4", "a3", "a1"], ["a0"]] and set(counts) == {7}

    async def change(page_number: int) -> None:
        if page_number == 1:
            await world.submit(name="new")  # newest: before the token's keys, not listed again
            await world.cancel(orders[4])  # a change does not move it in this order
            await world.cancel(orders[3])
            await world.store.purge(orders[3].order_id, {S.Cancelled})

    pages, _ = await world.every_page({"$orderby": "SubmissionDate desc"}, between=change)
    assert flat(pages) == ["a6", "a5", "a4", "a2", "a1", "a0"]
    pages, _ = await world.every_page({"$orderby": "Name", "$filter": "Status eq 'queued'", "$top": "4",
                                       "$skip": "1"})
    assert pages == [["a1", "a2", "a5"], ["a6"]]
    q = parse_list_query({"$orderby": "Name"}, E, page_size=3)
    assert (await world.refusal(q, budget=5)).target == "$orderby"


@pytest_twisted.ensureDeferred
async def test_the_newest_orders_page_reads_only_what_it_needs(world: World) -> None:
    """``$orderby=SubmissionDate desc``, the "latest orders" page, on more
    orders than the budget: the indexes are read newest update first and the
    walk ends once no unread order can come before the page's rows, so it is
    answered (a full sort would need every order: a 400). Orders updated
    after their submission (cancelled) are placed by submission all the same."""
    orders = [await world.submit(name=f"a{n:02d}", fast=n % 3 == 0) for n in range(40)]
    for n in (5, 20, 33):
        await world.cancel(orders[n])  # updated last, submitted long ago
    by_submission = [f"a{n:02d}" for n in reversed(range(40))]
    first = await world.page(parse_list_query({"$orderby": "SubmissionDate desc"}, E, page_size=4), budget=12)
    assert [r["Name"] for r in first.rows] == by_submission[:4] and first.next_token is not None
    # (each page walks from the newest again: deeper pages read more)
    pages, counts = await world.every_page({"$orderby": "SubmissionDate desc"}, page_size=4, budget=60)
    assert flat(pages) == by_submission and set(counts) == {None}
    assert all(len(p) == 4 for p in pages)
    # with a filter the indexes cannot answer, and a $top
    pages, _ = await world.every_page({"$orderby": "SubmissionDate desc", "$filter": "Priority gt 50",
                                       "$top": "5"}, page_size=2, budget=30)
    assert flat(pages) == [f"a{n:02d}" for n in (39, 36, 33, 30, 27)]
    # a sort the indexes cannot bound still needs every order: refused past the budget
    q = parse_list_query({"$orderby": "SubmissionDate asc"}, E, page_size=4)
    assert (await world.refusal(q, budget=12)).target == "$orderby"


@pytest_twisted.ensureDeferred
async def test_ids_are_read_directly(world: World) -> None:
    a = await world.submit(name="a")
    b = await world.submit(name="b")
    bobs = await world.submit(BOB, "bob's")
    for n in range(5):
        await world.submit(name=f"x{n}")
    q = parse_list_query({"$filter": f"Id eq {order_uuid(a.order_id)} or Id eq '{b.order_id}' "
                                     f"or Id eq {order_uuid(bobs.order_id)}", "$count": "true"}, E, page_size=10)
    page = await world.page(q, budget=1)  # (no scan: the budget does not matter)
    assert sorted(r["Name"] for r in page.rows) == ["a", "b"] and page.count == 2 and page.next_token is None
    q = parse_list_query({"$filter": f"Id eq {order_uuid(a.order_id)} and Status eq 'failed'"}, E, page_size=10)
    assert (await world.page(q)).rows == []


@pytest_twisted.ensureDeferred
async def test_bad_tokens_are_400(world: World) -> None:
    for n in range(4):
        await world.submit(name=f"a{n}")
    first = await world.page(parse_list_query({"$filter": "Priority eq 50"}, E, page_size=2))
    assert first.next_token is not None
    for args in ({"$skiptoken": "x"}, {"$skiptoken": "!!!"},
                 {"$filter": "Priority eq 51", "$skiptoken": first.next_token},  # another list's
                 {"$filter": "Priority eq 50", "$orderby": "Name", "$skiptoken": first.next_token}):
        refused = await world.refusal(parse_list_query(args, E, page_size=2))
        assert refused.target == "$skiptoken" and refused.http_status == 400
    # a token whose store cursor was tampered with
    import base64

    import orjson

    data = orjson.loads(base64.urlsafe_b64decode(first.next_token + "=" * (-len(first.next_token) % 4)))
    data["c"] = "1~bogus"
    forged = base64.urlsafe_b64encode(orjson.dumps(data)).decode()
    refused = await world.refusal(parse_list_query({"$filter": "Priority eq 50", "$skiptoken": forged}, E,
                                                   page_size=2))
    assert refused.target == "$skiptoken"


def test_next_link_query() -> None:
    link = next_link_query({"$filter": "Status eq 'queued'", "$top": "5", "$skip": "1", "$skiptoken": "old",
                            "$select": "Id,Name"}, "TOKEN")
    assert "$skip=" not in link and "$top" not in link and "old" not in link
    assert link.endswith("$skiptoken=TOKEN") and "$filter=Status+eq+'queued'" in link
    assert "$select=Id,Name" in link


@pytest_twisted.ensureDeferred
async def test_type_limited_lists(world: World) -> None:
    for n in range(3):
        await world.submit(name=f"a{n}")
    q = parse_list_query({"$count": "true"}, edm.BATCH_ORDER, page_size=10)
    page = await world.page(q, order_type=OrderType.MASSIVE_ORDER)
    assert page.rows == [] and page.count == 0
    page = await world.page(parse_list_query({"$count": "true"}, E, page_size=10), order_type=OrderType.PRODUCT_ORDER)
    assert len(page.rows) == 3 and page.count == 3


