"""The outbox's sender: takes due messages from Redis and hands each to its
channel (a status call-back, ...), with retries and backoff.

Every daemon on the Redis sends; a queue is claimed by one at a time (see
:mod:`oseod.store.outbox`). A message that fails is tried again after
``retry_delay`` seconds, doubled each attempt, up to ``max_attempts``; then
it is given up and recorded. Deliveries to one destination (a client's
host) are limited (``per_destination`` at once, three times as many waiting
their turn); beyond that a message is put back for a moment without counting
an attempt, so that one slow or dead client never takes all the places.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Interface

from ..metrics import Sample
from ..model.outbox import OutboxMessage
from ..store.outage import Backoff, is_unavailable
from ..store.outbox import OutboxStore

POLL_SECONDS = 1.0
BUSY_RETRY_SECONDS = 0.5
# A destination may have this many times per_destination deliveries running
# or waiting their turn here; then what is claimed for it goes back.
WAITING_SHARE = 4


class Undeliverable(Exception):
    """This message can never be delivered (its order is gone, its target
    is refused): given up on at once, without retries."""


class IOutboxChannel(Interface):
    """How one kind of message goes out."""

    def destination(message: OutboxMessage) -> str:
        """Who receives it (a host name): deliveries to one destination are
        limited together."""

    async def deliver(message: OutboxMessage) -> None:  # type: ignore[misc]
        """Send ``message``; raise (with a one-line reason) when it did not
        arrive, it is then tried again."""


class OutboxSender:
    log = Logger()

    def __init__(self, store: OutboxStore, channels: Mapping[str, Any], clock: IReactorTime, *, max_attempts: int,
                 retry_delay: float, timeout: float, concurrency: int = 256, per_destination: int = 32) -> None:
        self._store = store
        self._channels = dict(channels)
        self._clock = clock
        self._max_attempts = max_attempts
        self._retry_delay = retry_delay
        # A claimed message is ours until the lease ends: long enough for a
        # delivery that runs into its timeout, with room to spare.
        self._lease = max(60.0, 4 * timeout)
        self._concurrency = concurrency
        self._per_destination = per_destination
        self._busy: dict[str, int] = {}  # per destination: deliveries running or waiting
        self._slots: dict[str, defer.DeferredSemaphore] = {}
        self._running: set[defer.Deferred[None]] = set()
        self._loop: task.LoopingCall | None = None
        self._polling: defer.Deferred[None] | None = None
        self._again = False
        self._full: set[str] = set()  # destinations that had more claimed than they may take
        self._stopped = False
        self._backoff = Backoff(clock)

    # ------------------------------------------------------------ life

    def start(self) -> None:
        self._stopped = False
        self._loop = task.LoopingCall(self.wake)
        self._loop.clock = self._clock
        self._loop.start(POLL_SECONDS, now=True)

    async def stop(self) -> None:
        """Stop taking messages; those being sent are left to finish (or,
        if the process ends first, to be sent again by whoever comes next)."""
        self._stopped = True
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        # A claim in flight settles first: Redis stops after the sender, and a
        # claim cut off by that would be logged as a failure.
        if self._polling is not None:
            await defer.DeferredList([self._polling], consumeErrors=True)
        for channel in self._channels.values():
            close = getattr(channel, "close", None)
            if close is not None:
                await close()

    async def drain(self) -> None:
        """Wait for what has been taken to be delivered or put back (tests)."""
        while self._running or self._polling is not None:
            waiting = list(self._running) + ([self._polling] if self._polling is not None else [])
            await defer.DeferredList(waiting)

    def wake(self) -> None:
        """Look for due messages now."""
        if self._stopped:
            return
        if self._polling is not None:
            self._again = True
            return
        if self._backoff.paused:
            return  # Redis was away a moment ago: the timer looks again after the pause
        self._polling = defer.ensureDeferred(self._poll())

        def done(result: object) -> None:
            self._polling = None
            if isinstance(result, Failure) and is_unavailable(result.value):
                # Said once by the store's RedisWatch; the sender pauses, longer
                # at each failure in a row, and resumes by itself.
                pause = self._backoff.failed()
                self.log.debug("the outbox waits {pause:g} s for Redis: {error}", pause=pause,
                               error=str(result.value))
            elif isinstance(result, Failure):
                self.log.failure("taking messages from the outbox failed; trying again shortly", result)
            else:
                self._backoff.succeeded()
            if not isinstance(result, Failure) and self._again:
                self._again = False
                self.wake()

        self._polling.addBoth(done)

    # ------------------------------------------------------------ sending

    async def _poll(self) -> None:
        # A few at a time, not every free place: all of them might be for one
        # destination, and what it cannot take goes straight back.
        free = min(self._concurrency - len(self._running), self._per_destination)
        if free <= 0:
            return
        for message in await self._store.claim(self._clock.seconds(), self._lease, free):
            if self._stopped:
                break  # stopped meanwhile: the claimed ones are sent when their lease ends
            sending = defer.ensureDeferred(self._send(message))
            self._running.add(sending)
            sending.addBoth(self._finished, sending)

    def _finished(self, result: object, sending: defer.Deferred[None]) -> None:
        self._running.discard(sending)
        if isinstance(result, Failure) and is_unavailable(result.value):
            self.log.warn("outbox bookkeeping failed, Redis is away; the message will be sent again: {error}",
                          error=str(result.value))
        elif isinstance(result, Failure):
            self.log.failure("outbox bookkeeping failed; the message will be sent again", result)
        elif not self._full:
            self.wake()  # a place is free, and the queue may hold more
        # Else a destination is full: looking again at every end of a
        # delivery would claim and put back its messages over and over. The
        # timer looks for the others' messages; the full one wakes the sender
        # when it has room again (in _send).

    async def _send(self, message: OutboxMessage) -> None:
        channel = self._channels.get(message.channel)
        if channel is None:
            await self._store.give_up(message, self._clock.seconds(), f"no channel {message.channel!r}")
            return
        destination = str(channel.destination(message))
        # Up to per_destination deliveries run, three times as many wait their
        # turn here (holding their lease: a claim is not wasted on a busy
        # host); beyond that a message goes back to the queue for a moment,
        # without spending an attempt. With the default concurrency, one
        # destination, however slow or dead, holds at most half the places.
        if self._busy.get(destination, 0) >= WAITING_SHARE * self._per_destination:
            self._full.add(destination)
            await self._store.postpone(message, self._clock.seconds() + BUSY_RETRY_SECONDS)
            return
        self._busy[destination] = self._busy.get(destination, 0) + 1
        if self._busy[destination] >= WAITING_SHARE * self._per_destination:
            self._full.add(destination)  # no more for it until it has room again
        slots = self._slots.setdefault(destination, defer.DeferredSemaphore(self._per_destination))
        final = False
        try:
            await slots.acquire()
            try:
                await channel.deliver(message)
            finally:
                slots.release()
        except Exception as e:
            error, final = str(e) or type(e).__name__, isinstance(e, Undeliverable)
        else:
            error = ""
        finally:
            self._busy[destination] -= 1
            if not self._busy[destination]:
                del self._busy[destination]
                del self._slots[destination]
            if destination in self._full and self._busy.get(destination, 0) <= (WAITING_SHARE - 1) * self._per_destination:
                # Its waiting ones have all started: room for another batch.
                self._full.discard(destination)
                self.wake()
        now = self._clock.seconds()
        if not error:
            await self._store.done(message, now)
            return
        attempts = message.attempts + 1
        if final or attempts >= self._max_attempts:
            await self._store.give_up(message, now, error)
            self.log.warn("gave up on {channel} message {seq} of {name} after {attempts} attempts: {error}",
                          channel=message.channel, seq=message.seq, name=message.name, attempts=attempts, error=error)
            return
        delay = self._retry_delay * 2 ** (attempts - 1)
        await self._store.retry(message, now + delay, error, now=now)
        self.log.info("{channel} message {seq} of {name} not delivered ({error}); attempt {next} in {delay:g} s",
                      channel=message.channel, seq=message.seq, name=message.name, error=error, next=attempts + 1,
                      delay=delay)

    # ------------------------------------------------------------ visibility

    async def samples(self) -> list[Sample]:
        pending = await self._store.pending()
        counters = await self._store.counters()
        found = [Sample("oseod_outbox_queues", "Queues with messages to send (one per order and channel).",
                        float(pending.get(channel, 0)), (("channel", channel),)) for channel in sorted(self._channels)]
        for channel in sorted(self._channels):
            for outcome, text in (("sent", "Messages delivered."), ("retried", "Failed attempts tried again."),
                                  ("failed", "Messages given up on after the last attempt.")):
                found.append(Sample(f"oseod_outbox_{outcome}_total", text, float(counters.get(f"{channel}:{outcome}", 0)),
                                    (("channel", channel),), "counter"))
        return found
