"""Server-Sent Events: one event every few seconds, for as long as the
client listens and its session lasts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

# Produces the next event's data (one line of JSON), or None: the stream ends.
Produce = Callable[[], Awaitable[str | None]]


def event(name: str, data: str) -> bytes:
    lines = "".join(f"data: {line}\n" for line in data.splitlines() or [""])
    return f"event: {name}\n{lines}\n".encode()


class Recent:
    """The value of ``compute`` as last computed, while it is younger than
    ``max_age`` seconds on ``clock``: every open console's stream asks for
    the overview each tick, and a dozen Redis commands once per tick are
    enough for all of them."""

    def __init__(self, compute: Callable[[], Awaitable[str]], clock: IReactorTime, max_age: float) -> None:
        self._compute = compute
        self._clock = clock
        self._max_age = max_age
        self._value: tuple[float, str] | None = None

    async def get(self) -> str:
        now = self._clock.seconds()
        if self._value is not None and now - self._value[0] < self._max_age:
            return self._value[1]
        value = await self._compute()
        self._value = (now, value)
        return value


class EventStream(Resource):
    """``text/event-stream`` driven by a LoopingCall on ``clock``: the first
    event at once, then one every ``interval`` seconds. The loop stops when
    the client goes away or ``produce`` says the stream is over."""

    isLeaf = True
    log = Logger()

    def __init__(self, name: str, produce: Produce, clock: IReactorTime, interval: float) -> None:
        super().__init__()
        self._name = name
        self._produce = produce
        self._clock = clock
        self._interval = interval

    def render_GET(self, request: Request) -> Any:  # type: ignore[override]
        request.setHeader(b"content-type", b"text/event-stream; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"x-accel-buffering", b"no")  # a proxy in front must not hold events back
        request.write(f"retry: {int(self._interval * 1000) + 2000}\n\n".encode())
        stream = _Stream(request, self._name, self._produce)
        loop = LoopingCall(lambda: Deferred.fromCoroutine(stream.tick()))
        loop.clock = self._clock
        stream.loop = loop
        request.notifyFinish().addBoth(stream.gone)
        loop.start(self._interval, now=True).addErrback(
            lambda f: self.log.failure("event stream {name} stopped", f, name=self._name))
        return NOT_DONE_YET


class _Stream:
    log = Logger()

    def __init__(self, request: IRequest, name: str, produce: Produce) -> None:
        self.request = request
        self.name = name
        self.produce = produce
        self.loop: LoopingCall | None = None
        self.open = True

    async def tick(self) -> None:
        if not self.open:
            return
        try:
            data = await self.produce()
        except Exception:
            # One failed tick (Redis away a moment) skips an event; the stream goes on.
            self.log.failure("event stream {name}: no event this time", name=self.name)
            return
        if not self.open:
            return
        if data is None:
            self.request.write(event("end", "{}"))
            self.stop()
            self.request.finish()
            return
        self.request.write(event(self.name, data))

    def stop(self) -> None:
        self.open = False
        if self.loop is not None and self.loop.running:
            self.loop.stop()

    def gone(self, result: Failure | None) -> None:
        self.stop()
