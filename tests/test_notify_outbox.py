"""The outbox on a real Redis: status changes queued with the change itself,
in order, sent at least once with retries and backoff, given up on and
recorded, shared by several senders without double sends."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

import attrs
import pytest_twisted
from twisted.internet import defer, task
from zope.interface import implementer

from oseod.model.orders import Notification, OrderStatus, StatusInfo, StatusNotification
from oseod.notify.sender import IOutboxChannel, OutboxSender
from oseod.store import keys
from oseod.store.connection import Redis
from oseod.store.orders import OrderStore
from oseod.store.outbox import CALLBACK, OutboxMessage, OutboxStore
from tests.polling import eventually
from tests.test_store_orders import make_order

S = OrderStatus


@implementer(IOutboxChannel)
class Recorder:
    """Takes what the sender delivers; ``refuse`` decides, per message,
    whether this attempt fails (and why)."""

    def __init__(self, refuse: Callable[[OutboxMessage], str] = lambda m: "", host: str = "client") -> None:
        self.delivered: list[tuple[str, int, str]] = []
        self.attempts: list[OutboxMessage] = []
        self.refuse = refuse
        self.host = host
        self.hold: defer.Deferred[None] | None = None

    def destination(self, message: OutboxMessage) -> str:
        return self.host

    async def deliver(self, message: OutboxMessage) -> None:
        self.attempts.append(message)
        if self.hold is not None:
            await self.hold
        reason = self.refuse(message)
        if reason:
            raise ConnectionError(reason)
        self.delivered.append((message.name, message.seq, message.data["status"]))


def sender(redis: Redis, channel: Recorder, clock: task.Clock, **options: Any) -> OutboxSender:
    settings = {"max_attempts": 3, "retry_delay": 5.0, "timeout": 10.0, **options}
    return OutboxSender(OutboxStore(redis), {CALLBACK: channel}, clock, **settings)


async def order_with(store: OrderStore, mode: StatusNotification) -> str:
    order = attrs.evolve(make_order(), notification=Notification(mode, "http://client/cb", "uuid:1", "1.2"))
    return (await store.create(order)).order_id


async def walk(store: OrderStore, order_id: str, *statuses: OrderStatus, at: float = 200.0) -> None:
    for n, status in enumerate(statuses):
        assert await store.set_order_status(order_id, StatusInfo(status, f"now {status.value}", changed_at=at + n))


async def send_all(out: OutboxSender) -> None:
    out.wake()
    await out.drain()


@pytest_twisted.ensureDeferred
async def test_every_change_of_an_all_order_is_sent_in_order(redis: Redis) -> None:
    store, clock, channel = OrderStore(redis), task.Clock(), Recorder()
    clock.advance(1000)
    order_id = await order_with(store, StatusNotification.ALL)
    await walk(store, order_id, S.InProduction, S.Completed, S.Downloaded)
    await send_all(sender(redis, channel, clock))
    assert channel.delivered == [(order_id, 1, "InProduction"), (order_id, 2, "Completed"),
                                 (order_id, 3, "Downloaded")]
    assert await redis.conn.zcard(keys.outbox_due()) == 0
    info = json.loads(channel.attempts[0].data["info"])
    assert info["additional_info"] == "now InProduction"


@pytest_twisted.ensureDeferred
async def test_final_sends_the_final_status_only_and_none_sends_nothing(redis: Redis) -> None:
    store, clock, channel = OrderStore(redis), task.Clock(), Recorder()
    clock.advance(1000)
    final = await order_with(store, StatusNotification.FINAL)
    quiet = await order_with(store, StatusNotification.NONE)
    for order_id in (final, quiet):
        await walk(store, order_id, S.InProduction, S.Failed)
    # Refused changes and repeated statuses are not changes.
    assert not await store.set_order_status(final, StatusInfo(S.Completed, changed_at=300.0), allowed=[S.Accepted])
    await send_all(sender(redis, channel, clock))
    assert channel.delivered == [(final, 1, "Failed")]


@pytest_twisted.ensureDeferred
async def test_failed_attempts_back_off_and_the_order_waits_its_turn(redis: Redis) -> None:
    store, clock = OrderStore(redis), task.Clock()
    clock.advance(1000)
    failures = iter(["refused", "503 Service Unavailable"])
    channel = Recorder(lambda m: next(failures, "") if m.seq == 1 else "")
    out = sender(redis, channel, clock, max_attempts=5)
    order_id = await order_with(store, StatusNotification.ALL)
    await walk(store, order_id, S.InProduction, S.Completed)
    await send_all(out)
    assert channel.delivered == []  # the second waits behind the first
    clock.advance(4.9)
    await send_all(out)
    assert len(channel.attempts) == 1
    clock.advance(0.2)  # 5 s after the first attempt
    await send_all(out)
    assert len(channel.attempts) == 2 and channel.attempts[-1].error == "refused"
    clock.advance(9.9)  # the delay doubled: 10 s
    await send_all(out)
    assert len(channel.attempts) == 2
    clock.advance(0.2)
    await send_all(out)
    assert channel.delivered == [(order_id, 1, "InProduction"), (order_id, 2, "Completed")]
    assert channel.attempts[2].attempts == 2  # the same message, the same seq, a third time
    counters = await OutboxStore(redis).counters()
    assert counters[f"{CALLBACK}:sent"] >= 2 and counters[f"{CALLBACK}:retried"] >= 2
    # The order's log (the console's): each failure when it happened, then the sends.
    log = await OutboxStore(redis).log(CALLBACK, order_id)
    assert [(e.at, e.seq, e.outcome, e.detail) for e in log] == [
        (1000.0, 1, "retry", "refused"), (1005.1, 1, "retry", "503 Service Unavailable"),
        (1015.2, 1, "sent", ""), (1015.2, 2, "sent", "")]


@pytest_twisted.ensureDeferred
async def test_given_up_messages_are_recorded_on_the_order_and_the_queue_moves_on(redis: Redis) -> None:
    store, clock = OrderStore(redis), task.Clock()
    clock.advance(1000)
    channel = Recorder(lambda m: "connection refused" if m.seq == 1 else "")
    out, outbox = sender(redis, channel, clock, max_attempts=2, retry_delay=1.0), OutboxStore(redis)
    order_id = await order_with(store, StatusNotification.ALL)
    await walk(store, order_id, S.InProduction, S.Completed)
    for _ in range(3):
        await send_all(out)
        clock.advance(1.0)
    assert channel.delivered == [(order_id, 2, "Completed")]
    failure = await store.callback_failure(order_id)
    assert failure is not None and (failure.seq, failure.attempts, failure.error) == (1, 2, "connection refused")
    assert [f.name for f in await outbox.failures()][0] == order_id


@pytest_twisted.ensureDeferred
async def test_two_senders_never_send_one_message_twice(redis: Redis) -> None:
    store, clock = OrderStore(redis), task.Clock()
    clock.advance(1000)
    channel = Recorder()
    one, two = sender(redis, channel, clock, per_destination=100), sender(redis, channel, clock, per_destination=100)
    orders = [await order_with(store, StatusNotification.ALL) for _ in range(20)]
    for order_id in orders:
        await walk(store, order_id, S.InProduction, S.Completed)
    for _ in range(4):
        one.wake()
        two.wake()
        await defer.gatherResults([defer.ensureDeferred(one.drain()), defer.ensureDeferred(two.drain())])
    assert sorted(channel.delivered) == sorted((o, n, s) for o in orders for n, s in ((1, "InProduction"),
                                                                                       (2, "Completed")))
    for order_id in orders:  # and in order, per order
        assert [seq for o, seq, _ in channel.delivered if o == order_id] == [1, 2]


@pytest_twisted.ensureDeferred
async def test_a_message_claimed_by_a_dead_sender_is_sent_after_its_lease(redis: Redis) -> None:
    store, clock, channel = OrderStore(redis), task.Clock(), Recorder()
    clock.advance(1000)
    order_id = await order_with(store, StatusNotification.FINAL)
    await walk(store, order_id, S.Completed)
    [claimed] = await OutboxStore(redis).claim(clock.seconds(), 60.0, 10)  # ...and then died
    out = sender(redis, channel, clock, timeout=10.0)
    await send_all(out)
    assert channel.delivered == []
    clock.advance(60.0)
    await send_all(out)
    assert channel.delivered == [(order_id, claimed.seq, "Completed")]


@pytest_twisted.ensureDeferred
async def test_a_slow_destination_does_not_hold_up_the_others(redis: Redis) -> None:
    # Numbered ids (as earlier versions made them): odd and even ones go to different clients.
    store, clock = OrderStore(redis, new_id=map(str, itertools.count(1)).__next__), task.Clock()
    clock.advance(1000)
    slow, fast = Recorder(host="slow"), Recorder(host="fast")

    @implementer(IOutboxChannel)
    class ByOrder:
        """Odd orders' client is slow."""

        def destination(self, message: OutboxMessage) -> str:
            return "slow" if int(message.name) % 2 else "fast"

        async def deliver(self, message: OutboxMessage) -> None:
            await (slow if int(message.name) % 2 else fast).deliver(message)

    slow.hold = defer.Deferred()
    out = OutboxSender(OutboxStore(redis), {CALLBACK: ByOrder()}, clock, max_attempts=3, retry_delay=5.0,
                       timeout=10.0, concurrency=16, per_destination=2)
    orders = [await order_with(store, StatusNotification.FINAL) for _ in range(12)]
    for order_id in orders:
        await walk(store, order_id, S.Completed)
    fast_ones = sorted(o for o in orders if int(o) % 2 == 0)

    async def fast_done() -> bool:
        out.wake()  # the slow client's messages come back every half second: let them
        clock.advance(0.5)
        return sorted(o for o, _, _ in fast.delivered) == fast_ones

    await eventually(fast_done, 10, "the fast client's messages delivered while the slow one hangs")
    assert len(slow.attempts) == 2  # its two places, no more; the rest wait without using up attempts
    slow.hold.callback(None)
    slow.hold = None
    for _ in range(6):
        await send_all(out)
        clock.advance(0.5)
    assert sorted(o for o, _, _ in slow.delivered) == sorted(o for o in orders if int(o) % 2)
    assert all(m.attempts == 0 for m in slow.attempts)


@pytest_twisted.ensureDeferred
async def test_messages_queued_by_name_leave_in_order(redis: Redis) -> None:
    clock, channel, outbox = task.Clock(), Recorder(), OutboxStore(redis)
    clock.advance(1000)
    assert [await outbox.enqueue(CALLBACK, "q1", {"status": s}, clock.seconds()) for s in ("a", "b")] == [1, 2]
    await send_all(sender(redis, channel, clock))
    assert channel.delivered == [("q1", 1, "a"), ("q1", 2, "b")]


def test_a_daemon_that_does_not_send_leaves_the_outbox_to_the_others(tmp_path: Any) -> None:
    from oseod.tap import Options, makeService

    def steps(send: str) -> list[str]:
        config = tmp_path / f"send-{send}.toml"
        config.write_text(f"[notifications]\nsend = {send}\n")
        options = Options()
        options.parseOptions(["--config", str(config), "--data-dir", str(tmp_path / "data"),
                              "--http", "tcp:0:interface=127.0.0.1", "--ftp", ""])
        return [step.name for step in makeService(options)._steps]  # type: ignore[attr-defined]

    assert "outbox" in steps("true")
    assert "outbox" not in steps("false")
