"""The one Redis connection pool of the daemon, and where it points.

txredisapi is wrapped here and nowhere else: it converts number-like strings
unless told not to, and it reconnects forever without telling anybody, so the
start-up check below is what turns "Redis is wrong" into a failed start.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import attrs
import txredisapi
from twisted.internet.defer import Deferred, ensureDeferred, fail
from twisted.python.failure import Failure
from twisted.logger import Logger

from .reconnect import plain_pool
from .refusals import says_unavailable
from .sentinel import FailFastSentinel, PrimaryFactory, format_address
from .tls import RedisTlsError, client_tls_options

POOL_SIZE = 8
# With [redis] min_replicas: the connections that carry the writes a WAIT
# follows. WAIT holds up every command behind it on its connection, and a
# shortfall closes it: apart, neither touches the requests that only read.
WAIT_POOL_SIZE = 4
CONNECT_TIMEOUT = 5.0
# [redis] command_timeout's default: how long a request waits for Redis.
COMMAND_TIMEOUT = 2.0
# [redis] wait_timeout's default: how long WAIT waits for the replicas.
WAIT_TIMEOUT = 0.5
SENTINEL_SCHEME = "redis+sentinel"
SENTINEL_PORT = 26379


class RedisUnavailable(Exception):
    """Redis cannot be reached or refuses us; the message says which and where.

    Raised by every command while the pool holds no live connection, and by
    a command that has no answer within ``[redis] command_timeout``: the
    caller answers "try again later" (SOAP 503, FTP 421) instead of waiting.
    A write that timed out may still have been carried out."""


class ReplicationShortfall(RedisUnavailable):
    """A write was made on the primary but fewer replicas than ``[redis]
    min_replicas`` confirmed it within ``wait_timeout``: a failover now
    could lose it, so the client is not told it was done (retryable, 503).
    ``reply``: what the script answered (its caller may undo the write);
    ``replicas``: how many had it."""

    def __init__(self, message: str, *, reply: Any = None, replicas: int = 0) -> None:
        super().__init__(message)
        self.reply = reply
        self.replicas = replicas


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


class Redis:
    """The daemon's handle on Redis, shared by every store.

    Exposes the txredisapi command API (``await redis.conn.get(k)``) plus the
    few things the daemon itself needs (health)."""

    log = Logger()

    def __init__(self, address: RedisAddress, *, command_timeout: float = COMMAND_TIMEOUT,
                 clock: Any = None, min_replicas: int = 0, wait_timeout: float = WAIT_TIMEOUT) -> None:
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


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


class _Script:
    """A Lua script's EVALSHA and EVAL command heads, encoded once."""

    __slots__ = ("evalsha", "eval", "loaded")

    def __init__(self, source: str) -> None:
        body = source.encode()
        sha = hashlib.sha1(body).hexdigest().encode()
        self.evalsha = _bulk(b"EVALSHA") + _bulk(sha)
        self.eval = _bulk(b"EVAL") + _bulk(body)
        self.loaded = False  # whether Redis has been seen to know it


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(value), value)


def _encoded(value: object) -> bytes:
    # As txredisapi encodes arguments (its charset is UTF-8, floats "%f").
    if value.__class__ is str:
        return value.encode()  # type: ignore[attr-defined, no-any-return]
    if isinstance(value, bytes):
        return value
    if isinstance(value, float):
        return format(value, "f").encode()
    return str(value).encode()


class Scripting:
    """txredisapi's connection pool, every command with a deadline, and EVAL
    done faster.

    Deadline: txredisapi queues a command without limit while no connection
    is up, and waits up to the reply timeout for one that is sent. Here a
    command fails at once with :class:`RedisUnavailable` when the pool has
    no live connection, and otherwise when its answer has not come within
    ``deadline`` seconds. The late answer is dropped, never cancelled: a
    cancelled reply would hand the next command on that connection the
    wrong answer. Commands that lend a connection out (MULTI, WATCH) only
    fail fast, since one lent out past its deadline would never come back.

    EVAL:

    A script is the one command most requests send (a Submit sends only
    its create script), and txredisapi's way costs more than the rest of the
    request's Redis work: a SHA-1 of the whole script on each call, a
    generator and four Deferreds to pick a connection and wait for the
    reply, and an argument encoder that looks every value up twice. Here the
    script's command head is encoded once, the command written to one of
    the pool's free connections in one piece, and its reply taken from that
    connection's reply queue, in the order the protocol hands replies out.
    A connection lent out for a transaction (MULTI) is not free, so no
    command lands inside one. Without a free connection the call goes the
    txredisapi way.

    WAIT (``[redis] min_replicas``): see :meth:`eval`'s ``acknowledged``."""

    log = Logger()

    def __init__(self, handler: Any, *, deadline: float = COMMAND_TIMEOUT, clock: Any = None,
                 replicas: int = 0, wait_timeout: float = WAIT_TIMEOUT, acks: Any = None) -> None:
        """``acks``: the pool for the writes WAIT follows (None: ``handler``'s)."""
        self._handler = handler
        self._factory = handler._factory  # noqa: SLF001 - its pool, to lend a connection out
        self._acks_factory = self._factory if acks is None else acks._factory  # noqa: SLF001
        self._scripts: dict[str, _Script] = {}
        self._deadline = deadline
        self._clock = clock or _reactor()
        self.replicas = replicas
        self._wait_ms = max(1, int(wait_timeout * 1000))
        # WAIT's own time on top of the script's deadline.
        self._acknowledged_deadline = deadline + wait_timeout

    def __getattr__(self, name: str) -> Any:
        command = getattr(self._handler, name)
        if name.startswith("_") or name == "disconnect" or not callable(command):
            return command
        method = getattr(self._factory.protocol, name, None)
        lends = getattr(method, "_blocking", False) and not getattr(method, "_release_on_callback", True)

        def call(*args: Any, **kwargs: Any) -> Deferred[Any]:
            if not self._factory.size:
                return fail(self._unreachable())
            if lends:
                return command(*args, **kwargs)  # type: ignore[no-any-return]
            return self._within_deadline(command(*args, **kwargs))

        return call

    def _unreachable(self) -> RedisUnavailable:
        return RedisUnavailable("Redis is not reachable")

    def _within_deadline(self, answer: Deferred[Any], deadline: float | None = None) -> Deferred[Any]:
        result: Deferred[Any] = Deferred()
        seconds = self._deadline if deadline is None else deadline

        def late() -> None:
            result.errback(RedisUnavailable(f"Redis did not answer within {seconds:g} s"))

        timer = self._clock.callLater(seconds, late)

        def settle(outcome: Any) -> None:
            if not result.called:
                timer.cancel()
                result.callback(_unavailable(outcome))  # a Failure errbacks
            elif isinstance(outcome, Failure):
                outcome.trap(Exception)  # answered too late: nobody waits for it

        answer.addBoth(settle)
        return result

    def eval(self, source: str, keys: Sequence[str] = (), args: Sequence[object] = (), *,
             acknowledged: bool = False) -> Deferred[Any]:
        """Run a Lua script. ``acknowledged``: the client is told of what it
        writes, so with ``[redis] min_replicas`` it is followed by WAIT on
        the same connection (:meth:`_eval_acknowledged`)."""
        if acknowledged and self.replicas > 0:
            if not self._acks_factory.size:
                return fail(self._unreachable())
            return self._within_deadline(ensureDeferred(self._eval_acknowledged(source, keys, args)),
                                         self._acknowledged_deadline)
        if not self._factory.size:
            return fail(self._unreachable())
        return self._within_deadline(self._eval(source, keys, args))

    def _script(self, source: str) -> _Script:
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = _Script(source)
        return script

    def _free_connection(self, factory: Any = None) -> Any:
        free = (factory or self._factory).connectionQueue.pending
        if not free:
            return None
        connection = random.choice(free)
        return connection if connection.connected else None

    async def _eval_acknowledged(self, source: str, keys: Sequence[str], args: Sequence[object]) -> Any:
        """The script, then ``WAIT replicas wait_ms``, written together on one
        connection: WAIT counts the replicas that have every write made
        before it on its own connection, and only there (a WAIT on another
        pooled connection proves nothing). Too few: the connection is
        closed (the pool makes a new one, finding the primary again) and
        ReplicationShortfall raised, carrying the script's reply."""
        script = self._script(source)
        factory = self._acks_factory
        connection = self._free_connection(factory)
        if connection is None:  # none connected just now: the next one up
            connection = await factory.getConnection(peek=True)
        wait = b"*3\r\n$4\r\nWAIT\r\n" + _bulk(b"%d" % self.replicas) + _bulk(b"%d" % self._wait_ms)
        tail = _tail(keys, args)
        head = script.evalsha if script.loaded else script.eval
        answer, waited = _replies(connection, b"".join([tail[0], head, *tail[1:], wait]), 2)
        try:
            reply = await answer
        except txredisapi.ResponseError as e:
            if not (script.loaded and str(e).startswith("NOSCRIPT")):
                _ignored(waited)
                raise
            _ignored(waited)
            # Redis forgot its scripts: send it whole, with its WAIT.
            script.loaded = False
            answer, waited = _replies(connection, b"".join([tail[0], script.eval, *tail[1:], wait]), 2)
            try:
                reply = await answer
            except BaseException:
                _ignored(waited)
                raise
        except BaseException:
            _ignored(waited)  # the connection went: WAIT's reply fails the same way
            raise
        script.loaded = True
        replicas = int(await waited)
        if replicas < self.replicas:
            self.log.warn("a write reached {replicas} of the {wanted} replicas [redis] min_replicas asks for "
                          "within {ms} ms: not acknowledged; dropping that connection", replicas=replicas,
                          wanted=self.replicas, ms=self._wait_ms)
            _drop(factory, connection)
            raise ReplicationShortfall(
                f"the write reached {replicas} of {self.replicas} replicas within {self._wait_ms} ms",
                reply=reply, replicas=replicas)
        return reply

    def _eval(self, source: str, keys: Sequence[str], args: Sequence[object]) -> Deferred[Any]:
        script = self._script(source)
        connection = self._free_connection()
        if connection is None:
            return self._handler.eval(source, keys, args)  # type: ignore[no-any-return]
        tail = _tail(keys, args)
        count, tail = tail[0], tail[1:]
        if script.loaded:
            return _reply(connection, b"".join([count, script.evalsha, *tail])).addErrback(
                self._unknown, source, script, keys, args)
        answer = _reply(connection, b"".join([count, script.eval, *tail]))
        answer.addCallback(_loaded, script)
        return answer

    def _unknown(self, failure: Any, source: str, script: _Script, keys: Sequence[str],
                 args: Sequence[object]) -> Any:
        # Redis forgot its scripts (a restart, SCRIPT FLUSH): send it whole again.
        if failure.check(txredisapi.ResponseError) and str(failure.value).startswith("NOSCRIPT"):
            script.loaded = False
            return self._eval(source, keys, args)
        return failure


def _ignored(answer: Deferred[Any]) -> None:
    """Nobody waits for ``answer`` any more: its failure is not an error to log."""
    answer.addErrback(lambda failure: None)


def _drop(factory: Any, connection: Any) -> None:
    """Close ``connection`` and lend it to no command from now on (the pool
    only notices a connection is gone once it has gone)."""
    free = factory.connectionQueue.pending
    if connection in free:
        free.remove(connection)
    if connection.transport is not None:
        connection.transport.loseConnection()


def _tail(keys: Sequence[str], args: Sequence[object]) -> list[bytes]:
    """An EVAL's array header, then its arguments after the script."""
    tail = [_bulk(str(len(keys)).encode())]
    tail += [_bulk(_encoded(value)) for value in keys]
    tail += [_bulk(_encoded(value)) for value in args]
    return [b"*%d\r\n" % (len(tail) + 2), *tail]


def _unavailable(outcome: Any) -> Any:
    """``outcome``, with the ways Redis says it is away made RedisUnavailable."""
    if not isinstance(outcome, Failure):
        return outcome
    error = outcome.value
    if isinstance(error, (txredisapi.ConnectionError, txredisapi.TimeoutError)):
        # A command that was sent may have run before the connection went.
        return Failure(RedisUnavailable(f"lost the connection to Redis: {error}"))
    if says_unavailable(error):
        return Failure(RedisUnavailable(f"Redis cannot take it now: {error}"))
    return outcome


def _loaded(reply: Any, script: _Script) -> Any:
    script.loaded = True
    return reply


def _reply(connection: Any, command: bytes) -> Deferred[Any]:
    """Write ``command`` on ``connection``; its reply. A reply that does not
    come within the connection's reply timeout aborts the connection, which
    fails every reply it owes (as txredisapi does)."""
    return _replies(connection, command, 1)[0]


def _replies(connection: Any, commands: bytes, count: int) -> list[Deferred[Any]]:
    """Write ``commands`` (``count`` of them, in one piece) on
    ``connection``; their replies, in order: taken from its reply queue at
    once, so no other command's reply can come between them."""
    connection.transport.write(commands)
    answers = []
    for _ in range(count):
        answer: Deferred[Any] = connection.replyQueue.get()
        timeout = connection.replyTimeout
        if timeout:
            call = connection.callLater(timeout, connection.transport.abortConnection)
            answer.addBoth(_settled, call)
        answer.addCallback(_raised)
        answers.append(answer)
    return answers


def _settled(result: Any, call: Any) -> Any:
    if call.active():
        call.cancel()
    return result


def _raised(reply: Any) -> Any:
    if isinstance(reply, Exception):
        raise reply
    return reply
