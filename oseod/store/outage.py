"""While Redis is away: what clients are told, how background loops wait,
and the two log lines an operator reads (gone, back) instead of one
traceback per request or per tick.

Every command fails with :class:`~oseod.model.errors.RedisUnavailable`
at once while the pool has no connection, and within ``[redis]
command_timeout`` otherwise. A transport answers it with
:data:`UNAVAILABLE_TEXT` and a ``Retry-After`` of :data:`RETRY_AFTER`
seconds (SOAP 503 Receiver fault, HTTP 503, FTP 421); the engine and the
schedulers wait with a :class:`Backoff`; :class:`RedisWatch` logs the
outage once, and its end once.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

# What a client is told lives with the error it answers; named here too,
# where the transports read it before oseod.model had it.
from ..model.errors import RETRY_AFTER, UNAVAILABLE_TEXT
from .connection import RedisUnavailable

__all__ = ["RETRY_AFTER", "UNAVAILABLE_TEXT", "WATCH_SECONDS", "Backoff", "RedisWatch", "is_unavailable"]

# How often the watch asks Redis whether it is there.
WATCH_SECONDS = 1.0


def is_unavailable(error: BaseException | None) -> bool:
    """Whether ``error`` says Redis is away (as opposed to a bug)."""
    return isinstance(error, RedisUnavailable)


class Backoff:
    """A background loop's pause after Redis failed it: ``first`` seconds,
    doubled at each failure in a row up to ``most``, over at the first
    success. A loop whose tick comes while :attr:`paused` skips it, so a
    loop ticking every second asks a Redis that is away every few seconds,
    not every tick."""

    def __init__(self, clock: IReactorTime, first: float = 0.5, most: float = 4.0) -> None:
        self._clock = clock
        self._first = first
        self._most = most
        self._delay = 0.0
        self._until = 0.0

    @property
    def paused(self) -> bool:
        return self._clock.seconds() < self._until

    @property
    def failing(self) -> bool:
        """Whether the last attempt failed."""
        return self._delay > 0

    def failed(self) -> float:
        """Another failure: the pause it starts, in seconds."""
        self._delay = min(self._most, self._delay * 2 if self._delay else self._first)
        self._until = self._clock.seconds() + self._delay
        return self._delay

    def succeeded(self) -> None:
        self._delay = 0.0
        self._until = 0.0


class RedisWatch:
    """Asks Redis every :data:`WATCH_SECONDS` whether it answers, and logs
    a warning when it stops and one line when it is back: the daemon's one
    account of an outage, however many requests and ticks it fails."""

    log = Logger()

    def __init__(self, redis: Any, clock: IReactorTime, interval: float = WATCH_SECONDS) -> None:
        self._redis = redis
        self._clock = clock
        self._interval = interval
        self._loop: task.LoopingCall | None = None
        self._done: defer.Deferred[Any] | None = None
        self.since: float | None = None  # when the outage began; None while Redis answers

    @property
    def away(self) -> bool:
        return self.since is not None

    def start(self) -> None:
        self._loop = task.LoopingCall(lambda: defer.ensureDeferred(self.check()))
        self._loop.clock = self._clock
        self._done = self._loop.start(self._interval, now=False)

    async def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
            if self._done is not None:
                await self._done  # a PING in flight settles before Redis closes
        self._loop = None

    async def check(self) -> bool:
        """Ask now; log a change. Never raises (a LoopingCall whose call
        fails stops for good)."""
        try:
            answers = await self._redis.ping()
        except Exception:
            answers = False
        now = self._clock.seconds()
        if not answers and self.since is None:
            self.since = now
            self.log.warn("Redis at {address} does not answer: requests get 503 (Retry-After {retry} s), "
                          "processing and periodic tasks wait until it is back",
                          address=self._redis.address.describe(), retry=RETRY_AFTER)
        elif answers and self.since is not None:
            self.log.info("Redis at {address} answers again after {seconds:.1f} s: service resumed",
                          address=self._redis.address.describe(), seconds=now - self.since)
            self.since = None
        return bool(answers)
