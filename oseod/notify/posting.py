"""A call-back on its way: POSTed to the client's service, its answer read
and judged. Shared by the outbox channels that call clients back (status
call-backs, quotations).

The target was checked when the client gave it; its host name is checked
again, resolved, right before each attempt, so that a name pointing into the
provider's own network (now, or after a change of its DNS) is refused
(Undeliverable: no retries). No redirects are followed: they would take the
request where nobody looked. Only an answer that acknowledges the call-back
(the matching ``…Ack``) counts as delivered; anything else (no answer, a
Fault, an error status, a timeout, an answer too long) is a ConnectionError,
a failed attempt.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from urllib.parse import urlsplit

import treq
from twisted.internet import defer
from twisted.web.client import HTTPConnectionPool, _HTTP11ClientFactory
from twisted.web.http_headers import Headers
from twisted.web.iweb import IResponse

from ..core.destinations import network_refusal
from ..model.outbox import OutboxMessage
from ..oseo.acks import parse_ack
from ..oseo.callbacks import Callback
from ..reactors import IDaemonReactor
from ..threads import ThreadPools
from .sender import Undeliverable

# A client's answer is an acknowledgement of a few hundred bytes; more than
# this is not read.
MAX_ANSWER_BYTES = 256 * 1024


class _TooLong(Exception):
    pass


# A host name's resolved addresses are checked again after this long.
RESOLVED_SECONDS = 60.0
# Idle connections kept per client host: call-backs to one client come in
# bursts (every change of every order of theirs), a new TCP (and TLS)
# connection each would cost more than the call-back.
KEPT_PER_HOST = 16


class _QuietClientFactory(_HTTP11ClientFactory):
    noisy = False  # one "Starting factory" log line per connection otherwise


class CallbackPoster:
    def __init__(self, reactor: IDaemonReactor, *, threads: ThreadPools, timeout: float,
                 allowed_networks: tuple[str, ...] = ()) -> None:
        self._reactor = reactor
        self._threads = threads
        self._timeout = timeout
        self._allowed = allowed_networks
        self._pool = HTTPConnectionPool(reactor, persistent=True)
        self._pool.maxPersistentPerHost = KEPT_PER_HOST
        self._pool.cachedConnectionTimeout = 30
        self._pool._factory = _QuietClientFactory  # noqa: SLF001 - the pool's documented-by-use hook
        # For the posts made on a connection of their own (ODIP notifications).
        self._fresh = HTTPConnectionPool(reactor, persistent=False)
        self._fresh._factory = _QuietClientFactory  # noqa: SLF001 - as above
        self._resolved: dict[str, tuple[float, list[str]]] = {}

    async def close(self) -> None:
        """Close the connections kept open (at shutdown)."""
        await self._pool.closeCachedConnections()

    async def post(self, callback: Callback) -> None:
        """Deliver ``callback``; raise (a one-line reason) when it was not acknowledged."""
        address = callback.address
        code, body = await self.exchange(address, callback.body, callback.headers)
        if not 200 <= code < 300:
            raise ConnectionError(f"{address} answered HTTP {code}: "
                                  f"{parse_ack(callback.kind, body, callback.message_id)}")
        outcome = parse_ack(callback.kind, body, callback.message_id)
        if not outcome.acknowledged:
            raise ConnectionError(f"{address}: {outcome}")

    async def exchange(self, address: str, body: bytes, headers: Mapping[str, str], *,
                       what: str = "wsa:ReplyTo", keep: bool = True) -> tuple[int, bytes]:
        """POST ``body`` to ``address`` (its host checked first) and read the
        answer: its status code and body. ConnectionError (a failed attempt)
        when no complete answer came; Undeliverable when the host is refused
        (the reason names the address as ``what`` the client gave).
        ``keep``: the connection may be kept for the next post to the host
        (else it is closed after the answer)."""
        await self._check_host(address, what)
        try:
            response: IResponse = await treq.post(
                address, data=body, headers=Headers({k: [v] for k, v in headers.items()}),
                timeout=self._timeout, reactor=self._reactor, pool=self._pool if keep else self._fresh,
                allow_redirects=False)
        except defer.CancelledError:
            raise ConnectionError(f"no answer from {address} within {self._timeout:g} s") from None
        except Exception as e:
            raise ConnectionError(f"{address}: {reason(e)}") from None
        return response.code, await self._read(response)

    async def _check_host(self, address: str, what: str) -> None:
        host = urlsplit(address).hostname or ""
        now = self._reactor.seconds()
        known = self._resolved.get(host)
        if known is not None and known[0] > now:
            found = known[1]
        else:
            try:
                found = await _resolve(self._threads, host)
            except OSError as e:
                raise ConnectionError(f"cannot resolve {host}: {e.strerror or e}") from None
            if len(self._resolved) > 10_000:
                self._resolved.clear()
            self._resolved[host] = (now + RESOLVED_SECONDS, found)
        for ip in found:
            refusal = network_refusal(ip, self._allowed)
            if refusal is not None:
                raise Undeliverable(f"{what} {address}: {refusal}")

    async def _read(self, response: IResponse) -> bytes:
        parts: list[bytes] = []
        size = 0

        def collect(data: bytes) -> None:
            nonlocal size
            size += len(data)
            if size > MAX_ANSWER_BYTES:
                raise _TooLong()
            parts.append(data)

        try:
            await treq.collect(response, collect)
        except _TooLong:
            raise ConnectionError(f"the answer is longer than {MAX_ANSWER_BYTES} bytes") from None
        except Exception as e:
            raise ConnectionError(f"the answer broke off: {reason(e)}") from None
        return b"".join(parts)


class PostingChannel:
    """What the outbox channels that call clients back share: their poster,
    closed at shutdown, and the host of the message's ``to`` as its
    destination (deliveries to one host are limited together)."""

    def __init__(self, reactor: IDaemonReactor, *, threads: ThreadPools, timeout: float,
                 allowed_networks: tuple[str, ...] = ()) -> None:
        self._poster = CallbackPoster(reactor, threads=threads, timeout=timeout, allowed_networks=allowed_networks)

    async def close(self) -> None:
        await self._poster.close()

    def destination(self, message: OutboxMessage) -> str:
        return host_of(message.data.get("to"))


def host_of(address: object) -> str:
    """The host a call-back to ``address`` goes to (the outbox limits
    deliveries per host)."""
    return urlsplit(str(address or "")).hostname or "?"


async def _resolve(threads: ThreadPools, host: str) -> list[str]:
    infos = await threads.on_resolve(socket.getaddrinfo, host, None, 0, socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def reason(error: BaseException) -> str:
    """A one-line account of a failed request."""
    reasons = getattr(error, "reasons", None)  # twisted.web's ResponseFailed and friends
    if reasons:
        return "; ".join(str(r.value) or type(r.value).__name__ for r in reasons)
    return str(error) or type(error).__name__
