"""Finding the Redis primary through Sentinel, and following it when it moves.

txredisapi's own ``Sentinel`` asks every sentinel for the primary before
each connection attempt, which is right, but when the answers all say "the
primary is down" it waits out its whole ``discovery_timeout`` (10 s) anyway:
a client blind for 13 s after a failover that Sentinel finished in 2.2 s
(../shared/notes/scale-out.md §1). Here discovery fails as soon as every
sentinel has answered without a healthy primary, the pool retries at most
every half second, and the client follows a failover in Sentinel's own time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import txredisapi
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import HostnameEndpoint
from twisted.logger import Logger

from ..reactors import IDaemonReactor
from .reconnect import DropsWhenReadonly, KeepTrying

# Past this, a sentinel that has not answered (stopped, unreachable) is not
# waited for: the pool tries again, and asks all of them again.
DISCOVERY_TIMEOUT = 1.0
# While no primary is known, this often at most it is said in the log.
QUIET_SECONDS = 10.0


class FailFastSentinel(txredisapi.Sentinel):  # type: ignore[misc]
    """The sentinels of one deployment, asked for the primary of a service.

    ``primary`` is the address the last discovery found (for the start-up
    log line and /health)."""

    log = Logger()

    def __init__(self, addresses: Sequence[tuple[str, int]], reactor: IDaemonReactor, *,
                 password: str | None = None, discovery_timeout: float = DISCOVERY_TIMEOUT) -> None:
        # Not txredisapi's __init__: its lazyConnection gives a sentinel up
        # for good when the connection is lost during AUTH (a sentinel
        # stopped for a moment). Each sentinel here is a reconnecting
        # connection of its own that never stops trying: one that is down
        # is simply not heard from before the timeout.
        self.sentinels = [self._connection(reactor, host, port, password, discovery_timeout)
                          for host, port in addresses]
        self.min_other_sentinels = 0
        self.discovery_timeout = discovery_timeout
        self._reactor = reactor
        self.primary: tuple[str, int] | None = None
        # The sentinels asked and not heard from yet: one that is down is not
        # asked again (its lazy connection would queue every question until
        # it is back, eight per retry of the pool).
        self._asking: set[int] = set()
        self._missing = False  # a discovery found no primary since the last that did
        self._warned_at: float | None = None

    def discover_master(self, service_name: str) -> Deferred[tuple[str, int]]:
        result: Deferred[tuple[str, int]] = Deferred()
        waiting = len(self.sentinels)

        def give_up() -> None:
            if not result.called:
                self._missing = True
                now = self._reactor.seconds()
                # Not once per retry of each connection (16 a second): every 10 s at most.
                if self._warned_at is None or now - self._warned_at >= QUIET_SECONDS:
                    self._warned_at = now
                    self.log.warn("no sentinel knows a healthy Redis primary of {service} (yet); asking again",
                                  service=service_name)
                result.errback(txredisapi.MasterNotFoundError(
                    f"no sentinel knows a healthy primary for {service_name!r}"))

        # The healthy primary named with the newest configuration so far: a
        # sentinel that has not yet learnt of a failover still names the old
        # primary, healthy again once it resumes (SIGSTOP, a network cut),
        # and writable until it is demoted some ten seconds later. The
        # config-epoch grows with every failover.
        best: tuple[int, tuple[str, int]] | None = None

        def settle() -> None:
            if result.called:
                return
            if best is None:
                give_up()
                return
            self._found(service_name, best[1])
            result.callback(best[1])

        timer = self._reactor.callLater(self.discovery_timeout, settle)

        def answered(masters: Any) -> None:
            nonlocal waiting, best
            if result.called:
                return
            state = masters.get(service_name) if isinstance(masters, dict) else None
            if state and self.check_master_state(state):
                epoch = _epoch(state)
                if best is None or epoch > best[0]:
                    best = (epoch, (str(state["ip"]), int(state["port"])))
            waiting -= 1
            if not waiting:  # everybody answered (those still silent since the last time count as none)
                timer.cancel()
                settle()

        def heard(reply: Any, index: int) -> Any:
            self._asking.discard(index)
            return reply

        for index, sentinel in enumerate(self.sentinels):
            if index in self._asking:  # still silent since the last question
                answered(None)
                continue
            self._asking.add(index)
            question = sentinel.sentinel_masters().addBoth(heard, index)
            question.addCallbacks(answered, lambda failure: answered(None))
        return result

    @staticmethod
    def _connection(reactor: IDaemonReactor, host: str, port: int, password: str | None, timeout: float) -> Any:
        factory = _SentinelFactory(f"{host}:{port}", None, 1, isLazy=True, password=password, replyTimeout=timeout,
                                   convertNumbers=False)
        factory.startConnecting(HostnameEndpoint(reactor, host, port, timeout=timeout))
        return factory.handler

    def _connect_factory_and_return_handler(self, factory: Any) -> Any:
        factory.startConnecting(_QuietEndpoint(factory))
        return factory.handler

    def _found(self, service_name: str, primary: tuple[str, int]) -> None:
        if self._missing:
            self._missing = False
            self.log.info("Redis primary of {service} found: {primary}", service=service_name,
                          primary=format_address(primary))
        if primary != self.primary:
            if self.primary is not None:
                self.log.warn("Redis primary of {service} moved from {old} to {new}", service=service_name,
                              old=format_address(self.primary), new=format_address(primary))
            self.primary = primary


def _epoch(state: dict[str, Any]) -> int:
    try:
        return int(state.get("config-epoch", 0))
    except (TypeError, ValueError):
        return 0


def format_address(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _QuietEndpoint(txredisapi._SentinelEndpoint):  # type: ignore[misc]  # noqa: SLF001
    """txredisapi's endpoint that asks the sentinels before each connection
    attempt, without its log line per failed attempt (eight connections,
    two attempts a second each, for as long as there is no primary): the
    sentinel logs once per outage instead."""

    def _discovery_failed(self, failure: Any) -> Any:
        failure.trap(txredisapi.MasterNotFoundError)
        return failure


# (txredisapi stops a pool for good after an AUTH or SELECT cut off by a
# lost connection: see .reconnect, shared with the plain pool.)


class _SentinelFactory(KeepTrying, txredisapi.RedisFactory):  # type: ignore[misc]
    log = Logger()
    maxDelay = 1.0

    def connectionError(self, why: str) -> None:
        # Nobody waits on a lazy connection's first-connect Deferred: failing
        # it would only log an unhandled error. Discovery hears nothing.
        self.log.info("Redis sentinel {sentinel}: {why}", sentinel=self.uuid, why=why)


class _PrimaryProtocol(DropsWhenReadonly, txredisapi.SentinelRedisProtocol):  # type: ignore[misc]
    """A connection to the primary that hangs up once it answers READONLY
    (an old primary resumed and demoted): every reconnection asks the
    sentinels again."""


class PrimaryFactory(KeepTrying, txredisapi.SentinelConnectionFactory):  # type: ignore[misc]
    """The pool's factory: retries every half second at most (the default
    backs off to 10 s), and this is also the connect timeout txredisapi
    uses on the Sentinel path."""

    maxDelay = 0.5
    protocol = _PrimaryProtocol

    def connectionError(self, why: str) -> None:
        # Only the start-up wait (Redis.connect) hears of it, if still waiting.
        if self.deferred is not None and not self.deferred.called:
            super().connectionError(why)
