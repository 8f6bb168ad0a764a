"""Nothing acknowledged is lost, nothing done twice (issue 14): WAIT after
the writes a client is told of ([redis] min_replicas), a Submit WAIT found
unreplicated taken back whole, and Submit made idempotent by wsa:MessageID.

Against real redis-servers: a primary with a replica (tests/replicated.py),
a primary alone (no replica: every WAIT falls short), the shared one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import attrs
import pytest
import pytest_twisted
from twisted.internet import defer, task

from oseod.auth.account import Account
from oseod.config import DEMO_COLLECTION, Config, OrdersConfig
from oseod.core.ordering import OrderingService
from oseod.model.orders import ItemSpec, Notification, OrderSpec, OrderStatus, OrderType
from oseod.store import keys
from oseod.store.connection import Redis, RedisAddress, RedisUnavailable, ReplicationShortfall
from oseod.store.jobs import Job
from oseod.store.orders import MESSAGE_SECONDS, OrderStore, Resubmitted
from oseod.store.users import UserRecord, UserStore
from tests.polling import eventually
from tests.redis_process import RedisProcess
from tests.replicated import Replicated, replicated
from tests.test_store_orders import make_order

pytestmark = pytest.mark.slow  # starts redis-servers of its own

SET = "return redis.call('SET', KEYS[1], ARGV[1])"
START = 1_700_000_000.0


@pytest.fixture
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicated]:
    yield from replicated(tmp_path_factory.mktemp("pair"))


async def connected(address: RedisAddress, **kwargs: float) -> Redis:
    handle = Redis(address, **kwargs)  # type: ignore[arg-type]
    await handle.connect()
    return handle


@pytest_twisted.async_yield_fixture
async def alone(redis_process: RedisProcess) -> AsyncIterator[Redis]:
    """A handle that asks for one replica of a server that has none."""
    handle = await connected(redis_process.address, min_replicas=1, wait_timeout=0.05)
    yield handle
    await handle.close()


# ------------------------------------------------------------------ WAIT


@pytest_twisted.ensureDeferred
async def test_an_acknowledged_write_is_on_the_replica_before_the_answer(pair: Replicated) -> None:
    redis = await connected(pair.address, min_replicas=1, wait_timeout=5.0)
    try:
        before = pair.wait_count()
        assert await redis.conn.eval(SET, ["k"], ["v"], acknowledged=True) == "OK"
        assert pair.wait_count() == before + 1
        assert pair.replica.command("GET", "k", password=None).strip() == "v"
        # Writes nobody is told of, and every other command, send no WAIT.
        await redis.conn.eval(SET, ["k"], ["w"])
        await redis.conn.set("k2", "x")
        assert pair.wait_count() == before + 1
    finally:
        await redis.close()


@pytest_twisted.ensureDeferred
async def test_without_min_replicas_no_wait_is_sent(pair: Replicated) -> None:
    redis = await connected(pair.address)
    try:
        before = pair.wait_count()
        assert await redis.conn.eval(SET, ["k"], ["v"], acknowledged=True) == "OK"
        assert pair.wait_count() == before
    finally:
        await redis.close()


@pytest_twisted.ensureDeferred
async def test_a_frozen_replica_makes_a_retryable_shortfall(pair: Replicated) -> None:
    redis = await connected(pair.address, min_replicas=1, wait_timeout=0.1)
    try:
        await redis.conn.set("k", "v")  # (the acknowledged writes below may be sent after the reads)
        pair.freeze_replica()
        waiting = [redis.conn.eval(SET, ["k"], ["v"], acknowledged=True) for _ in range(8)]
        # Reads meanwhile are neither held up behind a WAIT nor lost with the connections dropped.
        reads = await defer.gatherResults([redis.conn.get("k") for _ in range(20)])
        assert set(reads) == {"v"}
        with pytest.raises(ReplicationShortfall) as raised:
            await waiting[0]
        for other in waiting[1:]:
            with pytest.raises(RedisUnavailable):  # a shortfall, or lost with a dropped connection
                await other
        assert isinstance(raised.value, RedisUnavailable)  # the transports answer 503
        assert raised.value.reply == "OK" and raised.value.replicas == 0
        pair.thaw_replica()

        async def acknowledged() -> bool:
            try:
                return bool(await redis.conn.eval(SET, ["k"], ["w"], acknowledged=True) == "OK")
            except RedisUnavailable:  # until the pool has made its dropped connections again
                return False

        await eventually(acknowledged, 20, "an acknowledged write once the replica is back")
    finally:
        pair.thaw_replica()
        await redis.close()


@pytest_twisted.ensureDeferred
async def test_a_script_the_server_forgot_is_sent_again_with_its_wait(pair: Replicated) -> None:
    redis = await connected(pair.address, min_replicas=1, wait_timeout=5.0)
    try:
        await redis.conn.eval(SET, ["k"], ["v"], acknowledged=True)
        await redis.conn.execute_command("SCRIPT", "FLUSH")
        before = pair.wait_count()
        assert await redis.conn.eval(SET, ["k"], ["w"], acknowledged=True) == "OK"
        assert pair.wait_count() == before + 2  # with the EVALSHA refused, then with the EVAL
        assert pair.replica.command("GET", "k", password=None).strip() == "w"
        # Many at once (after a failover, every request meets NOSCRIPT): each is sent again.
        await redis.conn.execute_command("SCRIPT", "FLUSH")
        answers = await defer.gatherResults(
            [redis.conn.eval(SET, [f"k{n}"], ["x"], acknowledged=True) for n in range(16)])
        assert answers == ["OK"] * 16
    finally:
        await redis.close()


@pytest_twisted.ensureDeferred
async def test_a_script_error_is_raised_as_without_wait(alone: Redis) -> None:
    with pytest.raises(Exception, match="boom"):
        await alone.conn.eval("return redis.error_reply('boom')", [], [], acknowledged=True)
    assert await alone.conn.ping() == "PONG"  # the WAIT's reply did not go to the next command


# ------------------------------------------------------------------ Submit not replicated


def fixed_ids(*ids: str) -> Callable[[], str]:
    return iter(ids).__next__


@pytest_twisted.ensureDeferred
async def test_a_submit_not_replicated_leaves_no_order_behind(alone: Redis) -> None:
    store = OrderStore(alone, new_id=fixed_ids("abcdefghjkmnpq"), mail=True)
    before = await alone.conn.hgetall(keys.items_by_status())
    with pytest.raises(ReplicationShortfall):
        await store.create(make_order(), max_active_items=10, message_id="urn:uuid:1", acknowledged=True,
                           jobs=lambda order_id: [_job(order_id)])
    conn = alone.conn
    assert await store.get("abcdefghjkmnpq") is None
    assert await conn.keys("oseod:order:*") == []
    assert await store.search("alice", None, None, frozenset(), None, 10) == []
    assert await store.search(None, None, None, frozenset(), None, 10) == []
    for status in OrderStatus:
        assert await conn.zcard(keys.orders_in_status("alice", status.value)) == 0
    assert int(await conn.get(keys.active_items("alice")) or 0) == 0
    counts = await conn.hgetall(keys.items_by_status())
    assert {k: int(v) for k, v in counts.items() if int(v)} == {k: int(v) for k, v in before.items() if int(v)}
    assert await conn.execute_command("XLEN", keys.job_stream("STANDARD")) == 0  # nothing for the engine
    assert await conn.zrange(keys.outbox_due(), 0, -1) == []  # nor for the e-mail channel
    assert await conn.keys("oseod:submitted:*") == []  # a retry with the same MessageID makes the order


def _job(order_id: str) -> Job:
    return Job(order_id, ("i0", "i1"))


@pytest_twisted.ensureDeferred
async def test_a_cancel_not_replicated_is_a_shortfall(redis_process: RedisProcess, alone: Redis) -> None:
    plain = await connected(redis_process.address)
    try:
        created = await OrderStore(plain).create(make_order())
        service = OrderingService(OrderStore(alone), Config(), task.Clock())
        with pytest.raises(ReplicationShortfall):
            await service.cancel(Account("alice"), created.order_id, Notification())
    finally:
        await plain.close()


# ------------------------------------------------------------------ the core's writes wait


def demo_spec() -> OrderSpec:
    return OrderSpec(OrderType.PRODUCT_ORDER, items=(
        ItemSpec(item_id="a", product_id="p1", collection_id=DEMO_COLLECTION.id),
        ItemSpec(item_id="b", product_id="p2", collection_id=DEMO_COLLECTION.id)))


@pytest_twisted.ensureDeferred
async def test_submit_and_cancel_wait_for_the_replica(pair: Replicated) -> None:
    redis = await connected(pair.address, min_replicas=1, wait_timeout=5.0)
    try:
        clock = task.Clock()
        clock.advance(START)
        service = OrderingService(OrderStore(redis), Config(), clock)
        alice = Account("alice")
        before = pair.wait_count()
        order = await service.submit(alice, demo_spec(), Notification())
        assert pair.wait_count() == before + 1
        assert pair.replica.command("HGET", keys.order(order.order_id), "owner", password=None).strip() == "alice"
        await service.cancel(alice, order.order_id, Notification())
        assert pair.wait_count() == before + 3  # the order's status, then its items'
        assert pair.replica.command("HGET", keys.order(order.order_id), "status",
                                    password=None).strip() == "Cancelled"
    finally:
        await redis.close()


@pytest_twisted.ensureDeferred
async def test_operator_decisions_and_user_changes_wait_for_the_replica(pair: Replicated) -> None:
    redis = await connected(pair.address, min_replicas=1, wait_timeout=5.0)
    try:
        manual = attrs.evolve(Config(), orders=OrdersConfig(moderation="manual"))
        service = OrderingService(OrderStore(redis), manual, task.Clock())
        alice = Account("alice")
        waiting = [await service.submit(alice, demo_spec(), Notification()) for _ in range(2)]
        before = pair.wait_count()
        await service.approve(waiting[0].order_id, by="op")
        assert pair.wait_count() == before + 2  # the order, then its items
        await service.reject(waiting[1].order_id, "no", by="op")
        assert pair.wait_count() == before + 4
        users = UserStore(redis)
        await users.create(UserRecord("carol", "hash"))
        await users.update("carol", group="eo")
        await users.delete("carol")
        assert pair.wait_count() == before + 7
    finally:
        await redis.close()


# ------------------------------------------------------------------ wsa:MessageID


@pytest_twisted.ensureDeferred
async def test_the_same_message_id_makes_one_order(redis: Redis) -> None:
    store = OrderStore(redis)
    first = await store.create(make_order(), message_id="urn:uuid:42")
    with pytest.raises(Resubmitted) as again:
        await store.create(make_order(), message_id="urn:uuid:42")
    assert again.value.order.order_id == first.order_id
    assert len(await store.search("alice", None, None, frozenset(), None, 10)) == 1


@pytest_twisted.ensureDeferred
async def test_concurrent_retries_make_one_order(redis: Redis) -> None:
    store = OrderStore(redis)
    outcomes = await defer.DeferredList(
        [defer.ensureDeferred(store.create(make_order(), message_id="urn:uuid:7")) for _ in range(5)],
        consumeErrors=True)
    made = [value.order_id for ok, value in outcomes if ok]
    repeated = [value.value.order.order_id for ok, value in outcomes if not ok and value.check(Resubmitted)]
    assert len(made) == 1 and repeated == made * 4


@pytest_twisted.ensureDeferred
async def test_message_ids_are_per_user_and_optional(redis: Redis) -> None:
    store = OrderStore(redis)
    alices = await store.create(make_order("alice"), message_id="urn:uuid:1")
    bobs = await store.create(make_order("bob"), message_id="urn:uuid:1")
    assert alices.order_id != bobs.order_id
    plain = [await store.create(make_order("alice")) for _ in range(2)]
    assert plain[0].order_id != plain[1].order_id
    assert len(await store.search("alice", None, None, frozenset(), None, 10)) == 3


@pytest_twisted.ensureDeferred
async def test_a_message_id_is_remembered_for_a_day(redis: Redis) -> None:
    store = OrderStore(redis)
    first = await store.create(make_order(), message_id="urn:uuid:day")
    remembered = await redis.conn.keys("oseod:submitted:u:alice:*")
    assert len(remembered) == 1 and "urn:uuid" not in remembered[0]  # the client's text is not in the key
    assert MESSAGE_SECONDS - 5 < int(await redis.conn.ttl(remembered[0])) <= MESSAGE_SECONDS == 86400
    await redis.conn.delete(remembered[0])  # the day is over
    second = await store.create(make_order(), message_id="urn:uuid:day")
    assert second.order_id != first.order_id


@pytest_twisted.ensureDeferred
async def test_a_message_id_whose_order_was_purged_makes_a_new_one(redis: Redis) -> None:
    store = OrderStore(redis)
    first = await store.create(make_order(status=OrderStatus.Cancelled), message_id="urn:uuid:p")
    assert await store.purge(first.order_id, {OrderStatus.Cancelled})
    second = await store.create(make_order(), message_id="urn:uuid:p")
    assert second.order_id != first.order_id
    with pytest.raises(Resubmitted):
        await store.create(make_order(), message_id="urn:uuid:p")


@pytest_twisted.ensureDeferred
async def test_the_core_answers_a_retry_with_the_first_order(redis: Redis) -> None:
    service = OrderingService(OrderStore(redis), Config(), task.Clock())
    with_id = Notification(message_id="urn:uuid:core")
    first = await service.submit(Account("alice"), demo_spec(), with_id)
    again = await service.submit(Account("alice"), demo_spec(), with_id)
    assert again.order_id == first.order_id
    other = await service.submit(Account("bob"), demo_spec(), with_id)
    assert other.order_id != first.order_id
