"""While Redis is away: background loops back off and resume by themselves
without a traceback per tick, the outage is logged once (and its end once),
and a login that met the outage is not counted as a failed one."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.cred.credentials import UsernamePassword
from twisted.internet import task
from twisted.logger import LogLevel

from oseod.auth.lockout import Client
from oseod.config import Config
from oseod.schedule.scheduler import PeriodicTask, Scheduler
from oseod.store.connection import Redis, RedisUnavailable
from oseod.store.leader import LeaderLock
from oseod.store.outage import Backoff, RedisWatch
from tests.events import captured
from tests.parts import make_parts
from tests.polling import eventually
from tests.redis_process import RedisProcess


def test_backoff_doubles_up_to_its_most_and_ends_at_a_success() -> None:
    clock = task.Clock()
    backoff = Backoff(clock, first=0.5, most=2.0)
    assert not backoff.paused and not backoff.failing
    assert [backoff.failed() for _ in range(4)] == [0.5, 1.0, 2.0, 2.0]
    assert backoff.paused
    clock.advance(1.9)
    assert backoff.paused
    clock.advance(0.1)
    assert not backoff.paused and backoff.failing
    backoff.succeeded()
    assert not backoff.failing
    assert backoff.failed() == 0.5


class _Redis:
    """What the watch uses of :class:`Redis`: ping and address."""

    def __init__(self) -> None:
        self.answers = True
        self.address = type("A", (), {"describe": staticmethod(lambda: "unix:///r.sock?db=0")})()

    async def ping(self) -> bool:
        if self.answers is None:
            raise RuntimeError("not even a False")
        return self.answers


def _watch_lines(event: dict[str, Any]) -> bool:
    return str(event.get("log_namespace", "")).endswith("RedisWatch")


def test_the_watch_says_gone_once_and_back_once() -> None:
    clock, redis = task.Clock(), _Redis()
    watch = RedisWatch(redis, clock, interval=1.0)
    watch.start()
    with captured(_watch_lines) as lines:
        for answers in (True, False, None, False, False, True, True):
            redis.answers = answers  # type: ignore[assignment]
            clock.advance(1.0)
    assert [(e["log_level"], "does not answer" in e["log_format"]) for e in lines] == [
        (LogLevel.warn, True), (LogLevel.info, False)]
    assert lines[1]["seconds"] == 4.0
    assert not watch.away
    assert watch._loop is not None  # noqa: SLF001
    watch._loop.stop()  # noqa: SLF001


async def _pool_empty(redis: Redis) -> bool:
    return not redis.conn._factory.size  # noqa: SLF001


def _failures(event: dict[str, Any]) -> bool:
    return "log_failure" in event


@pytest_twisted.ensureDeferred
async def test_the_engine_backs_off_and_resumes(redis_process: RedisProcess) -> None:
    from tests.test_jobs_engine import daemon

    redis = Redis(redis_process.address)
    await redis.connect()
    clock = task.Clock()
    d = daemon(redis, clock=clock)
    await d.engine.start()
    try:
        await _pauses_then_resumes(redis_process, redis, clock, d.engine, d.engine.jobs)
        assert not d.engine.worker.backoff.failing
    finally:
        await d.engine.stop()
        await redis.close()


async def _pauses_then_resumes(redis_process: RedisProcess, redis: Redis, clock: task.Clock, loop: Any,
                               store: Any) -> None:
    """Kill Redis under ``loop`` (the engine, the outbox sender): its
    ``store.claim`` is asked less and less often, without a failure logged;
    once Redis is back, at every tick again."""
    claims = 0
    claim = store.claim

    async def counted(*args: Any) -> Any:
        nonlocal claims
        claims += 1
        return await claim(*args)

    store.claim = counted
    redis_process.kill()
    await eventually(lambda: _pool_empty(redis), 10, "the pool to notice")
    claims = 0
    with captured(_failures) as failures:
        for _ in range(20):
            clock.advance(1.0)
            await loop.drain()
    assert failures == []
    # Not every tick asked Redis: the pause grew to a few seconds.
    assert 2 <= claims <= 10
    redis_process.start()

    async def pool_back() -> bool:
        return bool(redis.conn._factory.size)  # noqa: SLF001

    await eventually(pool_back, 20, "the pool to reconnect")
    before = claims
    for _ in range(6):
        clock.advance(1.0)
        await loop.drain()
    assert claims - before >= 2  # claiming again at every tick


@pytest_twisted.ensureDeferred
async def test_the_scheduler_waits_quietly_and_leads_again(redis_process: RedisProcess) -> None:
    redis = Redis(redis_process.address)
    await redis.connect()
    clock = task.Clock()
    runs: list[float] = []

    async def run() -> None:
        runs.append(clock.seconds())
        await redis.conn.incr("runs")

    scheduler = Scheduler(LeaderLock(redis, "me"), clock, [PeriodicTask("count", 10.0, run)], tick=10.0)
    try:
        await scheduler.tick()  # (what its LoopingCall runs every tick)
        assert scheduler.leading and runs == [0.0]
        redis_process.kill()
        await eventually(lambda: _pool_empty(redis), 10, "the pool to notice")
        with captured(_failures) as failures:
            for _ in range(3):
                clock.advance(10.0)
                await scheduler.tick()
        assert failures == []
        redis_process.start()

        async def pool_back() -> bool:
            return bool(redis.conn._factory.size)  # noqa: SLF001

        await eventually(pool_back, 20, "the pool to reconnect")
        clock.advance(10.0)
        await scheduler.tick()
        assert scheduler.leading and await redis.conn.get("runs") == "1"  # (Redis came back empty)
    finally:
        await scheduler.stop()
        await redis.close()


@pytest_twisted.ensureDeferred
async def test_a_login_during_an_outage_is_not_a_failed_login(redis_process: RedisProcess) -> None:
    redis = Redis(redis_process.address)
    await redis.connect()
    parts = make_parts(Config(), redis)
    parts.passwords.start()
    portal: Any = parts.portal
    try:
        redis_process.kill()
        await eventually(lambda: _pool_empty(redis), 10, "the pool to notice")
        for _ in range(12):  # past any lock-out limit
            with pytest.raises(RedisUnavailable):
                await portal.login(UsernamePassword(b"alice", b"wrong"), Client("192.0.2.1", "soap"))
        redis_process.start()

        async def pool_back() -> bool:
            return bool(redis.conn._factory.size)  # noqa: SLF001

        await eventually(pool_back, 20, "the pool to reconnect")
        failures = await portal.lockout.check(b"alice", "192.0.2.1")
        assert failures.count == 0
    finally:
        await redis.close()


@pytest_twisted.ensureDeferred
async def test_the_outbox_backs_off_and_resumes(redis_process: RedisProcess) -> None:
    from tests.test_notify_outbox import Recorder, sender

    redis = Redis(redis_process.address)
    await redis.connect()
    clock = task.Clock()
    out = sender(redis, Recorder(), clock)
    out.start()
    try:
        await _pauses_then_resumes(redis_process, redis, clock, out, out._store)  # noqa: SLF001
    finally:
        await out.stop()
        await redis.close()
