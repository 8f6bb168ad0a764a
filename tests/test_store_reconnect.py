"""The plain pool (redis://, unix://) keeps following its server: it goes on
reconnecting after an AUTH cut off by a lost connection, and drops a
connection that answers READONLY (the server was demoted)."""

from __future__ import annotations

import socket
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import protocol, reactor
from twisted.internet.endpoints import UNIXClientEndpoint, connectProtocol

from oseod.store.connection import Redis, RedisAddress, RedisUnavailable
from oseod.store.reconnect import PlainFactory
from tests.polling import eventually
from tests.redis_process import RedisProcess

PASSWORD = "s3cret-pass"


def _command(path: str, *words: str) -> bytes:
    """One command to the test's Redis, its raw reply (a plain socket: the
    test talks to it behind the daemon's pool)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(b"".join(b"$%d\r\n%s\r\n" % (len(w.encode()), w.encode()) for w in words).join(
            [b"*%d\r\n" % len(words), b""]))
        return s.recv(4096)


class _Relay(protocol.Protocol):
    """One client connection of the proxy, relayed to the Redis socket."""

    def __init__(self, proxy: _AuthCutter) -> None:
        self.proxy = proxy
        self.server: Any = None
        self.held: list[bytes] = []

    def connectionMade(self) -> None:
        self.proxy.clients.append(self)
        relay = self

        class Back(protocol.Protocol):
            def dataReceived(self, data: bytes) -> None:
                relay.transport.write(data)

            def connectionLost(self, reason: Any = None) -> None:
                relay.transport.loseConnection()

        d = connectProtocol(UNIXClientEndpoint(reactor, self.proxy.path), Back())

        def connected(server: Any) -> None:
            self.server = server
            for data in self.held:
                server.transport.write(data)

        d.addCallbacks(connected, lambda _: self.transport.loseConnection())

    def dataReceived(self, data: bytes) -> None:
        if b"AUTH" in data and self.proxy.cut_auth > 0:
            # As if the server went away just when the new connection logged in.
            self.proxy.cut_auth -= 1
            self.transport.abortConnection()
            return
        if self.server is None:
            self.held.append(data)
        else:
            self.server.transport.write(data)

    def connectionLost(self, reason: Any = None) -> None:
        self.proxy.clients.remove(self)
        if self.server is not None:
            self.server.transport.loseConnection()


class _AuthCutter(protocol.Factory):
    """A TCP proxy to the test's Redis that can cut connections, and cut
    the next ones during their AUTH."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.cut_auth = 0
        self.clients: list[_Relay] = []

    def buildProtocol(self, addr: Any) -> _Relay:
        return _Relay(self)


@pytest_twisted.ensureDeferred
async def test_the_pool_keeps_reconnecting_after_an_auth_cut_off(redis_process: RedisProcess) -> None:
    path = str(redis_process.socket)
    assert _command(path, "CONFIG", "SET", "requirepass", PASSWORD).startswith(b"+OK")
    proxy = _AuthCutter(path)
    port = reactor.listenTCP(0, proxy, interface="127.0.0.1")
    redis = Redis(RedisAddress(host="127.0.0.1", port=port.getHost().port, password=PASSWORD))
    try:
        await redis.connect()
        factory = redis.conn._factory  # noqa: SLF001
        assert isinstance(factory, PlainFactory)
        await redis.conn.set("k", "before")

        # Every connection is lost, and each first reconnection dies in its AUTH:
        # the stock pool stops trying for good there.
        proxy.cut_auth = factory.poolsize
        for client in list(proxy.clients):
            client.transport.abortConnection()

        async def cut_and_back() -> bool:
            return proxy.cut_auth == 0 and factory.size == factory.poolsize

        await eventually(cut_and_back, 20, "the pool to reconnect after the cut AUTHs")
        assert await redis.conn.get("k") == "before"
    finally:
        await redis.close()
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_a_connection_that_answers_readonly_is_dropped(redis_process: RedisProcess) -> None:
    path = str(redis_process.socket)
    redis = Redis(redis_process.address)
    await redis.connect()
    try:
        factory = redis.conn._factory  # noqa: SLF001
        await redis.conn.set("k", "v")
        before = list(factory.pool)
        # Demoted (its primary need not exist: a replica refuses writes at once).
        assert _command(path, "REPLICAOF", "127.0.0.1", "1").startswith(b"+OK")
        with pytest.raises(RedisUnavailable, match="READONLY"):
            await redis.conn.set("k", "w")

        async def one_dropped() -> bool:
            return any(not conn.connected for conn in before)

        await eventually(one_dropped, 10, "the connection that answered READONLY to be dropped")
        assert _command(path, "REPLICAOF", "NO", "ONE").startswith(b"+OK")

        async def writable() -> bool:
            try:
                await redis.conn.set("k", "w")
            except RedisUnavailable:
                return False
            return True

        await eventually(writable, 10, "writes through the pool again")
    finally:
        await redis.close()
