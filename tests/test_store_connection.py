from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import pytest_twisted

from oseod.store.connection import Redis, RedisAddress, RedisUnavailable
from oseod.store.embedded import find_redis_server
from tests.polling import wait_for


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def password_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A redis-server on a loopback TCP port that requires a password."""
    directory: Path = tmp_path_factory.mktemp("redis-auth")
    port = _free_port()
    process = subprocess.Popen(
        [find_redis_server(), "--bind", "127.0.0.1", "--port", str(port), "--requirepass", "sesame",
         "--dir", str(directory), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError("password redis-server exited")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return False
        return True

    try:
        wait_for(ready, 20, "the password redis-server")
        yield port
    finally:
        process.terminate()
        process.wait(10)


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
async def test_wrong_redis_fails_fast_and_clearly(password_redis: int, url: str, fragment: str) -> None:
    address = RedisAddress.from_url(url.format(port=password_redis, closed=_free_port()))
    with pytest.raises(RedisUnavailable) as caught:
        await address.check()
    assert fragment in str(caught.value)
    assert address.describe() in str(caught.value)
