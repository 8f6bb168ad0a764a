"""The one Redis connection pool of the daemon, and where it points.

txredisapi is wrapped here and nowhere else: it converts number-like strings
unless told not to, and it reconnects forever without telling anybody, so the
start-up check below is what turns "Redis is wrong" into a failed start.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import attrs
import txredisapi
from twisted.logger import Logger

POOL_SIZE = 8
CONNECT_TIMEOUT = 5.0


class RedisUnavailable(Exception):
    """Redis cannot be reached or refuses us; the message says which and where."""


@attrs.frozen
class RedisAddress:
    """Where Redis listens: a TCP host and port, or a unix socket path."""

    host: str | None = None
    port: int = 6379
    path: str | None = None
    db: int = 0
    password: str | None = attrs.field(default=None, repr=False)
    username: str | None = None

    @classmethod
    def from_url(cls, url: str) -> RedisAddress:
        """Parse ``redis://[[user]:password@]host[:port][/db]`` or
        ``unix:///path/to/socket[?db=N&password=P]``."""
        parts = urlsplit(url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        password = unquote(parts.password) if parts.password else query.get("password")
        username = unquote(parts.username) if parts.username else None
        try:
            if parts.scheme == "redis":
                if not parts.hostname:
                    raise ValueError("no host")
                db_text = parts.path.strip("/") or query.get("db", "0")
                return cls(
                    host=parts.hostname,
                    port=parts.port or 6379,
                    db=int(db_text),
                    password=password,
                    username=username or None,
                )
            if parts.scheme == "unix":
                if not parts.path:
                    raise ValueError("no socket path")
                return cls(path=parts.path, db=int(query.get("db", "0")), password=password)
        except ValueError as e:
            raise ValueError(f"bad Redis URL {cls._redact(url)!r}: {e}") from None
        raise ValueError(f"bad Redis URL {cls._redact(url)!r}: use redis://HOST:PORT/DB or unix:///PATH")

    @staticmethod
    def _redact(url: str) -> str:
        parts = urlsplit(url)
        if parts.password:
            return url.replace(f":{parts.password}@", ":***@")
        return url.split("?")[0]

    def describe(self) -> str:
        """The address for log lines and error messages, without the password."""
        if self.path is not None:
            return f"unix://{self.path}?db={self.db}"
        return f"redis://{self.host}:{self.port}/{self.db}"

    def _connect(self, **kwargs: Any) -> Any:
        common = dict(
            dbid=self.db or None,
            password=self.password,
            connectTimeout=CONNECT_TIMEOUT,
            convertNumbers=False,
            **kwargs,
        )
        if self.path is not None:
            return txredisapi.UnixConnectionPool(self.path, **common)
        return txredisapi.ConnectionPool(self.host, self.port, username=self.username, **common)

    async def check(self) -> str:
        """Connect once without retrying and PING; return the server version.

        Raises RedisUnavailable with a reason an operator can act on."""
        try:
            probe = await self._connect(poolsize=1, reconnect=False, replyTimeout=CONNECT_TIMEOUT)
        except Exception as e:
            raise RedisUnavailable(f"cannot connect to Redis at {self.describe()}: {e}") from None
        try:
            info = await probe.info("server")
            if isinstance(info, dict):
                return str(info.get("redis_version", "unknown"))
            for line in str(info).splitlines():
                if line.startswith("redis_version:"):
                    return line.split(":", 1)[1].strip()
            return "unknown"
        except Exception as e:
            raise RedisUnavailable(f"Redis at {self.describe()} does not answer: {e}") from None
        finally:
            await probe.disconnect()

    async def open_pool(self) -> Any:
        """A reconnecting pool; callers have run :meth:`check` first."""
        return await self._connect(poolsize=POOL_SIZE, reconnect=True, replyTimeout=30.0)


class Redis:
    """The daemon's handle on Redis, shared by every store.

    Exposes the txredisapi command API (``await redis.conn.get(k)``) plus the
    few things the daemon itself needs (health)."""

    log = Logger()

    def __init__(self, address: RedisAddress) -> None:
        self.address = address
        self._conn: Any = None

    @property
    def conn(self) -> Any:
        if self._conn is None:
            raise RedisUnavailable("Redis is not connected yet")
        return self._conn

    async def connect(self) -> None:
        version = await self.address.check()
        self._conn = await self.address.open_pool()
        self.log.info("connected to Redis {redis_version} at {address}", redis_version=version, address=self.address.describe())

    async def ping(self) -> bool:
        """True when Redis answers right now (for /health)."""
        if self._conn is None:
            return False
        try:
            answer = await self._conn.ping().addTimeout(2.0, _reactor())
        except Exception:
            return False
        return str(answer).upper() == "PONG"

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.disconnect()


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor
