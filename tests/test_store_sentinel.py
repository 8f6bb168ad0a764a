"""Redis through Sentinel (oseod/store/sentinel.py and the redis+sentinel://
side of oseod/store/connection.py): the URL, then a real primary, replica and
three sentinels (tests/sentinel_cluster.py)."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
import txredisapi
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.threads import deferToThread
from twisted.logger import formatEvent, globalLogPublisher

from oseod.config import ConfigError
from oseod.store.connection import Redis, RedisAddress, RedisUnavailable
from oseod.store.sentinel import FailFastSentinel
from oseod.tap import _check_endpoints
from tests.daemon import Daemon
from tests.polling import eventually
from tests.sentinel_cluster import DOWN_AFTER_MS, SentinelCluster, sentinel_cluster


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis+sentinel://h1:26379,h2:26380,h3/oseo",
         RedisAddress(sentinels=(("h1", 26379), ("h2", 26380), ("h3", 26379)), master_name="oseo")),
        ("redis+sentinel://:s%40cret@h1:1,h2:2/oseo/3",
         RedisAddress(sentinels=(("h1", 1), ("h2", 2)), master_name="oseo", db=3, password="s@cret")),
        ("redis+sentinel://:p@ss@h1:1/oseo",  # a bare @ in the password: the last one ends it
         RedisAddress(sentinels=(("h1", 1),), master_name="oseo", password="p@ss")),
        ("redis+sentinel://app:pw@[::1]:26379,[fe80::1]/main/0",
         RedisAddress(sentinels=(("::1", 26379), ("fe80::1", 26379)), master_name="main", password="pw",
                      username="app")),
        ("redis+sentinel://h:1/oseo?db=2&sentinel_password=sp",
         RedisAddress(sentinels=(("h", 1),), master_name="oseo", db=2, sentinel_password="sp")),
    ],
)  # fmt: skip
def test_sentinel_urls(url: str, expected: RedisAddress) -> None:
    assert RedisAddress.from_url(url) == expected


def test_the_sentinels_password_comes_from_the_config_unless_the_url_says() -> None:
    url = "redis+sentinel://:data@h:1/oseo"
    assert RedisAddress.from_url(url, sentinel_password="sp").sentinel_password == "sp"
    assert RedisAddress.from_url(url + "?sentinel_password=q", sentinel_password="sp").sentinel_password == "q"
    assert RedisAddress.from_url(url, sentinel_password="").sentinel_password is None


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://",
        "redis+sentinel:///oseo",
        "redis+sentinel://h:1",
        "redis+sentinel://h:1/",
        "redis+sentinel://h:1/oseo/x",
        "redis+sentinel://h:1/oseo/0/extra",
        "redis+sentinel://h:port/oseo",
        "redis+sentinel://h:70000/oseo",
        "redis+sentinel://::1:26379/oseo",
        "redis+sentinel://[::1/oseo",
        "redis+sentinel://h1:1,,h2:2/oseo",
        "redis+sentinel://secret@h:1/oseo",
    ],
)
def test_bad_sentinel_urls_are_refused_naming_the_key(url: str) -> None:
    with pytest.raises(ValueError, match="bad Redis URL"):
        RedisAddress.from_url(url)
    config = _config_with_redis(url)
    with pytest.raises(ConfigError, match="server.redis") as caught:
        _check_endpoints(config)
    assert "secret" not in str(caught.value)


def test_describe_and_repr_never_show_passwords() -> None:
    address = RedisAddress.from_url("redis+sentinel://:pw1@h:1,[::1]:2/oseo/4?sentinel_password=pw2")
    assert address.describe() == "redis+sentinel://h:1,[::1]:2/oseo/4"
    assert "pw1" not in repr(address) and "pw2" not in repr(address)
    with pytest.raises(ValueError) as caught:
        RedisAddress.from_url("redis+sentinel://:topsecret@h:1/oseo/x")
    assert "topsecret" not in str(caught.value)


def _config_with_redis(url: str) -> Any:
    import attrs

    from oseod.config import Config

    config = Config()
    return attrs.evolve(config, server=attrs.evolve(config.server, redis=url))


# --- the real thing ----------------------------------------------------------------------


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[SentinelCluster]:
    yield from sentinel_cluster(tmp_path)


_COUNT = "return redis.call('INCRBY', KEYS[1], ARGV[1])"


@pytest.mark.slow
@pytest_twisted.ensureDeferred
async def test_discovery_finds_the_primary(cluster: SentinelCluster) -> None:
    redis = Redis(RedisAddress.from_url(cluster.url(db=2)))
    await redis.connect()
    try:
        assert redis.primary == f"127.0.0.1:{cluster.primary.port}"
        assert int(await redis.conn.eval(_COUNT, ["n"], [2])) == 2
        assert int(await redis.conn.eval(_COUNT, ["n"], [3])) == 5
        assert await redis.ping() is True
        # Written to the primary found, in the database the URL names.
        assert cluster.primary.command("-n", "2", "GET", "n", password="s@me/pw").strip() == "5"
    finally:
        await redis.close()
    # One sentinel that does not answer (stopped): the others are enough.
    first, *others = cluster.sentinels
    first.signal(signal.SIGSTOP)
    gave_up: list[str] = []

    def observe(event: dict[str, Any]) -> None:
        if event.get("sentinel") == f"127.0.0.1:{first.port}" and "could not auth" in str(event.get("why")):
            gave_up.append(event["why"])

    globalLogPublisher.addObserver(observe)
    redis = Redis(RedisAddress.from_url(cluster.url(db=2)))
    try:
        await redis.connect()
        assert redis.primary == f"127.0.0.1:{cluster.primary.port}"

        async def auth_lost() -> bool:  # (txredisapi would stop trying that sentinel for good)
            return bool(gave_up)

        await eventually(auth_lost, 10, "the stopped sentinel's AUTH to time out")
        # Back, it is asked again: with the others stopped, it alone finds
        # the primary for the connections made from now on.
        first.signal(signal.SIGCONT)
        for sentinel in others:
            sentinel.signal(signal.SIGSTOP)
        for connection in list(redis.conn._factory.pool):  # noqa: SLF001
            connection.transport.loseConnection()

        async def written() -> bool:
            try:
                await redis.conn.set("through-one", "1").addTimeout(0.5, reactor)
            except Exception:
                return False
            return True

        await eventually(written, 5, "a connection found through the sentinel that came back")
    finally:
        globalLogPublisher.removeObserver(observe)
        for sentinel in cluster.sentinels:
            sentinel.signal(signal.SIGCONT)
        await redis.close()


@pytest.mark.slow
@pytest_twisted.ensureDeferred
async def test_no_primary_fails_the_start_clearly(cluster: SentinelCluster) -> None:
    redis = Redis(RedisAddress.from_url(cluster.url().replace("/oseo/", "/nosuchmaster/")))
    with pytest.raises(RedisUnavailable, match="no primary found through redis\\+sentinel://127.0.0.1:"):
        await redis.connect()
    # The sentinels want a password of their own: without it nobody answers.
    redis = Redis(RedisAddress.from_url(cluster.url().split("?")[0]))
    with pytest.raises(RedisUnavailable, match="no primary found"):
        await redis.connect()


@pytest.mark.slow
@pytest_twisted.ensureDeferred
async def test_the_promoted_replica_answers_after_the_primary_is_killed(cluster: SentinelCluster) -> None:
    redis = Redis(RedisAddress.from_url(cluster.url()))
    await redis.connect()
    try:
        assert int(await redis.conn.eval(_COUNT, ["n"], [1])) == 1
        assert int(await redis.conn.eval(_COUNT, ["n"], [1])) == 2  # by its SHA-1 now
        # The replica has it before the primary goes (the promoted one keeps it).
        await eventually(lambda: _replica_has(cluster, "2"), 5, "the replica to catch up")
        said: list[str] = []

        def observe(event: dict[str, Any]) -> None:
            said.append(formatEvent(event))

        globalLogPublisher.addObserver(observe)
        cluster.primary.signal(signal.SIGKILL)

        async def answers() -> bool:
            # Each try has its own short deadline: a command sent while the
            # pool has no connection waits for one without limit.
            try:
                reply = await redis.conn.eval(_COUNT, ["n"], [1]).addTimeout(0.5, reactor)
            except Exception:
                return False
            return int(reply) >= 1

        await eventually(answers, DOWN_AFTER_MS / 1000 + 2.0, "the promoted replica to answer")
        globalLogPublisher.removeObserver(observe)
        assert redis.primary == f"127.0.0.1:{cluster.replica.port}"
        # The outage is told once, not once per connection and retry.
        assert not [line for line in said if "Can't get address" in line]
        assert len([line for line in said if "no sentinel knows" in line]) <= 1
        assert [line for line in said if "moved from" in line] == [
            f"Redis primary of oseo moved from 127.0.0.1:{cluster.primary.port} to 127.0.0.1:{cluster.replica.port}"]
        assert await redis.ping() is True
        # Nothing acknowledged before the failover was lost; the script, which
        # the new primary had never seen (NOSCRIPT), was sent whole again.
        assert int(await redis.conn.get("n")) >= 3
    finally:
        await redis.close()


@pytest.mark.slow
@pytest_twisted.ensureDeferred
async def test_the_old_primary_coming_back_is_not_written_to(cluster: SentinelCluster) -> None:
    redis = Redis(RedisAddress.from_url(cluster.url()))
    await redis.connect()
    try:
        await redis.conn.set("k", "before")
        await eventually(lambda: _replica_has(cluster, "before", "k"), 5, "the replica to catch up")
        cluster.primary.signal(signal.SIGKILL)

        async def moved() -> bool:
            try:
                await redis.conn.set("k", "after").addTimeout(0.5, reactor)
            except Exception:
                return False
            return True

        await eventually(moved, DOWN_AFTER_MS / 1000 + 2.0, "the promoted replica to take writes")
        # Back empty and, for ~10 s until Sentinel converts it, a writable
        # primary of its own: new connections must still go to the promoted one.
        await deferToThread(cluster.primary.restart)
        pool = redis.conn._factory.pool  # noqa: SLF001
        for connection in list(pool):
            connection.transport.loseConnection()

        acknowledged = 0

        async def converted() -> bool:
            nonlocal acknowledged
            try:  # (a write on a connection being closed fails: the next one)
                await redis.conn.incr("writes").addTimeout(0.5, reactor)
            except Exception:
                return False
            acknowledged += 1
            role = await _on(cluster.primary, "ROLE")
            return role.startswith("slave")

        await eventually(converted, 30, "Sentinel to make the old primary a replica")
        assert redis.primary == f"127.0.0.1:{cluster.replica.port}"
        assert await redis.conn.get("k") == "after"
        # Every write went to the promoted one (none lost on the old primary),
        # which the old primary copies now.
        written = await redis.conn.get("writes")
        assert int(written) >= acknowledged > 0

        async def copied() -> bool:
            return (await _on(cluster.primary, "GET", "writes")).strip() == written

        await eventually(copied, 10, "the old primary to copy the promoted one")
    finally:
        await redis.close()


async def _replica_has(cluster: SentinelCluster, value: str, key: str = "n") -> bool:
    answer = await deferToThread(cluster.replica.command, "GET", key, password="s@me/pw")
    return bool(answer.strip() == value)


@pytest.mark.slow
def test_the_daemon_names_the_primary_in_its_log_and_health(cluster: SentinelCluster, tmp_path: Path,
                                                            daemons: list[Daemon]) -> None:
    daemon = Daemon(tmp_path / "data", "--redis", cluster.url(db=1))
    daemons.append(daemon)
    daemon.start()
    primary = f"127.0.0.1:{cluster.primary.port}"
    status, _, body = daemon.get("/health")
    health = json.loads(body)
    assert status == 200 and health["redis"]["reachable"] is True
    assert health["redis"]["primary"] == primary
    assert health["redis"]["address"].startswith("redis+sentinel://127.0.0.1:")
    assert f"primary {primary} found through redis+sentinel://" in daemon.log()
    assert "s@me" not in daemon.log() and "s%40me" not in daemon.log() and "sentinels-only" not in daemon.log()


@pytest.mark.slow
@pytest_twisted.ensureDeferred
async def test_a_connection_that_answers_readonly_is_dropped(cluster: SentinelCluster) -> None:
    redis = Redis(RedisAddress.from_url(cluster.url()))
    await redis.connect()
    pool = redis.conn._factory.pool  # noqa: SLF001 - the connections, to see one go
    try:
        assert int(await redis.conn.eval(_COUNT, ["n"], [1])) == 1
        connected = len(pool)
        # Demoted under our feet, without the CLIENT KILL a failover sends:
        # the connections stay open, and writes are refused.
        await _on(cluster.primary, "REPLICAOF", "127.0.0.1", "1")
        with pytest.raises(RedisUnavailable, match="READONLY"):
            await redis.conn.eval(_COUNT, ["n"], [1])
        with pytest.raises(RedisUnavailable, match="READONLY"):
            await redis.conn.incr("n")

        async def dropped() -> bool:
            # (and it is not replaced: the server found says ROLE slave)
            return len(pool) < connected

        await eventually(dropped, 5, "the connection that answered READONLY to close")
        await _on(cluster.primary, "REPLICAOF", "NO", "ONE")

        async def writable() -> bool:
            try:
                await redis.conn.incr("n").addTimeout(0.5, reactor)
            except Exception:
                return False
            return True

        await eventually(writable, 5, "writes to be taken again")
    finally:
        await redis.close()


async def _on(server: Any, *command: str) -> str:
    return str(await deferToThread(server.command, *command, password="s@me/pw"))


# --- the fail-fast discovery, on a Clock ----------------------------------------------------


class _FakeSentinel:
    """A sentinel connection whose SENTINEL MASTERS answer the test gives."""

    def __init__(self) -> None:
        self.questions: list[Deferred[Any]] = []

    def sentinel_masters(self) -> Deferred[Any]:
        self.questions.append(Deferred())
        return self.questions[-1]


def _state(flags: str = "master", ip: str = "10.0.0.5", port: str = "6379", epoch: int = 0) -> dict[str, Any]:
    names = set(flags.split(","))
    return {"ip": ip, "port": port, "num-other-sentinels": "2", "is_master": "master" in names,
            "is_sdown": "s_down" in names, "is_odown": "o_down" in names, "config-epoch": str(epoch)}


def _discovery(count: int = 3) -> tuple[FailFastSentinel, list[_FakeSentinel], Clock]:
    clock = Clock()
    sentinel = FailFastSentinel([], clock)
    fakes = [_FakeSentinel() for _ in range(count)]
    sentinel.sentinels = fakes
    return sentinel, fakes, clock


def test_discovery_takes_the_primary_of_the_newest_configuration() -> None:
    sentinel, fakes, clock = _discovery()
    found = sentinel.discover_master("oseo")
    fakes[1].questions[0].callback({"oseo": _state("master,o_down")})
    fakes[2].questions[0].callback({"oseo": _state(ip="10.0.0.6", epoch=1)})
    assert not found.called  # (the last may know of a newer failover)
    # A sentinel that has not yet heard of the failover names the old primary,
    # healthy again once it resumed: the newer configuration wins.
    fakes[0].questions[0].callback({"oseo": _state(ip="10.0.0.5", epoch=0)})
    assert found.result == ("10.0.0.6", 6379) and sentinel.primary == ("10.0.0.6", 6379)
    assert not clock.getDelayedCalls()


def test_discovery_settles_for_the_answers_it_has_after_one_second() -> None:
    sentinel, fakes, clock = _discovery()
    found = sentinel.discover_master("oseo")
    fakes[0].questions[0].callback({"oseo": _state(ip="10.0.0.6", epoch=2)})
    fakes[1].questions[0].callback({"oseo": _state(ip="10.0.0.6", epoch=2)})
    clock.advance(0.99)
    assert not found.called
    clock.advance(0.01)
    assert found.result == ("10.0.0.6", 6379)


def test_discovery_fails_as_soon_as_every_sentinel_has_answered_without_one() -> None:
    sentinel, fakes, clock = _discovery()
    found = sentinel.discover_master("oseo")
    fakes[0].questions[0].callback({"oseo": _state("master,s_down")})
    fakes[1].questions[0].errback(txredisapi.ResponseError("NOAUTH"))
    fakes[2].questions[0].callback({})  # does not know the name
    failures: list[Any] = []
    found.addErrback(failures.append)
    assert failures and failures[0].check(txredisapi.MasterNotFoundError)  # no time has passed
    assert not clock.getDelayedCalls()


def test_discovery_waits_for_a_silent_sentinel_one_second_at_most_and_asks_it_once() -> None:
    sentinel, fakes, clock = _discovery()
    found = sentinel.discover_master("oseo")
    fakes[0].questions[0].callback({"oseo": _state("master,o_down")})
    fakes[1].questions[0].callback({"oseo": _state("master,o_down")})
    clock.advance(0.99)
    assert not found.called
    clock.advance(0.01)
    failures: list[Any] = []
    found.addErrback(failures.append)
    assert failures and failures[0].check(txredisapi.MasterNotFoundError)
    # Asked again, the silent one is not sent a second question: the others decide.
    again = sentinel.discover_master("oseo")
    assert [len(fake.questions) for fake in fakes] == [2, 2, 1]
    fakes[0].questions[1].callback({"oseo": _state()})
    fakes[1].questions[1].callback({"oseo": _state()})
    assert again.result == ("10.0.0.5", 6379)
