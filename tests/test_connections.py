"""The connection limits on their own: per client address on each listener,
the process-wide budget, the refusals' one-line answers, and the budget
derived from the open-file limit. Connections are StringTransports and time a
Clock; the limits against a real daemon are in test_connections_daemon.py."""

from __future__ import annotations

import resource
from typing import Any

import pytest
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, capturedLogs
from twisted.python.failure import Failure
from twisted.internet.error import ConnectionDone

from oseod.config import ServerConfig
from oseod.connections import (LINGER_SECONDS, MAX_LINGERING, MIN_CONNECTIONS, RESERVED_FILES, ConnectionBudget,
                               GuardedFactory, Refusal, derived_limit, process_budget, raise_file_limit)
from oseod.forwarded import ClientAddresses
from oseod.ftp.factory import refusal_answer as ftp_answer
from oseod.http.site import refusal_answer as http_answer


class HalfClosingTransport(StringTransport):
    """A StringTransport that can half-close, as TCP transports do."""

    write_closed = False
    aborted = False

    def loseWriteConnection(self) -> None:
        self.write_closed = True

    def abortConnection(self) -> None:
        self.aborted = True
        super().abortConnection()


class Echo(Protocol):
    def dataReceived(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)


def tcp(host: str, port: int = 40000) -> IPv4Address | IPv6Address:
    return IPv6Address("TCP", host, port) if ":" in host else IPv4Address("TCP", host, port)


class Listeners:
    """A budget and guarded listeners over it, connections opened by address."""

    def __init__(self, limit: int = 100, per_address: int = 2, trusted: tuple[str, ...] = ()) -> None:
        self.clock = Clock()
        self.budget = ConnectionBudget(limit, per_address=per_address, clients=ClientAddresses(trusted),
                                       clock=self.clock)
        self.http = self.budget.guard(Factory.forProtocol(Echo), http_answer, "http")
        self.ftp = self.budget.guard(Factory.forProtocol(Echo), ftp_answer, "ftp")

    def connect(self, host: str, listener: GuardedFactory | None = None) -> tuple[Any, HalfClosingTransport]:
        factory = listener or self.http
        address = tcp(host)
        protocol = factory.buildProtocol(address)
        transport = HalfClosingTransport(peerAddress=address)
        protocol.makeConnection(transport)
        return protocol, transport


def admitted(protocol: Any, transport: HalfClosingTransport) -> bool:
    """The listener's own protocol got the connection (it echoes)."""
    protocol.dataReceived(b"ping")
    return transport.value() == b"ping"


def close(protocol: Any) -> None:
    protocol.connectionLost(Failure(ConnectionDone()))


def test_per_address_limit_on_each_listener() -> None:
    listeners = Listeners(per_address=2)
    first = [listeners.connect("192.0.2.1") for _ in range(2)]
    assert all(admitted(*c) for c in first)
    protocol, transport = listeners.connect("192.0.2.1")
    assert not admitted(protocol, transport)
    answer = transport.value()
    assert answer.startswith(b"HTTP/1.1 429 Too Many Requests\r\n") and answer.endswith(
        b"\r\n\r\ntoo many connections from your address (at most 2)\n")
    assert transport.write_closed and not transport.disconnecting  # lingers for the client to read it
    # Another address, and the same address on another listener, are let in.
    assert admitted(*listeners.connect("192.0.2.2"))
    assert admitted(*listeners.connect("192.0.2.1", listeners.ftp))
    assert listeners.http.by_address == {"192.0.2.1": 2, "192.0.2.2": 1}
    # Once one of its connections closes, the address may open another.
    close(first[0][0])
    assert admitted(*listeners.connect("192.0.2.1"))
    # FTP answers in its own words.
    listeners.connect("192.0.2.1", listeners.ftp)
    _, transport = listeners.connect("192.0.2.1", listeners.ftp)
    assert transport.value() == b"421 too many connections from your address (at most 2)\r\n"


def test_ipv4_mapped_peers_count_as_ipv4_and_ipv6_per_64() -> None:
    listeners = Listeners(per_address=2)
    assert admitted(*listeners.connect("192.0.2.1"))
    assert admitted(*listeners.connect("::ffff:192.0.2.1"))
    assert not admitted(*listeners.connect("::ffff:192.0.2.1"))
    assert admitted(*listeners.connect("2001:db8:1:2::1"))
    assert admitted(*listeners.connect("2001:db8:1:2:ffff::9"))
    assert not admitted(*listeners.connect("2001:db8:1:2::3"))  # the same /64
    assert admitted(*listeners.connect("2001:db8:1:3::1"))
    assert set(listeners.http.by_address) == {"192.0.2.1", "2001:db8:1:2::/64", "2001:db8:1:3::/64"}


def test_trusted_proxies_and_unix_sockets_are_exempt_from_the_per_address_limit_not_the_budget() -> None:
    listeners = Listeners(limit=5, per_address=1, trusted=("10.0.0.0/8",))
    assert all(admitted(*listeners.connect("10.1.2.3")) for _ in range(3))
    assert all(admitted(*listeners.connect("::ffff:10.1.2.3")) for _ in range(2))
    assert listeners.http.by_address == {}
    protocol, transport = listeners.connect("10.1.2.3")
    assert not admitted(protocol, transport)
    assert transport.value().startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    unix = listeners.budget.address_key(UNIXAddress(b"/run/oseod.sock"))
    assert unix is None


def test_budget_across_listeners_warns_once() -> None:
    listeners = Listeners(limit=10, per_address=100)
    with capturedLogs() as events:
        connections = [listeners.connect(f"192.0.2.{i % 3}", listeners.http if i % 2 else listeners.ftp)
                       for i in range(10)]
        assert all(admitted(*c) for c in connections) and listeners.budget.open == 10
        refused = [listeners.connect("198.51.100.7", listeners.ftp) for _ in range(50)]
        assert all(t.value() == b"421 server busy: too many connections, try again later\r\n" for _, t in refused)
        _, transport = listeners.connect("198.51.100.7")
        assert b"503 Service Unavailable" in transport.value() and transport.value().endswith(
            b"server busy: too many connections, try again later\n")
        close(connections[0][0])
        assert admitted(*listeners.connect("198.51.100.7"))  # room for one again
        assert not admitted(*listeners.connect("198.51.100.7"))
        for protocol, _ in connections[1:5]:
            close(protocol)
    warnings = [e for e in events if e["log_level"] == LogLevel.warn]
    assert len(warnings) == 1 and warnings[0]["limit"] == 10
    again = [e for e in events if e.get("refused") is not None and "limit" in e]
    assert len(again) == 1 and again[0]["refused"] == 52
    assert listeners.budget.open == 6


def test_per_address_refusals_warn_once_per_address() -> None:
    listeners = Listeners(per_address=1)
    with capturedLogs() as events:
        protocol, _ = listeners.connect("192.0.2.1")
        for _ in range(20):
            listeners.connect("192.0.2.1")
        close(protocol)
    warnings = [e for e in events if e["log_level"] == LogLevel.warn]
    assert [(w["address"], w["listener"]) for w in warnings] == [("192.0.2.1", "http")]
    assert [e["refused"] for e in events if "refused" in e] == [20]
    assert listeners.http.by_address == {} and listeners.budget.open == 0


def test_refused_connections_linger_briefly_and_at_most_so_many() -> None:
    listeners = Listeners(per_address=1)
    listeners.connect("192.0.2.1")
    protocol, transport = listeners.connect("192.0.2.1")
    protocol.dataReceived(b"GET / HTTP/1.1\r\n")  # dropped
    assert transport.write_closed and not transport.aborted and listeners.budget.lingering == 1
    listeners.clock.advance(LINGER_SECONDS)
    assert transport.aborted
    close(protocol)
    assert listeners.budget.lingering == 0
    # A client that hangs up at once is forgotten at once.
    protocol, transport = listeners.connect("192.0.2.1")
    close(protocol)
    assert listeners.budget.lingering == 0 and not listeners.clock.getDelayedCalls()
    # Past MAX_LINGERING, refusals are closed as soon as they are written.
    lingering = [listeners.connect("192.0.2.1") for _ in range(MAX_LINGERING)]
    assert all(t.write_closed and not t.disconnecting for _, t in lingering)
    _, transport = listeners.connect("192.0.2.1")
    assert transport.disconnecting and transport.value().startswith(b"HTTP/1.1 429")
    assert listeners.budget.open == 1  # refusals never count as connections


def test_a_factory_that_declines_gives_its_place_back() -> None:
    budget = ConnectionBudget(1, per_address=1, clients=ClientAddresses(), clock=Clock())

    class Declining(Factory):
        def buildProtocol(self, addr: Any) -> None:
            return None

    guard = budget.guard(Declining(), http_answer, "x")
    assert guard.buildProtocol(tcp("192.0.2.1")) is None
    assert budget.open == 0 and guard.by_address == {}


def test_answers() -> None:
    assert http_answer(Refusal("why", True)).split(b"\r\n")[0] == b"HTTP/1.1 429 Too Many Requests"
    assert http_answer(Refusal("why", False)).split(b"\r\n")[0] == b"HTTP/1.1 503 Service Unavailable"
    assert b"Connection: close\r\n" in http_answer(Refusal("why", False))
    assert ftp_answer(Refusal("busy", False)) == b"421 busy\r\n"
    with pytest.raises(ValueError):
        ConnectionBudget(0, per_address=1, clients=ClientAddresses(), clock=Clock())


def test_budget_from_the_file_limit() -> None:
    assert derived_limit(20000, 0) == (20000 - RESERVED_FILES - MAX_LINGERING) // 2
    # Each FTP session may need a passive port and a data connection besides.
    assert derived_limit(20000, 1000) == derived_limit(20000, 0) - 1000
    assert derived_limit(1024, 1000) == MIN_CONNECTIONS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    files = raise_file_limit()
    assert files >= soft and resource.getrlimit(resource.RLIMIT_NOFILE)[0] == files
    assert hard == resource.RLIM_INFINITY or files == hard
    server = ServerConfig(max_connections_per_address=7)
    budget = process_budget(server, Clock())
    assert budget.limit == derived_limit(files, server.ftp_max_connections) and budget.per_address == 7
    assert process_budget(ServerConfig(max_connections=123, ftp=""), Clock()).limit == 123
