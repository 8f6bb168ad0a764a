"""/ready and the drain at SIGTERM, in process: readiness over real HTTP with
a real Redis, the drain's wait driven by a Clock, in-flight requests
finished over loopback before their connections close."""

from __future__ import annotations

import socket
from typing import Any

import pytest_twisted
import treq
from twisted.internet import defer, reactor
from twisted.internet.task import Clock
from twisted.logger import capturedLogs
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site
from twisted.web.test.requesthelper import DummyRequest

from oseod.connections import ConnectionBudget
from oseod.forwarded import ClientAddresses
from oseod.http.frontend import ClientRoutes, OperatorRoutes, Probes
from oseod.inflight import finish_in_flight
from oseod.metrics import RequestMetrics
from oseod.readiness import Readiness
from oseod.service import DaemonService
from oseod.store.connection import Redis


class NoProcessing:
    async def health(self) -> dict[str, Any]:
        return {}

    async def samples(self) -> list[Any]:
        return []


async def serve(resource: Any) -> tuple[str, Any]:
    port = reactor.listenTCP(0, Site(resource), interface="127.0.0.1")  # type: ignore[attr-defined]
    return f"http://127.0.0.1:{port.getHost().port}", port


async def get(url: str) -> tuple[int, Any, bytes]:
    response = await treq.get(url, persistent=False)
    return response.code, response.headers, await response.content()


def probes(redis: Redis, readiness: Readiness, **kw: Any) -> Probes:
    return Probes(redis=redis, metrics=RequestMetrics(), processing=NoProcessing(), sources=(), readiness=readiness,
                  **kw)


@pytest_twisted.ensureDeferred
async def test_ready_follows_the_daemon_state_on_both_doors(redis: Redis) -> None:
    readiness = Readiness()
    shared = probes(redis, readiness, ping_timeout=2.0, clock=reactor)
    doors = [ClientRoutes(downloads=None, probes=shared),  # type: ignore[arg-type]
             OperatorRoutes(admin=None, console=None, probes=shared)]
    for door in doors:
        base, port = await serve(door.resource())
        try:
            readiness.state = "starting"
            code, headers, body = await get(base + "/ready")
            assert code == 503 and body == b"not ready: the daemon is starting\n"
            assert headers.getRawHeaders("retry-after") == ["2"]
            readiness.serving()
            code, headers, body = await get(base + "/ready")
            assert code == 200 and body == b"ready\n"
            readiness.draining()
            code, headers, body = await get(base + "/ready")
            assert code == 503 and b"draining" in body and headers.getRawHeaders("retry-after") == ["2"]
            # Liveness is another question: the draining daemon is alive.
            code, _, _ = await get(base + "/health")
            assert code == 200
        finally:
            await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_ready_is_503_without_redis(redis: Redis) -> None:
    unconnected = Redis(redis.address)
    readiness = Readiness()
    readiness.serving()
    base, port = await serve(ClientRoutes(downloads=None,  # type: ignore[arg-type]
                                          probes=probes(unconnected, readiness, clock=reactor)).resource())
    try:
        code, headers, body = await get(base + "/ready")
        assert code == 503 and body.startswith(b"not ready: Redis does not answer at ")
        assert body.count(b"\n") == 1 and headers.getRawHeaders("retry-after") == ["2"]
    finally:
        await port.stopListening()


class SilentRedis:
    """A Redis whose PING never comes back (a primary that stopped)."""

    def __init__(self, real: Redis) -> None:
        self.address = real.address

    async def ping(self) -> bool:
        return await defer.Deferred()  # type: ignore[no-any-return]


@pytest_twisted.ensureDeferred
async def test_ready_waits_for_ping_at_most_command_timeout(redis: Redis) -> None:
    clock = Clock()
    readiness = Readiness()
    readiness.serving()
    silent = SilentRedis(redis)
    request = DummyRequest([b"ready"])
    answer = defer.ensureDeferred(probes(silent, readiness, ping_timeout=2.0, clock=clock).ready(request))  # type: ignore[arg-type]
    clock.advance(1.9)
    assert not answer.called
    clock.advance(0.2)
    body = await answer
    assert request.responseCode == 503 and body.startswith(b"not ready: Redis does not answer")


@pytest_twisted.ensureDeferred
async def test_drain_keeps_serving_for_drain_seconds_then_stops_in_reverse() -> None:
    clock = Clock()
    journal: list[str] = []
    service = DaemonService(reactor=None, exit=lambda status: None, drain_seconds=2.0, clock=clock)
    assert service.readiness.reason() is not None  # starting
    service.step("engine", lambda: None, lambda: journal.append("stop engine"))
    service.step("listener", lambda: None, lambda: journal.append("stop listener"))
    await service.startService()
    assert service.readiness.reason() is None
    with capturedLogs() as events:
        stopping = service.stopService()
        assert "draining" in (service.readiness.reason() or "")  # at once
        clock.advance(1.9)
        assert journal == [] and not stopping.called
        clock.advance(0.1)
        await stopping
    assert journal == ["stop listener", "stop engine"]
    said = [e["log_format"].format(**e) for e in events]
    assert said[0] == "drain: not ready (/ready answers 503); still serving for 2.0 s"
    assert said[1:] == ["drain: stopped listener", "drain: stopped engine", "drain: done, oseod stops"]


@pytest_twisted.ensureDeferred
async def test_a_failed_start_does_not_drain() -> None:
    clock = Clock()
    service = DaemonService(reactor=None, exit=lambda status: None, drain_seconds=60.0, clock=clock)

    def broken() -> None:
        raise RuntimeError("no")

    service.step("broken", broken)
    await service.startService()
    await service.stopService()  # no Clock advance needed
    assert service.readiness.reason() == "not ready: the daemon is starting"


class Held(Resource):
    """Answers once the test says so."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.waiting: list[Any] = []

    def render_GET(self, request: Any) -> Any:
        if request.path == b"/events":  # like the console's live view: never ends
            request.setHeader(b"content-type", b"text/event-stream; charset=utf-8")
            request.write(b"data: {}\n\n")
            return NOT_DONE_YET
        self.waiting.append(request)
        return NOT_DONE_YET


@pytest_twisted.ensureDeferred
async def test_in_flight_requests_finish_and_idle_connections_close() -> None:
    budget = ConnectionBudget(100, per_address=100, clients=ClientAddresses([]), clock=reactor)
    held = Held()
    factory = budget.guard(Site(held), lambda refusal: b"", "http")
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")  # type: ignore[attr-defined]
    where = ("127.0.0.1", port.getHost().port)
    busy, idle = socket.create_connection(where), socket.create_connection(where)
    try:
        busy.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        await wait_for_async(lambda: len(held.waiting) == 1 and factory.connections == 2)
        await port.stopListening()
        finishing = defer.ensureDeferred(finish_in_flight([factory], reactor, bound=30.0))
        await wait_for_async(lambda: factory.connections == 1)  # the idle one closed
        assert not finishing.called
        request = held.waiting[0]
        request.write(b"done\n")
        request.finish()
        assert await finishing == 0
        assert factory.connections == 0
        busy.settimeout(5)
        answer = b""
        while chunk := busy.recv(4096):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200") and b"\r\nConnection: close\r\n" in answer
        assert b"done\n" in answer
        idle.settimeout(5)
        assert idle.recv(10) == b""
    finally:
        busy.close()
        idle.close()


@pytest_twisted.ensureDeferred
async def test_an_event_stream_does_not_hold_the_drain() -> None:
    budget = ConnectionBudget(100, per_address=100, clients=ClientAddresses([]), clock=reactor)
    factory = budget.guard(Site(Held()), lambda refusal: b"", "http")
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")  # type: ignore[attr-defined]
    stream = socket.create_connection(("127.0.0.1", port.getHost().port))
    try:
        stream.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        await wait_for_async(lambda: readable(stream))
        assert stream.recv(4096).startswith(b"HTTP/1.1 200")
        await port.stopListening()
        assert await finish_in_flight([factory], reactor, bound=30.0) == 0
        await wait_for_async(lambda: factory.connections == 0)
    finally:
        stream.close()


def readable(connection: socket.socket) -> bool:
    try:
        return bool(connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except BlockingIOError:
        return False


async def wait_for_async(condition: Any, seconds: float = 10.0) -> None:
    """Let the reactor turn until ``condition()`` holds."""
    waited = 0.0
    while not condition():
        assert waited < seconds, "condition not reached"
        await defer.ensureDeferred(_turn())
        waited += 0.01


async def _turn() -> None:
    from twisted.internet.task import deferLater

    await deferLater(reactor, 0.01, lambda: None)

