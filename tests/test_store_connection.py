from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import pytest_twisted

from oseod.store.connection import Redis, RedisAddress, RedisUnavailable
from oseod.store.embedded import find_redis_server
from tests.ports import start_listening


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://localhost", RedisAddress(host="localhost", port=6379, db=0)),
        ("redis://:s%40cret@10.1.2.3:6380/4", RedisAddress(host="10.1.2.3", port=6380, db=4, password="s@cret")),
        ("redis://app:pw@h/2", RedisAddress(host="h", db=2, password="pw", username="app")),
        ("unix:///run/redis.sock?db=3&password=pw", RedisAddress(path="/run/redis.sock", db=3, password="pw")),
    ],
)
def test_urls(url: str, expected: RedisAddress) -> None:
    assert RedisAddress.from_url(url) == expected


@pytest.mark.parametrize("url", ["http://x", "redis://", "redis://h/notanumber", "unix://", "localhost:6379"])
def test_bad_urls_are_refused_without_leaking_passwords(url: str) -> None:
    with pytest.raises(ValueError, match="bad Redis URL"):
        RedisAddress.from_url(url)
    with pytest.raises(ValueError) as caught:
        RedisAddress.from_url("redis://:topsecret@h/x")
    assert "topsecret" not in str(caught.value)


def test_describe_never_shows_the_password() -> None:
    assert "pw" not in RedisAddress.from_url("redis://:pw@h:1/2").describe()
    assert repr(RedisAddress.from_url("redis://:pw@h:1/2")).count("pw") == 0


@pytest.fixture(scope="module")
def password_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A redis-server on a loopback TCP port that requires a password.
    redis-server cannot bind port 0 (``port 0``: no TCP at all), so it is
    started again on another port when its port was taken (tests/ports.py)."""
    directory: Path = tmp_path_factory.mktemp("redis-auth")

    def launch(ports: list[int]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [find_redis_server(), "--bind", "127.0.0.1", "--port", str(ports[0]), "--requirepass", "sesame",
             "--dir", str(directory), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    process, (port,) = start_listening(launch, 1, "the password redis-server")
    try:
        yield port
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections while the test runs: bound
    (port 0, so the kernel's pick) but not listening, and held."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield int(held.getsockname()[1])


@pytest_twisted.ensureDeferred
async def test_password_and_database_are_used(password_redis: int) -> None:
    redis = Redis(RedisAddress.from_url(f"redis://:sesame@127.0.0.1:{password_redis}/5"))
    await redis.connect()
    try:
        await redis.conn.set("probe", "0012")
        assert await redis.conn.get("probe") == "0012"
        other = Redis(RedisAddress.from_url(f"redis://:sesame@127.0.0.1:{password_redis}/0"))
        await other.connect()
        assert await other.conn.get("probe") is None
        await other.close()
        assert await redis.ping() is True
    finally:
        await redis.conn.delete("probe")
        await redis.close()
    assert await redis.ping() is False


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("redis://:wrong@127.0.0.1:{port}/0", "cannot connect"),
        ("redis://127.0.0.1:{port}/0", "NOAUTH"),
        ("redis://127.0.0.1:{closed}/0", "cannot connect"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_wrong_redis_fails_fast_and_clearly(password_redis: int, closed_port: int, url: str,
                                                   fragment: str) -> None:
    address = RedisAddress.from_url(url.format(port=password_redis, closed=closed_port))
    with pytest.raises(RedisUnavailable) as caught:
        await address.check()
    assert fragment in str(caught.value)
    assert address.describe() in str(caught.value)


# --- scripts: written straight to a free connection (connection.Scripting) ----------------

_COUNT = "return redis.call('INCRBY', KEYS[1], ARGV[1])"


@pytest_twisted.ensureDeferred
async def test_a_script_runs_again_after_redis_forgot_it(redis: Redis) -> None:
    assert int(await redis.conn.eval(_COUNT, ["n"], ["2"])) == 2
    assert int(await redis.conn.eval(_COUNT, ["n"], [3])) == 5  # sent by its SHA-1 now
    await redis.conn.execute_command("SCRIPT", "FLUSH")
    assert int(await redis.conn.eval(_COUNT, ["n"], ["1"])) == 6


@pytest_twisted.ensureDeferred
async def test_a_script_error_is_raised_and_the_connection_goes_on(redis: Redis) -> None:
    await redis.conn.set("text", "not a number")
    for _ in range(2):  # once sent whole, once by SHA-1
        with pytest.raises(Exception, match="not an integer"):
            await redis.conn.eval(_COUNT, ["text"], ["1"])
    assert int(await redis.conn.eval(_COUNT, ["n"], ["1"])) == 1
    assert await redis.conn.get("text") == "not a number"


@pytest_twisted.ensureDeferred
async def test_arguments_are_encoded_as_txredisapi_does(redis: Redis) -> None:
    echo = "return ARGV"
    assert await redis.conn.eval(echo, [], ["é", b"raw", 7, 1.5]) == ["é", "raw", "7", "1.500000"]


@pytest_twisted.ensureDeferred
async def test_no_script_lands_inside_a_transaction(redis: Redis) -> None:
    # Every connection of the pool is lent out for a transaction: the
    # script must wait for one to come back, not join a transaction (whose
    # EXEC would then answer for it). (txredisapi's discard() hands its
    # connection back before sending DISCARD; oseod only commits.)
    transactions = [await redis.conn.multi() for _ in range(8)]
    for transaction in transactions:
        await transaction.set("in-transaction", "1")
    ran = redis.conn.eval(_COUNT, ["n"], ["1"])
    assert not ran.called
    for transaction in transactions:
        assert await transaction.commit() == ["OK"]
    assert int(await ran) == 1
    assert int(await redis.conn.get("n")) == 1


@pytest_twisted.ensureDeferred
async def test_a_lost_connection_fails_the_scripts_waiting_on_it(redis: Redis) -> None:
    blocked = redis.conn.eval("local t = redis.call('TIME') while true do "
                              "if redis.call('TIME')[1] - t[1] >= 1 then return 1 end end", [], [])
    for connection in list(redis.conn._factory.pool):  # noqa: SLF001
        connection.transport.abortConnection()
    with pytest.raises(Exception, match="Lost connection"):
        await blocked
