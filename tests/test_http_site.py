"""The HTTP site's request deadline and idle timeout, on a Clock: a request
must be whole (head and body) within request_timeout, however its bytes
trickle in; a kept-alive connection waits idle for a short while only."""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.web.resource import Resource

from oseod.http.site import KEEPALIVE_SECONDS, OseodSite


class HalfClosingTransport(StringTransport):
    write_closed = False

    def loseWriteConnection(self) -> None:
        self.write_closed = True


class Channel:
    """One connection to a site serving ``GET /ok`` and ``POST /ok``."""

    def __init__(self, request_timeout: float = 30.0) -> None:
        self.clock = Clock()
        root = Resource()
        root.putChild(b"ok", Echo())
        self.site = OseodSite(root, 1 << 20, request_timeout=request_timeout, reactor=self.clock)
        self.protocol: Any = self.site.buildProtocol(IPv4Address("TCP", "192.0.2.1", 40000))
        self.transport = HalfClosingTransport()
        self.protocol.makeConnection(self.transport)

    def send(self, data: bytes) -> None:
        self.protocol.dataReceived(data)

    def trickle(self, data: bytes, seconds: float) -> None:
        """``data`` a byte at a time, ``seconds`` apart (each byte resets Twisted's idle timeout)."""
        for i in range(len(data)):
            self.send(data[i:i + 1])
            self.clock.advance(seconds)

    @property
    def answer(self) -> bytes:
        return self.transport.value()


class Echo(Resource):
    isLeaf = True

    def render_GET(self, request: Any) -> bytes:
        return b"ok"

    def render_POST(self, request: Any) -> bytes:
        return b"got " + request.content.read()


def timed_out(channel: Channel) -> bool:
    answer = channel.answer
    return (answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n") and answer.endswith(
        b"request not received within 30 seconds\n") and channel.transport.write_closed)


def test_a_trickled_head_is_cut_off_at_the_deadline() -> None:
    channel = Channel()
    channel.send(b"GET /ok HTTP/1.1\r\n")
    channel.trickle(b"X-Slow: " + b"a" * 40, 1.0)  # 48 s of bytes, one a second
    assert timed_out(channel)
    assert channel.answer.count(b"HTTP/1.1") == 1


def test_a_trickled_body_is_cut_off_at_the_deadline() -> None:
    channel = Channel()
    channel.send(b"POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
    channel.trickle(b"b" * 40, 1.0)
    assert timed_out(channel)


def test_the_deadline_counts_from_the_connection() -> None:
    channel = Channel()
    channel.clock.advance(10)
    channel.send(b"GET /ok HTTP/1.1\r\n")
    channel.clock.advance(10)
    channel.send(b"Host: x\r\n")
    channel.clock.advance(10)
    assert timed_out(channel)


def test_a_whole_request_in_time_is_answered_and_the_connection_waits_idle_briefly() -> None:
    channel = Channel()
    channel.send(b"POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n")
    channel.clock.advance(KEEPALIVE_SECONDS - 1)  # (longer without a byte: idle)
    channel.send(b"bo")
    channel.clock.advance(KEEPALIVE_SECONDS - 1)
    channel.send(b"dy")
    assert channel.answer.startswith(b"HTTP/1.1 200 OK\r\n") and channel.answer.endswith(b"got body")
    # The answered request's deadline is gone; the next request has its own.
    channel.transport.clear()
    channel.clock.advance(KEEPALIVE_SECONDS - 1)
    channel.send(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
    assert channel.answer.startswith(b"HTTP/1.1 200 OK\r\n")
    # Idle past the keep-alive timeout: closed without a word.
    channel.transport.clear()
    channel.clock.advance(KEEPALIVE_SECONDS)
    assert channel.transport.disconnecting and channel.answer == b""


def test_each_kept_alive_request_has_its_own_deadline() -> None:
    channel = Channel()
    channel.send(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
    assert channel.answer.startswith(b"HTTP/1.1 200 OK\r\n")
    channel.transport.clear()
    channel.clock.advance(5)
    channel.send(b"GET /ok HTTP/1.1\r\n")
    channel.trickle(b"Host: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 1.0)
    assert timed_out(channel)


def test_pipelined_partial_request_has_a_deadline_too() -> None:
    channel = Channel()
    channel.send(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\n")
    assert channel.answer.startswith(b"HTTP/1.1 200 OK\r\n")
    channel.transport.clear()
    channel.trickle(b"X-Slow: " + b"a" * 40, 1.0)
    assert timed_out(channel)


def test_the_idle_timeout_is_at_most_the_request_timeout() -> None:
    assert Channel(request_timeout=5).site.timeOut == 5
    assert Channel().site.timeOut == KEEPALIVE_SECONDS
    # A connection that sends nothing is idle: closed without a word.
    channel = Channel()
    channel.clock.advance(KEEPALIVE_SECONDS)
    assert channel.transport.disconnecting and channel.answer == b""


def test_a_request_begun_late_in_the_last_ones_timer_gets_its_whole_time() -> None:
    # The connection's one deadline timer runs from the first request: it
    # goes off before the second is due, and waits for its due time.
    channel = Channel()
    channel.send(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
    channel.transport.clear()
    channel.clock.advance(25)
    channel.send(b"GET /ok HTTP/1.1\r\n")
    channel.clock.advance(29.9)  # the first timer's time (30) is long past
    assert channel.answer == b""
    channel.clock.advance(0.1)
    assert timed_out(channel)


def test_kept_alive_requests_share_one_deadline_timer() -> None:
    channel = Channel()
    made = []
    call_later = channel.clock.callLater

    def counted(*args: Any, **kwargs: Any) -> Any:
        made.append(args[1])
        return call_later(*args, **kwargs)

    channel.protocol.callLater = counted
    for _ in range(200):
        channel.send(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
        channel.clock.advance(0.01)
    assert channel.answer.count(b"HTTP/1.1 200 OK\r\n") == 200
    # Twisted sets its idle timeout again after each request; the deadline
    # made no timer of its own for them (the connection's first is still on).
    assert len(made) == 200
    assert {func.__qualname__ for func in made} == {"TimeoutMixin.__timedOut"}
