"""Commands to Redis with a deadline, and scripts sent the fast way: the
wrapper every store's ``redis.conn`` is."""

from __future__ import annotations

import collections
import hashlib
import random
from collections.abc import Callable, Sequence
from typing import Any

import txredisapi
from twisted.internet.abstract import FileDescriptor
from twisted.internet.defer import Deferred, ensureDeferred, fail
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from .refusals import RedisUnavailable, ReplicationShortfall, says_unavailable

# [redis] command_timeout's default: how long a request waits for Redis.
COMMAND_TIMEOUT = 2.0
# [redis] wait_timeout's default: how long WAIT waits for the replicas.
WAIT_TIMEOUT = 0.5


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


class _Deadlines:
    """When the answers awaited are due, for thousands of commands a second.

    A timer per command (callLater, then its cancel) cost more than the rest
    of the deadline. Each deadline length keeps its commands in the order
    they were sent, which is the order they fall due: one timer, armed for
    the oldest, goes through those due and skips the ones answered."""

    def __init__(self, clock: IReactorTime, late: Callable[[Deferred[Any], float], None]) -> None:
        self._clock = clock
        self._late = late
        self._queues: dict[float, collections.deque[tuple[float, Deferred[Any]]]] = {}
        self._timer: Any = None

    def watch(self, result: Deferred[Any], seconds: float) -> None:
        queue = self._queues.get(seconds)
        if queue is None:
            queue = self._queues[seconds] = collections.deque()
        due = self._clock.seconds() + seconds
        queue.append((due, result))
        if self._timer is None:
            self._timer = self._clock.callLater(seconds, self._expire)

    def _expire(self) -> None:
        self._timer = None
        now = self._clock.seconds()
        late: list[tuple[Deferred[Any], float]] = []
        next_due: float | None = None
        for seconds, queue in self._queues.items():
            while queue and (queue[0][1].called or queue[0][0] <= now):
                due, result = queue.popleft()
                if not result.called:
                    late.append((result, seconds))
            if queue:
                next_due = queue[0][0] if next_due is None else min(next_due, queue[0][0])
        if next_due is not None:
            self._timer = self._clock.callLater(max(0.0, next_due - now), self._expire)
        for result, seconds in late:
            if not result.called:  # (an earlier one's cut may have failed it already)
                self._late(result, seconds)


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

    def __init__(self, handler: Any, *, deadline: float = COMMAND_TIMEOUT, clock: IReactorTime | None = None,
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
        self._deadlines = _Deadlines(self._clock, self._late)

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
        self._deadlines.watch(result, seconds)
        answer.addBoth(_settle, result)
        return result

    def _late(self, result: Deferred[Any], seconds: float) -> None:
        result.errback(RedisUnavailable(f"Redis did not answer within {seconds:g} s"))
        self._cut_off()

    def _cut_off(self) -> None:
        """A deadline passed: the server is cut off, every connection to it.

        A healthy Redis answers in milliseconds; one that owes a reply for
        seconds is frozen or unreachable, and every connection of the pool
        goes to it. Waiting for the reply timeout would keep pipelining
        commands to it, and a primary resumed after Sentinel promoted
        another would take them, acknowledge them (a replica not yet moved
        satisfies WAIT) and lose them when it is demoted. Cut with a reset,
        what it has not read yet is dropped with the connection, and the
        pool reconnects to whatever the address or the sentinels name now."""
        for factory in {id(self._factory): self._factory, id(self._acks_factory): self._acks_factory}.values():
            for connection in list(factory.pool):
                _drop(factory, connection, reset=True)

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
        by_sha = script.loaded
        head = script.evalsha if by_sha else script.eval
        answer, waited = _replies(connection, b"".join([tail[0], head, *tail[1:], wait]), 2)
        try:
            reply = await answer
        except txredisapi.ResponseError as e:
            # (What this call sent decides: a concurrent one may have changed loaded.)
            if not (by_sha and str(e).startswith("NOSCRIPT")):
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


def _settle(outcome: Any, result: Deferred[Any]) -> None:
    if not result.called:
        result.callback(_unavailable(outcome))  # a Failure errbacks
    elif isinstance(outcome, Failure):
        outcome.trap(Exception)  # answered too late: nobody waits for it


def _ignored(answer: Deferred[Any]) -> None:
    """Nobody waits for ``answer`` any more: its failure is not an error to log."""
    answer.addErrback(lambda failure: None)


def _drop(factory: Any, connection: Any, *, reset: bool = False) -> None:
    """Close ``connection`` (``reset``: at once, what it has not sent
    dropped) and lend it to no command from now on (the pool only notices a
    connection is gone once it has gone)."""
    free = factory.connectionQueue.pending
    if connection in free:
        free.remove(connection)
    if connection.transport is not None:
        if reset:
            connection.transport.abortConnection()
        else:
            connection.transport.loseConnection()


def _tail(keys: Sequence[str], args: Sequence[object]) -> list[bytes]:
    """An EVAL's array header, then its arguments after the script.

    The arguments are text (a Submit sends some thirty): written as one
    string and encoded once, a bulk's length counted in characters when
    they are ASCII (as they mostly are) and in UTF-8 bytes otherwise;
    bytes among them take the general way."""
    texts = [str(len(keys))]
    for values in (keys, args):
        for value in values:
            if value.__class__ is str:
                texts.append(value)  # type: ignore[arg-type]
            elif isinstance(value, bytes):
                return _bytes_tail(keys, args)
            elif isinstance(value, float):
                texts.append(format(value, "f"))  # as _encoded
            else:
                texts.append(str(value))
    frame = "".join([f"${len(text) if text.isascii() else len(text.encode())}\r\n{text}\r\n" for text in texts])
    return [b"*%d\r\n" % (len(texts) + 2), frame.encode()]


def _bytes_tail(keys: Sequence[str], args: Sequence[object]) -> list[bytes]:
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
    """Write ``command`` on ``connection``; its reply."""
    return _replies(connection, command, 1)[0]


def _replies(connection: Any, commands: bytes, count: int) -> list[Deferred[Any]]:
    """Write ``commands`` (``count`` of them, in one piece) on
    ``connection``; their replies, in order: taken from its reply queue at
    once, so no other command's reply can come between them.

    No timer per reply, as txredisapi sets (its reply timeout): every caller
    waits under a Scripting deadline (by default the shorter), and a
    deadline missed cuts every connection of the pool
    (``Scripting._cut_off``), which fails each reply they owe."""
    _send(connection.transport, commands)
    answers = []
    for _ in range(count):
        answer: Deferred[Any] = connection.replyQueue.get()
        answer.addCallback(_raised)
        answers.append(answer)
    return answers


def _send(transport: Any, data: bytes) -> None:
    """Write ``data`` on ``transport``, sent at once when nothing waits to
    be sent before it.

    A transport's write only buffers: the reactor is asked to watch the
    socket for writing (an epoll_ctl), sends on its next turn, and stops
    watching (another). For a command that is one small piece, two thirds
    of the system calls of sending it, and a few percent of a GetStatus.
    A socket that does not take it all, or fails, gets the rest the usual
    way, which also reports the failure; a transport without a socket of
    its own (TLS) or with anything pending always does."""
    # A plain socket's transport only: a TLS connection (startTLS sets TLS)
    # must go through its TLS layer, and a wrapper (TLSMemoryBIOProtocol)
    # would hand out the socket beneath it.
    sock: Any = getattr(transport, "socket", None) if isinstance(transport, FileDescriptor) and not getattr(transport, "TLS", False) else None
    if (sock is not None and not transport.dataBuffer and getattr(transport, "_tempDataLen", None) == 0
            and transport.connected and not transport.disconnecting and transport.producer is None
            and not getattr(transport, "_sendmsgQueue", None)):
        try:
            sent = sock.send(data)
        except OSError:
            sent = 0
        if sent == len(data):
            return
        data = data[sent:]
    transport.write(data)


def _raised(reply: Any) -> Any:
    if isinstance(reply, Exception):
        raise reply
    return reply
