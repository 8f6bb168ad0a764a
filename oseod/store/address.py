"""Where Redis is: a URL from the configuration, parsed, and checked once
at start (a connection without retries, so a wrong address fails the start
with a reason instead of a pool reconnecting forever)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import attrs
import txredisapi

from .reconnect import plain_pool
from .refusals import RedisUnavailable
from .sentinel import format_address
from .tls import RedisTlsError, client_tls_options

POOL_SIZE = 8
CONNECT_TIMEOUT = 5.0
SENTINEL_SCHEME = "redis+sentinel"
SENTINEL_PORT = 26379


@attrs.frozen
class RedisAddress:
    """Where Redis listens: a TCP host and port, a unix socket path, or the
    sentinels that know which server is the primary of ``master_name``."""

    host: str | None = None
    port: int = 6379
    path: str | None = None
    db: int = 0
    password: str | None = attrs.field(default=None, repr=False)
    username: str | None = None
    sentinels: tuple[tuple[str, int], ...] = ()
    master_name: str | None = None
    sentinel_password: str | None = attrs.field(default=None, repr=False)
    # rediss://: TLS, with these files ("": the system's CAs, no client certificate).
    tls: bool = False
    ca_file: str = ""
    certificate: str = ""
    private_key: str = ""

    @classmethod
    def from_config(cls, url: str, redis: Any) -> RedisAddress:
        """:meth:`from_url` with the [redis] section's sentinel password and TLS files."""
        address = cls.from_url(url, sentinel_password=redis.sentinel_password)
        if not address.tls:
            return address
        return attrs.evolve(address, ca_file=redis.ca_file, certificate=redis.certificate,
                            private_key=redis.private_key)

    @classmethod
    def from_url(cls, url: str, *, sentinel_password: str | None = None) -> RedisAddress:
        """Parse ``redis[s]://[[user]:password@]host[:port][/db]``,
        ``unix:///path/to/socket[?db=N&password=P]`` or
        ``redis+sentinel://[[user]:password@]h1:p1,h2:p2,.../master[/db]``.

        The password is the data nodes'; the sentinels' own is
        ``sentinel_password`` (``[redis] sentinel_password``, or the URL's
        ``?sentinel_password=`` which wins)."""
        if url.startswith(SENTINEL_SCHEME + "://"):
            try:
                return cls._from_sentinel_url(url, sentinel_password)
            except ValueError as e:
                raise ValueError(f"bad Redis URL {cls._redact(url)!r}: {e}") from None
        parts = urlsplit(url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        password = unquote(parts.password) if parts.password else query.get("password")
        username = unquote(parts.username) if parts.username else None
        try:
            if parts.scheme in ("redis", "rediss"):
                if not parts.hostname:
                    raise ValueError("no host")
                db_text = parts.path.strip("/") or query.get("db", "0")
                return cls(
                    host=parts.hostname,
                    port=parts.port or 6379,
                    db=int(db_text),
                    password=password,
                    username=username or None,
                    tls=parts.scheme == "rediss",
                )
            if parts.scheme == "unix":
                if not parts.path:
                    raise ValueError("no socket path")
                return cls(path=parts.path, db=int(query.get("db", "0")), password=password)
        except ValueError as e:
            raise ValueError(f"bad Redis URL {cls._redact(url)!r}: {e}") from None
        raise ValueError(f"bad Redis URL {cls._redact(url)!r}: use redis[s]://HOST:PORT/DB, unix:///PATH "
                         f"or {SENTINEL_SCHEME}://HOST:PORT,HOST:PORT,.../MASTER/DB")

    @classmethod
    def _from_sentinel_url(cls, url: str, sentinel_password: str | None) -> RedisAddress:
        # By hand: urlsplit knows one host per URL, not a list of them.
        rest, _, query_text = url[len(SENTINEL_SCHEME) + 3:].partition("?")
        query = {k: v[-1] for k, v in parse_qs(query_text).items()}
        userinfo, at, location = rest.rpartition("@")
        username = password = None
        if at:
            if ":" not in userinfo:
                raise ValueError("the password goes after a colon: redis+sentinel://:PASSWORD@...")
            user_text, _, password_text = userinfo.partition(":")
            username, password = unquote(user_text) or None, unquote(password_text)
        hosts_text, _, path = location.partition("/")
        if not hosts_text:
            raise ValueError("no sentinel addresses")
        sentinels = tuple(_host_port(item, SENTINEL_PORT) for item in hosts_text.split(","))
        master_text, _, db_text = path.strip("/").partition("/")
        master_name = unquote(master_text)
        if not master_name:
            raise ValueError("no master name after the sentinel addresses")
        if "/" in db_text:
            raise ValueError("expected /MASTER or /MASTER/DB")
        return cls(sentinels=sentinels, master_name=master_name, db=int(db_text or query.get("db", "0")),
                   password=password if password is not None else query.get("password"), username=username,
                   sentinel_password=query.get("sentinel_password", sentinel_password or None))

    @staticmethod
    def _redact(url: str) -> str:
        # Neither the user information nor the query (?password=) is shown.
        scheme, separator, rest = url.partition("://")
        rest = rest.split("?")[0]
        userinfo, at, location = rest.rpartition("@")
        if at:  # a lone word before the @ may well be a password too
            user = userinfo.partition(":")[0] + ":" if ":" in userinfo else ""
            rest = f"{user}***@{location}"
        return scheme + separator + rest

    def describe(self) -> str:
        """The address for log lines and error messages, without the password."""
        if self.path is not None:
            return f"unix://{self.path}?db={self.db}"
        if self.master_name is not None:
            hosts = ",".join(format_address(address) for address in self.sentinels)
            return f"{SENTINEL_SCHEME}://{hosts}/{self.master_name}/{self.db}"
        return f"{'rediss' if self.tls else 'redis'}://{self.host}:{self.port}/{self.db}"

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
        if self.tls:
            assert self.host is not None
            common["ssl_context_factory"] = client_tls_options(
                self.host, ca_file=self.ca_file, certificate=self.certificate, private_key=self.private_key)
        return txredisapi.ConnectionPool(self.host, self.port, username=self.username, **common)

    async def check(self) -> str:
        """Connect once without retrying and PING; return the server version.

        Raises RedisUnavailable with a reason an operator can act on."""
        try:
            probe = await self._connect(poolsize=1, reconnect=False, replyTimeout=CONNECT_TIMEOUT)
        except RedisTlsError as e:
            raise RedisUnavailable(f"cannot connect to Redis at {self.describe()}: {e}") from None
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
            # txredisapi reports a failed TLS handshake as a lost connection.
            hint = " (TLS: is the certificate signed by redis.ca_file, for this host name?)" if self.tls else ""
            raise RedisUnavailable(f"Redis at {self.describe()} does not answer: {e}{hint}") from None
        finally:
            await probe.disconnect()

    async def open_pool(self, reply_timeout: float, size: int = POOL_SIZE) -> Any:
        """A reconnecting pool; callers have run :meth:`check` first. Its
        factory keeps reconnecting after an AUTH or SELECT cut off by a lost
        connection, and drops a connection that answers READONLY
        (:mod:`.reconnect`)."""
        tls = None
        if self.tls:
            assert self.host is not None
            tls = client_tls_options(self.host, ca_file=self.ca_file, certificate=self.certificate,
                                     private_key=self.private_key)
        return await plain_pool(path=self.path, host=self.host, port=self.port, dbid=self.db or None,
                                poolsize=size, password=self.password, username=self.username,
                                connect_timeout=CONNECT_TIMEOUT, reply_timeout=reply_timeout, tls=tls)


def _host_port(text: str, default_port: int) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port``."""
    if text.startswith("["):
        host, bracket, port_text = text[1:].partition("]")
        if not bracket or (port_text and not port_text.startswith(":")):
            raise ValueError(f"bad address {text!r}")
        port_text = port_text[1:]
    else:
        host, _, port_text = text.partition(":")
        if ":" in port_text:
            raise ValueError(f"bad address {text!r}: an IPv6 address goes in brackets")
    if not host:
        raise ValueError(f"bad address {text!r}: no host")
    port = int(port_text) if port_text else default_port
    if not 0 < port < 65536:
        raise ValueError(f"bad address {text!r}: port out of range")
    return host, port
