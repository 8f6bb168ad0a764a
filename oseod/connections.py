"""Connections bounded per client address and in all, on every listener.

One address holding thousands of idle or trickling connections must neither
lock other clients out of a listener nor run the process out of file
descriptors. In the spirit of ``twisted.protocols.policies``: a
:class:`ConnectionBudget` for the whole process (kept below its open-file
limit) hands out :class:`GuardedFactory` wrappers, one per listener, that count
each address's connections. A connection past a limit gets one line of the
listener's own protocol (HTTP 429/503, FTP 421) and is closed, without the
listener's protocol ever being built.

Addresses of ``[server] trusted_proxies`` carry many clients and are exempt
from the per-address limit (not from the budget). IPv6 clients are counted
per /64, the block one host or site is given: counting single addresses
would let one IPv6 host take any number of connections.
"""

from __future__ import annotations

import ipaddress
import resource
from collections.abc import Callable, Iterable
from typing import Any

import attrs
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IAddress, IDelayedCall, IReactorTime
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.python.failure import Failure

from .config import ServerConfig
from .forwarded import ClientAddresses, ip_of

# Descriptors kept out of the budget: the Redis connections, the log, the
# embedded redis-server's pipes, thread pools' files, listening sockets.
RESERVED_FILES = 256
# Refused connections wait this long for the client to read the answer
# (closing a socket with unread input resets it, and a reset can destroy the
# answer), and at most this many at once: past that, they are closed at once.
LINGER_SECONDS = 2.0
MAX_LINGERING = 64
# Below this many connections (a tiny file limit), the daemon says so.
MIN_CONNECTIONS = 64


@attrs.frozen
class Refusal:
    """Why a connection is refused, for the listener's one-line answer."""

    reason: str
    # The client's own doing (too many connections from its address: HTTP
    # 429), or the server's load (all connections in use: HTTP 503).
    per_address: bool


Answer = Callable[[Refusal], bytes]


def raise_file_limit() -> int:
    """Raise the soft limit on open files to the hard one, as far as the
    system lets; the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def derived_limit(files: int, ftp_sessions: int = 0) -> int:
    """Connections a process with ``files`` descriptors can hold: besides the
    reserved ones and the lingering refusals, each connection may have one
    more file open (a result being served), and each FTP session two more
    (a passive port and its data connection)."""
    spare = files - RESERVED_FILES - MAX_LINGERING - 2 * ftp_sessions
    return max(spare // 2, MIN_CONNECTIONS)


class ConnectionBudget:
    """The connections of every listener together, at most ``limit``; each
    listener's factory goes through :meth:`guard`, which also limits each
    client address to ``per_address`` connections on that listener."""

    log = Logger()

    def __init__(self, limit: int, *, per_address: int, clients: ClientAddresses, clock: IReactorTime) -> None:
        if limit < 1 or per_address < 1:
            raise ValueError(f"connection limits must be at least 1, not {limit} and {per_address}")
        self.limit = limit
        self.per_address = per_address
        self.clients = clients
        self.clock = clock
        self.open = 0
        self.lingering = 0
        # While full: how many were refused (one warning when it fills up,
        # one line when it has room again, not one per connection).
        self._refused_while_full: int | None = None

    def guard(self, factory: Factory[Any], answer: Answer, name: str) -> GuardedFactory:
        """``factory`` with this budget and the per-address limit applied;
        refused connections get ``answer(refusal)``."""
        return GuardedFactory(self, factory, answer, name)

    def address_key(self, address: IAddress | None) -> str | None:
        """What a client is counted by: its IPv4 address or IPv6 /64; None
        for clients that are exempt (trusted proxies, unix sockets)."""
        if not isinstance(address, (IPv4Address, IPv6Address)):
            return None
        ip = ip_of(address.host)
        if ip is None or self.clients.trusts(str(ip)):
            return None
        if isinstance(ip, ipaddress.IPv6Address):
            return str(ipaddress.IPv6Network((ip, 64), strict=False))
        return str(ip)

    def take(self) -> bool:
        if self.open < self.limit:
            self.open += 1
            return True
        if self._refused_while_full is None:
            self._refused_while_full = 0
            self.log.warn("All {limit} connections are in use: new ones are refused until some close "
                          "([server] max_connections, or the open-file limit)", limit=self.limit)
        self._refused_while_full += 1
        return False

    def give_back(self) -> None:
        self.open -= 1
        if self._refused_while_full is not None and self.open < self.limit * 9 // 10:
            self.log.info("Connections below {limit} again: {refused} refused meanwhile", limit=self.limit,
                          refused=self._refused_while_full)
            self._refused_while_full = None

    def refused(self, answer: bytes) -> Protocol:
        return _Refused(self, answer)


class CountedConnection(ProtocolWrapper):
    """A connection let in, counted under its client's key."""

    def __init__(self, factory: GuardedFactory, wrapped: Any, address_key: str | None) -> None:
        ProtocolWrapper.__init__(self, factory, wrapped)
        self.address_key = address_key

    def writeSequence(self, data: Iterable[bytes]) -> None:
        # Joined here, in C: the transport's writeSequence checks each piece
        # in Python, and an HTTP answer's headers come as some twenty-five
        # (each name, ": ", value and line end apart).
        transport = self.transport
        assert transport is not None  # (connected: the wrapped protocol writes)
        transport.write(b"".join(data))


class GuardedFactory(WrappingFactory[CountedConnection]):
    """A listener's factory, with its connections counted per address and in
    the :class:`ConnectionBudget`."""

    protocol = CountedConnection
    noisy = False  # the Listener logs where it listens
    log = Logger()

    def __init__(self, budget: ConnectionBudget, factory: Factory[Any], answer: Answer, name: str) -> None:
        super().__init__(factory)
        self.budget = budget
        self.name = name
        self._answer = answer
        self.by_address: dict[str, int] = {}
        # Addresses refused since they reached the limit (one warning each).
        self._refused: dict[str, int] = {}
        self.connections = 0
        # The connections open now, for the drain at shutdown (oseod.inflight).
        self.open_connections: set[CountedConnection] = set()

    def buildProtocol(self, addr: IAddress | None) -> Any:
        key = self.budget.address_key(addr)
        if key is not None and self.by_address.get(key, 0) >= self.budget.per_address:
            if key not in self._refused:
                self._refused[key] = 0
                self.log.warn("{address} holds {limit} {listener} connections: refusing more from it",
                              address=key, limit=self.budget.per_address, listener=self.name)
            self._refused[key] += 1
            return self.budget.refused(self._answer(Refusal(
                f"too many connections from your address (at most {self.budget.per_address})", True)))
        if not self.budget.take():
            return self.budget.refused(self._answer(Refusal("server busy: too many connections, try again later",
                                                            False)))
        inner = self.wrappedFactory.buildProtocol(addr)
        if inner is None:
            self.budget.give_back()
            return None
        wrapper = CountedConnection(self, inner, key)
        self.connections += 1
        self.open_connections.add(wrapper)
        if key is not None:
            self.by_address[key] = self.by_address.get(key, 0) + 1
        return wrapper

    def registerProtocol(self, p: Any) -> None:
        pass  # counted in buildProtocol already

    def unregisterProtocol(self, p: Any) -> None:
        key = p.address_key
        self.connections -= 1
        self.open_connections.discard(p)
        self.budget.give_back()
        if key is None:
            return
        left = self.by_address.get(key, 1) - 1
        if left > 0:
            self.by_address[key] = left
            return
        del self.by_address[key]
        refused = self._refused.pop(key, None)
        if refused is not None:
            self.log.info("{address} holds no {listener} connection any more ({refused} refused)", address=key,
                          listener=self.name, refused=refused)


class _Refused(Protocol):
    """Sends the refusal and closes: no listener protocol is built. The
    answer is followed by a half-close, and what the client still sends is
    dropped until it hangs up, for ``LINGER_SECONDS`` at most (and only for
    ``MAX_LINGERING`` connections at once: past that, closed at once)."""

    def __init__(self, budget: ConnectionBudget, answer: bytes) -> None:
        self._budget = budget
        self._answer = answer
        self._linger: IDelayedCall | None = None

    def connectionMade(self) -> None:
        transport: Any = self.transport
        transport.write(self._answer)
        if self._budget.lingering >= MAX_LINGERING or not hasattr(transport, "loseWriteConnection"):
            transport.loseConnection()
            return
        self._budget.lingering += 1
        transport.loseWriteConnection()
        self._linger = self._budget.clock.callLater(LINGER_SECONDS, transport.abortConnection)

    def dataReceived(self, data: bytes) -> None:
        pass

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        if self._linger is not None:
            self._budget.lingering -= 1
            if self._linger.active():
                self._linger.cancel()
            self._linger = None


def process_budget(server: ServerConfig, clock: IReactorTime) -> ConnectionBudget:
    """The daemon's budget from ``[server]``: ``max_connections``, or (0) as
    many as the open-file limit allows once raised to its hard limit."""
    files = raise_file_limit()
    affordable = derived_limit(files, server.ftp_max_connections if server.ftp else 0)
    limit = server.max_connections or affordable
    log = ConnectionBudget.log
    if server.max_connections > affordable:
        log.warn("[server] max_connections = {limit} leaves too few of the {files} open files the process may have "
                 "(about {affordable} would fit): raise its limit (LimitNOFILE=)", limit=limit, files=files,
                 affordable=affordable)
    elif affordable == MIN_CONNECTIONS and not server.max_connections:
        log.warn("The process may open only {files} files: connections are limited to {limit} in all "
                 "(raise LimitNOFILE=)", files=files, limit=limit)
    log.info("Connections: at most {limit} in all ({files} open files), {per_address} per client address "
             "on each listener", limit=limit, files=files, per_address=server.max_connections_per_address)
    return ConnectionBudget(limit, per_address=server.max_connections_per_address,
                            clients=ClientAddresses(server.trusted_proxies), clock=clock)
