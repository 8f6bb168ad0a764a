"""OperatorActions over a real Redis, a real engine and a Clock: what the
admin API and the console show and do."""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path
from typing import Any

import attrs
import pytest
import pytest_twisted
from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import reactor, task

from oseod.admin.actions import ActionRefused, Actor, OperatorActions, OrderQuery, Refusal, SystemActions
from oseod.auth.checkers import UserStoreChecker
from oseod.auth.htpasswd import PasswordFileChecker
from oseod.auth.passwords import hash_password
from oseod.config import DEMO_COLLECTION, AuthConfig, CollectionConfig, Config, LdapConfig, OrdersConfig
from oseod.core.accounts import AccountService
from oseod.core.ordering import OrderingService
from oseod.jobs.engine import BUILTINS, Engine
from oseod.model.orders import (
    Item,
    ItemSpec,
    Notification,
    Order,
    OrderSpec,
    OrderStatus,
    OrderType,
    StatusInfo,
)
from oseod.schedule.scheduler import PeriodicTask, Scheduler
from oseod.store import keys
from oseod.store.audit import AuditStore
from oseod.store.connection import Redis
from oseod.store.jobs import JobStore
from oseod.store.leader import LeaderLock, TaskRuns
from oseod.store.orders import OrderStore, Transfer
from oseod.store.outbox import CALLBACK, OutboxMessage, OutboxStore
from oseod.store.stats import StatsStore
from oseod.store.users import UserStore
from tests.parts import RESULTS
from tests.test_core_ordering import ElsewhereProcessor
from tests.pools import POOLS

S = OrderStatus
START = 1_700_000_000.0
DEMO = DEMO_COLLECTION.id
CONFIG = Config(
    orders=OrdersConfig(max_active_items_per_user=10_000),
    auth=AuthConfig(checkers=("redis", "file"), password_file="/nonexistent"),
    ldap=LdapConfig(service_password="directory-secret"),
    collections=(
        DEMO_COLLECTION,
        CollectionConfig(id="urn:x:manual", moderation="manual", processor="other"),
        CollectionConfig(id="urn:x:other", processor="other", processor_options={"api_token": "tok-123"},
                         order_types=("PRODUCT_ORDER", "SUBSCRIPTION_ORDER", "MASSIVE_ORDER")),
    ),
)
OPERATOR = Actor("olga", "console", "192.0.2.7")
TOKEN = Actor("admin-token", "api", "127.0.0.1")


@attrs.define
class World:
    actions: OperatorActions
    ordering: OrderingService
    orders: OrderStore
    users: UserStore
    engine: Engine
    outbox: OutboxStore
    scheduler: Scheduler
    clock: task.Clock
    redis: Redis
    files: list[Any]


def build(redis: Redis, config: Config = CONFIG, file_checker: PasswordFileChecker | None = None) -> World:
    clock = task.Clock()
    clock.advance(START)
    orders = OrderStore(redis)
    ordering = OrderingService(orders, config, clock)
    name = uuid.uuid4().hex
    engine = Engine(ordering, JobStore(redis), config, reactor, clock, results=RESULTS / name, consumer=name,
                    builtins={**BUILTINS, "other": ElsewhereProcessor}, threads=POOLS)
    ordering.dispatcher = engine
    users = UserStore(redis)
    runs = TaskRuns(redis)
    scheduler = Scheduler(LeaderLock(redis, "daemon-1"), clock, [PeriodicTask("tidy", 60.0, _nothing)], runs=runs)
    outbox = OutboxStore(redis)
    files: list[Any] = []
    actions = OperatorActions(
        config=config, clock=clock, ordering=ordering, orders=orders,
        accounts=AccountService(users, reactor, threads=POOLS), audit=AuditStore(redis), stats=StatsStore(redis),
        outbox=outbox,
        leader=scheduler.leader, task_runs=runs, task_names=["tidy", "never run"], processing=engine, redis=redis,
        file_accounts=file_checker.accounts if file_checker is not None else None)
    return World(actions, ordering, orders, users, engine, outbox, scheduler, clock, redis, files)


async def _nothing() -> None:
    pass


def stored_order(owner: str = "alice", *, at: float = START, status: OrderStatus = S.Accepted,
                 collection: str = DEMO, order_type: OrderType = OrderType.PRODUCT_ORDER,
                 reference: str | None = None, items: int = 1) -> Order:
    specs = tuple(ItemSpec(item_id=f"i{n}", product_id=f"p{n}", collection_id=collection) for n in range(items))
    return Order(order_id="", owner=owner, spec=OrderSpec(order_type, items=specs, reference=reference),
                 status=StatusInfo(status, "stored", changed_at=at), created_at=at, notification=Notification(),
                 items=tuple(Item(s, StatusInfo(status, changed_at=at)) for s in specs))


async def refused(call: Any, kind: Refusal) -> str:
    with pytest.raises(ActionRefused) as info:
        await call
    assert info.value.kind is kind, info.value.message
    return info.value.message


# ------------------------------------------------------------------ audit


@pytest_twisted.ensureDeferred
async def test_audit_records_who_did_what_newest_first_in_pages(redis: Redis) -> None:
    world = build(redis)
    for n in range(5):
        world.clock.advance(1)
        await world.actions.record(OPERATOR, "console.login", detail=f"#{n}")
    await world.actions.record(TOKEN, "order.approve", "42", "")
    first = await world.actions.audit(limit=4)
    assert [e.detail for e in first] == ["", "#4", "#3", "#2"]
    assert (first[0].actor, first[0].via, first[0].address, first[0].action, first[0].target) == (
        "admin-token", "api", "127.0.0.1", "order.approve", "42")
    assert first[1].at == START + 5 and first[1].actor == "olga" and first[1].address == "192.0.2.7"
    rest = await world.actions.audit(limit=4, before=first[-1].id)
    assert [e.detail for e in rest] == ["#1", "#0"]
    assert await world.actions.audit(limit=4, before=rest[-1].id) == ()
    assert "not an audit entry id" in await refused(world.actions.audit(before="yesterday"), Refusal.INVALID)
    await refused(world.actions.audit(limit=0), Refusal.INVALID)


# ------------------------------------------------------------------ moderation


async def submit(world: World, owner: str, collection: str, n: int = 1) -> Order:
    from oseod.auth.account import Account

    items = tuple(ItemSpec(item_id=f"item{i}", product_id=f"p{i}", collection_id=collection) for i in range(n))
    return await world.ordering.submit(Account(owner), OrderSpec(OrderType.PRODUCT_ORDER, items=items),
                                       Notification())


@pytest_twisted.ensureDeferred
async def test_moderation_queue_approve_reject_and_their_history(redis: Redis) -> None:
    world = build(redis)
    waiting = []
    for n in range(4):
        world.clock.advance(10)
        waiting.append((await submit(world, f"user{n}", "urn:x:manual")).order_id)
    await submit(world, "auto", DEMO)  # not waiting: automatic approval
    page = await world.actions.moderation_queue(limit=3)
    assert [o.order_id for o in page.orders] == waiting[:3] and page.next
    rest = await world.actions.moderation_queue(limit=3, after=page.next)
    assert [o.order_id for o in rest.orders] == waiting[3:] and rest.next is None

    world.clock.advance(5)
    approved = await world.actions.approve(OPERATOR, waiting[0])
    assert approved.status.status is S.Accepted
    outcome = await world.actions.approve_many(TOKEN, [waiting[1], waiting[0], "999999", "x"])
    assert outcome[waiting[1]] is None
    assert "not waiting for approval" in (outcome[waiting[0]] or "")
    assert "there is no order" in (outcome["999999"] or "") and "there is no order" in (outcome["x"] or "")
    await refused(world.actions.reject(OPERATOR, waiting[2], "  "), Refusal.INVALID)
    rejected = await world.actions.reject(OPERATOR, waiting[2], "over quota")
    assert (rejected.status.status, rejected.status.additional_info) == (S.Cancelled,
                                                                          "Rejected by an operator: over quota")
    await refused(world.actions.reject(OPERATOR, waiting[2], "again"), Refusal.CONFLICT)
    await refused(world.actions.approve(OPERATOR, "123456"), Refusal.NOT_FOUND)
    assert [o.order_id for o in (await world.actions.moderation_queue()).orders] == waiting[3:]

    history = (await world.actions.order_detail(waiting[0])).history
    assert [(h.status, h.by) for h in history] == [("Submitted", ""), ("Accepted", "olga")]
    assert history[0].at == START + 10 and history[1].at == START + 45
    history = (await world.actions.order_detail(waiting[2])).history
    assert [(h.status, h.by, h.info) for h in history][-1] == ("Cancelled", "olga", "Rejected by an operator: over quota")
    audit = await world.actions.audit()
    assert [(e.actor, e.action, e.target) for e in audit] == [
        ("olga", "order.reject", waiting[2]), ("admin-token", "order.approve", waiting[1]),
        ("olga", "order.approve", waiting[0])]
    assert audit[0].detail == "over quota"


# ------------------------------------------------------------------ cancel and retry


@pytest_twisted.ensureDeferred
async def test_operator_cancel_stops_any_users_unfinished_order(redis: Redis) -> None:
    world = build(redis)
    order = await submit(world, "alice", "urn:x:other", n=2)
    await world.ordering.start_item(order.order_id, "item0")
    cancelled = await world.actions.cancel(OPERATOR, order.order_id, "duplicate of 7")
    assert cancelled.status.status is S.Cancelled
    assert cancelled.status.additional_info == "Cancelled by an operator: duplicate of 7"
    assert {i.status.status for i in cancelled.items} == {S.Cancelled}
    assert "already Cancelled" in await refused(world.actions.cancel(OPERATOR, order.order_id), Refusal.CONFLICT)
    await refused(world.actions.cancel(OPERATOR, "77"), Refusal.NOT_FOUND)
    detail = await world.actions.order_detail(order.order_id)
    assert (detail.history[-1].status, detail.history[-1].by) == ("Cancelled", "olga")
    assert (await world.actions.audit(limit=1))[0].action == "order.cancel"
    assert await world.orders.count_active_items("alice") == 0


@pytest_twisted.ensureDeferred
async def test_retry_failed_items_requeues_them_and_reopens_the_order(redis: Redis) -> None:
    world = build(redis)
    jobs = JobStore(redis)
    await jobs.setup()
    order = await submit(world, "alice", "urn:x:other", n=3)
    oid = order.order_id
    assert "no failed item" in await refused(world.actions.retry_failed(OPERATOR, oid), Refusal.CONFLICT)
    await world.ordering.complete_item(oid, "item0")
    await world.ordering.fail_item(oid, "item1", "disk full")
    assert "still in work" in await refused(world.actions.retry_failed(OPERATOR, oid), Refusal.CONFLICT)
    await world.ordering.fail_item(oid, "item2", "disk full")
    done = await world.orders.get(oid)
    assert done is not None and done.status.status is S.Completed  # one of three made
    waiting_before = (await jobs.depth())["STANDARD"]
    world.clock.advance(60)
    retried = await world.actions.retry_failed(OPERATOR, oid)
    assert retried == ("item1", "item2")
    again = await world.orders.get(oid)
    assert again is not None
    assert again.status.status is S.InProduction and "2 failed items queued again" in (again.status.additional_info or "")
    assert [i.status.status for i in again.items] == [S.Completed, S.Accepted, S.Accepted]
    assert (await jobs.depth())["STANDARD"] == waiting_before + 1
    queued = await jobs.claim("test", 10)
    [requeued] = [job for job in queued if job.item_ids == ("item1", "item2")]
    # A first attempt again, which must not queue the order's next batch a second time.
    assert (requeued.attempt, requeued.chained) == (1, False)
    assert all(job.chained for job in queued if job is not requeued)
    assert await world.orders.count_active_items("alice") == 2
    detail = await world.actions.order_detail(oid)
    assert (detail.history[-1].status, detail.history[-1].by) == ("InProduction", "olga")
    # Made this time: the order completes, as any order does.
    await world.ordering.complete_items(oid, ["item1", "item2"])
    finished = await world.orders.get(oid)
    assert finished is not None and finished.status.status is S.Completed
    assert finished.status.additional_info == "All 3 items are ready"
    await refused(world.actions.retry_failed(OPERATOR, "4242"), Refusal.NOT_FOUND)


# ------------------------------------------------------------------ detail, logs, purge


@pytest_twisted.ensureDeferred
async def test_order_detail_shows_outbox_log_transfers_and_purge_forgets_them(redis: Redis) -> None:
    world = build(redis)
    order = await submit(world, "alice", "urn:x:other")
    oid = order.order_id
    message = OutboxMessage(CALLBACK, oid, 1, {})
    await redis.conn.rpush(keys.outbox_queue(CALLBACK, oid), '{"seq": 1}')
    await world.outbox.retry(message, START + 30, "connection refused", now=START + 1)
    await world.outbox.give_up(attrs.evolve(message, attempts=1), START + 31, "timed out")
    await redis.conn.rpush(keys.outbox_queue(CALLBACK, oid), '{"seq": 2}')
    await world.outbox.done(OutboxMessage(CALLBACK, oid, 2, {}), START + 40)
    await world.ordering.record_transfer(Transfer(START + 50, "item0", "a.tif", "alice", "ftp", "198.51.100.4",
                                                  512, False), oid)
    await world.ordering.record_transfer(Transfer(START + 60, "item0", "a.tif", "alice", "http", "198.51.100.4",
                                                  1024, True), oid)
    detail = await world.actions.order_detail(oid)
    assert [(e.channel, e.seq, e.outcome, e.detail) for e in detail.outbox] == [
        ("callback", 1, "retry", "connection refused"), ("callback", 1, "given up", "timed out"),
        ("callback", 2, "sent", "")]
    assert [(d.via, d.bytes, d.complete, d.address) for d in detail.downloads] == [
        ("ftp", 512, False, "198.51.100.4"), ("http", 1024, True, "198.51.100.4")]
    assert detail.callback_failure is not None and detail.callback_failure["error"] == "timed out"
    await refused(world.actions.order_detail("0"), Refusal.NOT_FOUND)

    await world.actions.cancel(OPERATOR, oid)
    assert await world.orders.purge(oid, {S.Cancelled})
    for key in (keys.order_history(oid), keys.order_downloads(oid), keys.outbox_log(CALLBACK, oid),
                keys.orders_in_collection("urn:x:other"), keys.orders_of_type("PRODUCT_ORDER")):
        assert not await redis.conn.exists(key), key
    assert (await StatsStore(redis).items_by_status())["Cancelled"] == 0
    # A transfer that ends after its order was purged leaves nothing behind.
    await world.ordering.record_transfer(Transfer(START + 70, "item0", "a.tif", "alice", "ftp", "", 1, True), oid)
    assert not await redis.conn.exists(keys.order_downloads(oid))


# ------------------------------------------------------------------ overview


@pytest_twisted.ensureDeferred
async def test_overview_counts_and_buckets(redis: Redis) -> None:
    world = build(redis)
    first = await submit(world, "alice", "urn:x:other", n=3)
    await submit(world, "bob", "urn:x:manual", n=2)
    world.clock.advance(3600)
    await world.ordering.complete_items(first.order_id, ["item0", "item1"])
    world.clock.advance(60)
    await world.ordering.fail_item(first.order_id, "item2", "no")
    await world.ordering.record_transfer(Transfer(world.clock.seconds(), "item0", "f", "alice", "http", "", 9, True),
                                         first.order_id)
    await world.ordering.record_transfer(Transfer(world.clock.seconds(), "item0", "f", "alice", "http", "", 3, False),
                                         first.order_id)
    await world.scheduler.tick()
    overview = await world.actions.overview()
    assert overview.orders_by_status["Completed"] == 1 and overview.orders_by_status["Submitted"] == 1
    assert overview.items_by_status["Completed"] == 2 and overview.items_by_status["Failed"] == 1
    assert overview.items_by_status["Submitted"] == 2 and overview.items_by_status["Accepted"] == 0
    assert overview.items_per_minute == pytest.approx(0.2)
    assert overview.downloads_last_hour == 1
    assert len(overview.hours) == 24 and overview.hours[-1].start <= world.clock.seconds()
    assert [(h.completed, h.failed, h.downloads) for h in overview.hours[-2:]] in (
        [(0, 0, 0), (2, 1, 1)], [(2, 0, 0), (0, 1, 1)])
    assert sum(h.completed for h in overview.hours) == 2
    assert overview.leader == "daemon-1"
    assert [(r.name, r.outcome) for r in overview.task_runs] == [("tidy", "ok"), ("never run", "never")]
    assert overview.task_runs[0].at == world.clock.seconds()
    assert overview.redis.up and overview.redis.version and overview.redis.used_memory
    assert overview.recent_orders[0].order_id == first.order_id
    assert set(overview.jobs) >= {"waiting", "delayed", "running"}
    assert overview.outbox_given_up == 0
    # Minutes and hours later, the recent rates are back to nothing.
    world.clock.advance(2 * 3600)
    later = await world.actions.overview()
    assert later.items_per_minute == 0 and later.downloads_last_hour == 0
    assert sum(h.completed for h in later.hours) == 2


# ------------------------------------------------------------------ users


@pytest_twisted.ensureDeferred
async def test_users_of_every_source_disabled_and_last_login(redis: Redis, tmp_path: Path) -> None:
    password_file = tmp_path / "passwords"
    password_file.write_text(f"fiona:{hash_password('fiona-password')}:eo\n")
    file_checker = PasswordFileChecker(str(password_file), reactor, 0.0, logins=UserStore(redis), threads=POOLS)
    file_checker.start()
    world = build(redis, file_checker=file_checker)
    user, warnings = await world.actions.add_user(OPERATOR, "hugo", "short", group="ops", email="h@example.org")
    assert (user.name, user.source, user.group, user.editable, user.disabled, warnings) == (
        "hugo", "redis", "ops", True, False, ("the password is shorter than 12 characters",))
    await refused(world.actions.add_user(OPERATOR, "hugo", "x"), Refusal.CONFLICT)
    await refused(world.actions.add_user(OPERATOR, "bad name", "x"), Refusal.INVALID)

    clock = task.Clock()
    clock.advance(START + 99)
    checker = UserStoreChecker(world.users, reactor, 60.0, clock, decoy=False, threads=POOLS)
    await checker.requestAvatarId(UsernamePassword(b"hugo", b"short"))
    changed = await world.actions.set_user(OPERATOR, "hugo", disabled=True)
    assert changed.disabled and changed.last_login == START + 99
    with pytest.raises(UnauthorizedLogin, match="disabled"):
        await checker.requestAvatarId(UsernamePassword(b"hugo", b"short"))  # the cached check too
    with pytest.raises(UnauthorizedLogin, match="wrong user name or password"):
        await checker.requestAvatarId(UsernamePassword(b"hugo", b"wrong"))
    await world.actions.set_user(OPERATOR, "hugo", disabled=False, admin=True)
    await checker.requestAvatarId(UsernamePassword(b"hugo", b"short"))

    await world.users.record_login("lars", "ldap", START + 5, group="eo", email="l@example.org")
    await file_checker.requestAvatarId(UsernamePassword(b"fiona", b"fiona-password"))
    listed = {(u.name, u.source): u for u in await world.actions.users()}
    assert set(listed) == {("hugo", "redis"), ("fiona", "file"), ("lars", "ldap")}
    assert listed[("hugo", "redis")].admin and listed[("fiona", "file")].group == "eo"
    assert listed[("fiona", "file")].last_login is not None and not listed[("fiona", "file")].editable
    assert (listed[("lars", "ldap")].group, listed[("lars", "ldap")].last_login) == ("eo", START + 5)
    assert (await world.actions.user("lars")).source == "ldap"
    assert "password file" in await refused(world.actions.set_user(OPERATOR, "fiona", group="x"), Refusal.CONFLICT)
    assert "LDAP" in await refused(world.actions.set_password(OPERATOR, "lars", "p"), Refusal.CONFLICT)
    await refused(world.actions.set_user(OPERATOR, "nobody", admin=True), Refusal.NOT_FOUND)
    await refused(world.actions.set_password(OPERATOR, "hugo", "line\nbreak"), Refusal.INVALID)
    assert await world.actions.set_password(OPERATOR, "hugo", "a-long-enough-password") == ()
    await world.actions.delete_user(OPERATOR, "hugo")
    await refused(world.actions.user("hugo"), Refusal.NOT_FOUND)
    await refused(world.actions.delete_user(OPERATOR, "hugo"), Refusal.NOT_FOUND)
    assert [(e.action, e.detail) for e in reversed(await world.actions.audit())] == [
        ("user.add", "group=ops admin=no email=h@example.org"), ("user.disable", "disabled=yes"),
        ("user.set", "admin=yes disabled=no"), ("user.password", ""), ("user.delete", "")]


# ------------------------------------------------------------------ configuration, subscriptions


def test_configuration_masks_secrets() -> None:
    config = attrs.evolve(CONFIG, server=attrs.evolve(CONFIG.server, redis="redis://:s3cret@db:6379/0"))
    shown = _with_config(config).configuration()
    assert shown["ldap"]["service_password"] == "••••"
    assert shown["server"]["redis"] == "redis://:••••@db:6379/0"
    assert shown["auth"]["password_file"] == "/nonexistent" and shown["auth"]["password_cache_seconds"] == 60.0
    other = next(c for c in shown["collections"] if c["id"] == "urn:x:other")
    assert other["processor_options"] == {"api_token": "••••"} and other["processor"] == "other"
    assert "MASSIVE_ORDER" in other["order_types"]
    assert "s3cret" not in repr(shown) and "directory-secret" not in repr(shown) and "tok-123" not in repr(shown)


def _with_config(config: Config) -> SystemActions:
    actions = SystemActions.__new__(SystemActions)
    actions._config = config  # noqa: SLF001 - configuration() reads nothing else
    return actions


@pytest_twisted.ensureDeferred
async def test_subscriptions_and_timeslots(redis: Redis) -> None:
    from oseod.auth.account import Account

    world = build(redis)
    spec = OrderSpec(OrderType.SUBSCRIPTION_ORDER, items=(
        ItemSpec(item_id="s", collection_id="urn:x:other", subscription=True),))
    subscription = await world.ordering.submit(Account("alice"), spec, Notification())
    other = await world.ordering.submit(Account("bob"), spec, Notification())
    await world.actions.cancel(OPERATOR, other.order_id)
    served = await world.actions.timeslot(TOKEN, "urn:x:other", "2026-01-02T03:04:05Z")
    assert served == (subscription.order_id,)
    views = await world.actions.subscriptions()
    assert [(v.order.order_id, v.collections, v.batches, v.last_timeslot) for v in views] == [
        (subscription.order_id, ("urn:x:other",), 1, "2026-01-02T03:04:05Z")]
    assert views[0].ends_at is not None and views[0].starts_at is None
    await refused(world.actions.timeslot(TOKEN, "urn:x:none", "2026-01-02T03:04:05Z"), Refusal.NOT_FOUND)
    await refused(world.actions.timeslot(TOKEN, "urn:x:other", "soon"), Refusal.INVALID)
    entry = (await world.actions.audit(limit=1))[0]
    assert (entry.action, entry.target, entry.detail) == ("subscription.timeslot", "urn:x:other",
                                                         "2026-01-02T03:04:05Z: 1 subscriptions served")


# ------------------------------------------------------------------ search


@pytest_twisted.ensureDeferred
async def test_search_orders_by_every_criterion_with_keyset_pages(redis: Redis) -> None:
    world = build(redis)
    made: list[Order] = []
    kinds = [
        dict(owner="alice", collection=DEMO, order_type=OrderType.PRODUCT_ORDER),
        dict(owner="bob", collection="urn:x:other", order_type=OrderType.SUBSCRIPTION_ORDER),
        dict(owner="alice", collection="urn:x:other", order_type=OrderType.MASSIVE_ORDER, reference="Massive order"),
        dict(owner="carol", collection=DEMO, order_type=OrderType.PRODUCT_ORDER, reference="ref-1",
             status=S.Submitted),
    ]
    for n in range(40):
        # Several orders share each instant: ties go by id.
        made.append(await world.orders.create(stored_order(at=START + n // 3, **kinds[n % 4])))  # type: ignore[arg-type]

    async def every(query: OrderQuery) -> list[str]:
        """All pages of the search, in order."""
        found: list[str] = []
        page = await world.actions.search_orders(query)
        found += [o.order_id for o in page.orders]
        while page.next:
            assert not page.truncated
            page = await world.actions.search_orders(attrs.evolve(query, after=page.next))
            found += [o.order_id for o in page.orders]
        return found

    def expected(keep: Any, oldest_first: bool = False) -> list[str]:
        chosen = [o for o in made if keep(o)]
        chosen.sort(key=lambda o: (o.status.changed_at, o.order_id.zfill(20)), reverse=not oldest_first)
        return [o.order_id for o in chosen]

    assert await every(OrderQuery(limit=7)) == expected(lambda o: True)
    assert await every(OrderQuery(limit=7, oldest_first=True)) == expected(lambda o: True, oldest_first=True)
    assert await every(OrderQuery(user="alice", limit=3)) == expected(lambda o: o.owner == "alice")
    assert await every(OrderQuery(collection="urn:x:other", limit=4)) == expected(
        lambda o: o.items[0].spec.collection_id == "urn:x:other")
    assert await every(OrderQuery(order_type="MASSIVE_ORDER", limit=2)) == expected(
        lambda o: o.spec.order_type is OrderType.MASSIVE_ORDER)
    assert await every(OrderQuery(order_type="PRODUCT_ORDER", collection=DEMO, limit=5,
                                  statuses=frozenset({S.Accepted}))) == expected(
        lambda o: o.spec.order_type is OrderType.PRODUCT_ORDER and o.status.status is S.Accepted)
    assert await every(OrderQuery(statuses=frozenset({S.Submitted, S.Accepted}), user="carol", limit=2)) == expected(
        lambda o: o.owner == "carol")
    assert await every(OrderQuery(reference="ref-1", oldest_first=True, limit=3)) == expected(
        lambda o: o.spec.reference == "ref-1", oldest_first=True)
    assert await every(OrderQuery(updated_from=START + 3, updated_to=START + 5, limit=4)) == expected(
        lambda o: START + 3 <= o.status.changed_at <= START + 5)
    assert await every(OrderQuery(collection="urn:x:none")) == []
    assert await every(OrderQuery(user="alice", collection="urn:x:other", order_type="MASSIVE_ORDER",
                                  oldest_first=True, limit=1)) == expected(
        lambda o: o.spec.order_type is OrderType.MASSIVE_ORDER, oldest_first=True)

    # Moving an order moves it in every index, to the front of the newest-first lists.
    world.clock.advance(1000)
    await world.actions.cancel(OPERATOR, made[1].order_id)
    front = await world.actions.search_orders(OrderQuery(collection="urn:x:other", limit=1))
    assert [o.order_id for o in front.orders] == [made[1].order_id]
    cancelled = await world.actions.search_orders(OrderQuery(statuses=frozenset({S.Cancelled}),
                                                             order_type="SUBSCRIPTION_ORDER"))
    assert [o.order_id for o in cancelled.orders] == [made[1].order_id] and cancelled.next is None

    await refused(world.actions.search_orders(OrderQuery(after="nonsense")), Refusal.INVALID)
    await refused(world.actions.search_orders(OrderQuery(order_type="BULK")), Refusal.INVALID)
    await refused(world.actions.search_orders(OrderQuery(limit=0)), Refusal.INVALID)
    await refused(world.actions.search_orders(OrderQuery(updated_from=5.0, updated_to=1.0)), Refusal.INVALID)


async def command_calls(redis: Redis) -> dict[str, int]:
    """Calls per command since the last CONFIG RESETSTAT (scripts' commands included)."""
    text = await redis.conn.execute_command("INFO", "commandstats")
    calls = {}
    for line in str(text).splitlines():
        if line.startswith("cmdstat_"):
            name, _, fields = line[len("cmdstat_"):].partition(":")
            calls[name] = int(dict(f.split("=") for f in fields.split(","))["calls"])
    return calls


@pytest_twisted.ensureDeferred
async def test_a_filtered_search_reads_the_smallest_index_and_stops_at_its_budget(redis: Redis) -> None:
    world = build(redis)
    # 3000 orders: 10 of collection C (5 Accepted); the others alternate
    # between A Accepted and B Failed, but for 3 of A Failed.
    for n in range(3000):
        if n % 300 == 0:
            collection, status = "urn:x:c", S.Accepted if n % 600 == 0 else S.Failed
        elif n % 2 == 0:
            collection, status = DEMO, S.Failed if n % 1000 == 2 else S.Accepted
        else:
            collection, status = "urn:x:b", S.Failed
        await world.orders.create(stored_order(f"u{n % 7}", at=START + n, collection=collection, status=status))
    await redis.conn.execute_command("CONFIG", "RESETSTAT")
    page = await world.actions.search_orders(OrderQuery(collection="urn:x:c", statuses=frozenset({S.Accepted})))
    assert len(page.orders) == 5 and page.next is None and not page.truncated
    calls = await command_calls(redis)
    # The collection's index (10 entries) is read; the ~1500 Accepted orders are only counted.
    assert calls.get("zscore", 0) <= 10
    assert calls.get("zrevrangebyscore", 0) == 1
    assert "scan" not in calls and "keys" not in calls

    # Two big criteria that share few orders: the budget bounds the work of
    # each page, the page says so, and the pages still add up to the answer.
    unbounded = await world.orders.find(collection=DEMO, statuses=frozenset({S.Failed}), limit=10, budget=0)
    assert len(unbounded.order_ids) == 3 and unbounded.next is None and not unbounded.truncated
    await redis.conn.execute_command("CONFIG", "RESETSTAT")
    found = await world.orders.find(collection=DEMO, statuses=frozenset({S.Failed}), limit=10, budget=500)
    assert found.truncated and found.next is not None and len(found.order_ids) < 3
    assert (await command_calls(redis)).get("zscore", 0) <= 500
    collected, pages = list(found.order_ids), 1
    while found.next is not None:
        found = await world.orders.find(collection=DEMO, statuses=frozenset({S.Failed}), limit=10, budget=500,
                                        after=found.next)
        collected += found.order_ids
        pages += 1
    assert collected == list(unbounded.order_ids) and 3 <= pages <= 5


# ------------------------------------------------------------------ orders of an earlier version


async def as_stored_before_the_indexes(world: World, order: Order) -> None:
    """Turn ``order`` back into what an earlier version stored: no
    collections field, in neither the type nor the collection indexes, its
    items not counted."""
    member = order.order_id.zfill(20)
    conn = world.redis.conn
    await conn.hdel(keys.order(order.order_id), "collections")
    await conn.zrem(keys.orders_of_type(order.spec.order_type.value), member)
    for collection in {i.spec.collection_id for i in order.items}:
        await conn.zrem(keys.orders_in_collection(collection or ""), member)
    for item in order.items:
        await conn.hincrby(keys.items_by_status(), item.status.status.value, -1)
    await conn.delete(keys.schema_version())


@pytest_twisted.ensureDeferred
async def test_orders_of_an_earlier_version_are_indexed_and_counted_once(redis: Redis) -> None:
    world = build(redis)
    # Ids 1-7, as an earlier version numbered orders, taking ids 32 at a time from the counter.
    numbered = OrderStore(redis, new_id=map(str, itertools.count(1)).__next__)
    old = [await numbered.create(stored_order(items=3, collection=DEMO if n % 2 else "urn:x:other"))
           for n in range(7)]
    await redis.conn.set(keys.order_sequence(), "32")
    for order in old:
        await as_stored_before_the_indexes(world, order)
    await world.ordering.fail_items(old[3].order_id, {f"i{n}": "gone" for n in range(3)})
    await world.orders.purge(old[3].order_id, {S.Failed})  # a gap in the ids
    new = await world.orders.create(stored_order(items=2))  # by this version
    stats = StatsStore(redis)
    assert (await stats.items_by_status())["Accepted"] == 2
    # An old order's items change before it is indexed: not counted (yet).
    await world.ordering.complete_item(old[0].order_id, "i0")
    assert (await stats.items_by_status())["Completed"] == 0

    assert await world.orders.index_older_orders(ids=3, calls=1) == (False, 3)  # ids 1-3
    # ids 4-18: ids were taken in blocks, so the sequence is past the last order
    assert await world.orders.index_older_orders(ids=3, calls=5) == (False, 3)
    assert await world.orders.index_older_orders() == (True, 0)
    assert await world.orders.index_older_orders() == (True, 0)  # done: one GET
    assert await redis.conn.get(keys.schema_version()) == "2"
    assert await stats.items_by_status() == {**{s.value: 0 for s in S}, "Accepted": 19, "Completed": 1}
    page = await world.actions.search_orders(OrderQuery(collection=DEMO, order_type="PRODUCT_ORDER"))
    assert {o.order_id for o in page.orders} == {old[n].order_id for n in (1, 5)} | {new.order_id}
    # From now on an old order counts like any other.
    await world.ordering.complete_item(old[1].order_id, "i0")
    assert (await stats.items_by_status())["Completed"] == 2


@pytest.mark.parametrize(("url", "shown"), [
    ("unix:///var/lib/oseod/redis.sock?db=2&password=s3cret", "unix:///var/lib/oseod/redis.sock?db=2&password=••••"),
    ("unix:///run/redis.sock?password=s3cret&db=1", "unix:///run/redis.sock?password=••••&db=1"),
    ("redis://:s3cret@db:6379/0", "redis://:••••@db:6379/0"),
    ("redis://oseod:s3cret@db/0", "redis://oseod:••••@db/0"),
    ("rediss://:s3cret@db.example.org:6380/0", "rediss://:••••@db.example.org:6380/0"),
    ("redis://:s3%40cr@t@db:6379/0", "redis://:••••@db:6379/0"),  # an "@" in it
    ("redis+sentinel://:s3cret@h1:26379,h2:26379,h3:26379/mymaster/0",
     "redis+sentinel://:••••@h1:26379,h2:26379,h3:26379/mymaster/0"),
    ("redis+sentinel://h1:26379,[::1]:26379/mymaster/0?sentinel_password=s3cret&db=1",
     "redis+sentinel://h1:26379,[::1]:26379/mymaster/0?sentinel_password=••••&db=1"),
    ("redis://db:6379/0", "redis://db:6379/0"),
    ("unix:///run/redis.sock?db=1", "unix:///run/redis.sock?db=1"),
])
def test_a_redis_url_password_is_masked_wherever_it_is(url: str, shown: str) -> None:
    """One function masks the configuration for the admin API (/admin/api/config)
    and the console's Configuration page."""
    config = attrs.evolve(CONFIG, server=attrs.evolve(CONFIG.server, redis=url))
    assert _with_config(config).configuration()["server"]["redis"] == shown
    assert "s3" not in shown
