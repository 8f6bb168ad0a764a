"""The daemon's handle on Redis: the connection pools, found directly or
through Sentinel, and what they answer for (health, closing).

txredisapi is wrapped in this package and nowhere else: it converts
number-like strings unless told not to, and it reconnects forever without
telling anybody, so the start-up check (:meth:`RedisAddress.check`) is what
turns "Redis is wrong" into a failed start.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import ensureDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from .address import CONNECT_TIMEOUT, POOL_SIZE, RedisAddress
from .refusals import RedisUnavailable, ReplicationShortfall
from .scripting import COMMAND_TIMEOUT, WAIT_TIMEOUT, Scripting, _reactor
from .sentinel import FailFastSentinel, PrimaryFactory, format_address

__all__ = ["Redis", "RedisAddress", "RedisUnavailable", "ReplicationShortfall"]

# With [redis] min_replicas: the connections that carry the writes a WAIT
# follows. WAIT holds up every command behind it on its connection, and a
# shortfall closes it: apart, neither touches the requests that only read.
WAIT_POOL_SIZE = 4


class Redis:
    """The daemon's handle on Redis, shared by every store.

    Exposes the txredisapi command API (``await redis.conn.get(k)``, for
    the stores only) plus the few things the daemon itself needs (health:
    PING and INFO, so that no module outside the store sends a command)."""

    log = Logger()

    def __init__(self, address: RedisAddress, *, command_timeout: float = COMMAND_TIMEOUT,
                 clock: IReactorTime | None = None, min_replicas: int = 0, wait_timeout: float = WAIT_TIMEOUT) -> None:
        """``min_replicas``, ``wait_timeout``: a write a client is told about
        (``eval(..., acknowledged=True)``) is followed by WAIT for that many
        replicas, at most that many seconds (0 replicas: no WAIT)."""
        self.address = address
        self.command_timeout = command_timeout
        self.min_replicas = min_replicas
        self.wait_timeout = wait_timeout
        self._clock = clock
        self._conn: Any = None
        self._acks: Any = None  # the WAIT_POOL_SIZE pool, with min_replicas
        self._sentinel: FailFastSentinel | None = None

    @property
    def conn(self) -> Any:
        if self._conn is None:
            raise RedisUnavailable("Redis is not connected yet")
        return self._conn

    @property
    def primary(self) -> str | None:
        """The server this handle writes to: found by the sentinels (the
        last discovery), or the address itself."""
        if self.address.master_name is None:
            return self.address.describe()
        if self._sentinel is None or self._sentinel.primary is None:
            return None
        return format_address(self._sentinel.primary)

    async def connect(self) -> None:
        if self.address.master_name is not None:
            await self._connect_through_sentinels()
            return
        version = await self.address.check()
        handler = await self.address.open_pool(self.reply_timeout)
        if self.min_replicas > 0:
            self._acks = await self.address.open_pool(self.reply_timeout, WAIT_POOL_SIZE)
        self._conn = self._scripting(handler)
        self.log.info("connected to Redis {redis_version} at {address}", redis_version=version, address=self.address.describe())

    async def _connect_through_sentinels(self) -> None:
        address = self.address
        assert address.master_name is not None
        reactor = _reactor()
        sentinel = FailFastSentinel(address.sentinels, reactor, password=address.sentinel_password)
        try:
            try:
                host, port = await sentinel.discover_master(address.master_name)
            except Exception as e:
                raise RedisUnavailable(f"no primary found through {address.describe()}: {e}") from None
            # The primary found is probed as any Redis is, without retrying.
            found = RedisAddress(host=host, port=port, db=address.db, password=address.password,
                                 username=address.username)
            version = await found.check()
            handler = await self._primary_pool(sentinel, POOL_SIZE)
            if self.min_replicas > 0:
                try:
                    self._acks = await self._primary_pool(sentinel, WAIT_POOL_SIZE)
                except BaseException:
                    await handler.disconnect()
                    raise
        except BaseException:
            await sentinel.disconnect()
            raise
        self._sentinel, self._conn = sentinel, self._scripting(handler)
        self.log.info("connected to Redis {redis_version}, primary {primary} found through {address}",
                      redis_version=version, primary=self.primary, address=address.describe())

    async def _primary_pool(self, sentinel: FailFastSentinel, size: int) -> Any:
        address = self.address
        assert address.master_name is not None
        handler = sentinel.master_for(
            address.master_name, factory_class=PrimaryFactory, dbid=address.db or None, poolsize=size,
            password=address.password, username=address.username, replyTimeout=self.reply_timeout,
            convertNumbers=False)
        filled = handler._factory.deferred  # noqa: SLF001 - fires once the whole pool is connected
        try:
            if filled is not None:
                await filled.addTimeout(CONNECT_TIMEOUT, _reactor())
        except Exception as e:
            await handler.disconnect()
            raise RedisUnavailable(f"cannot connect to the primary through {address.describe()}: {e}") from None
        return handler

    @property
    def reply_timeout(self) -> float:
        """How long a connection may owe a reply before it is given up.

        Longer than a request's deadline, so that one slow answer does not
        cost every command pipelined behind it its connection, yet short
        enough that connections to a primary that froze (SIGSTOP, a full
        disk) are dropped, and the pool finds the new one, within seconds."""
        return 2 * self.command_timeout + 1.0

    def _scripting(self, handler: Any) -> Scripting:
        return Scripting(handler, deadline=self.command_timeout, clock=self._clock or _reactor(),
                         replicas=self.min_replicas, wait_timeout=self.wait_timeout, acks=self._acks)

    async def ping(self) -> bool:
        """True when Redis answers right now (for /health)."""
        if self._conn is None:
            return False
        try:
            answer = await self._conn.ping().addTimeout(2.0, _reactor())
        except Exception:
            return False
        return str(answer).upper() == "PONG"

    async def round_trip(self) -> None:
        """One PING, for the operators' latency figure; raises what the
        command raised (RedisUnavailable, a timeout, a refused command)."""
        await self.conn.ping()

    async def info(self) -> dict[str, str]:
        """Redis's INFO, field by field (``used_memory``, ``redis_version``...)."""
        return info_fields(str(await self.conn.execute_command("INFO")))

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.disconnect()
        if self._acks is not None:
            acks, self._acks = self._acks, None
            await acks.disconnect()
        if self._sentinel is not None:
            sentinel, self._sentinel = self._sentinel, None
            await sentinel.disconnect()


def info_fields(text: str) -> dict[str, str]:
    """The ``field:value`` lines of an INFO reply (its ``# Section`` lines left out)."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and not key.startswith("#"):
            fields[key.strip()] = value.strip()
    return fields
