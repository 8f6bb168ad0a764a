"""The HTTP site: a body-size cap enforced before the body is read, a
deadline for each whole request (head and body), refusals (413, 408, and 400
for what Twisted cannot parse) that say why in one line and reach the client,
and no per-request access log (the daemon logs one structured event per
request)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IDelayedCall
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel
from twisted.web.server import Request, Site

from ..connections import Refusal
from ..odata.errors import CONTENT_TYPE as ODATA_JSON
from ..odata.errors import ODataError

# Requests below it are OData's: refused in its JSON error shape.
ODATA_PATH = b"/odata/"
# How long a refused connection stays half-open for the client to read the
# answer (it is closed as soon as the client hangs up).
LINGER_SECONDS = 5.0
# Seconds a client has to send a whole request ([server] request_timeout).
REQUEST_TIMEOUT = 30.0
# Seconds a kept-alive connection may wait, idle, for its next request (at
# most the request timeout).
KEEPALIVE_SECONDS = 15.0


def one_line_answer(status: bytes, reason: str, *, odata: bool = False) -> bytes:
    """A whole HTTP response saying ``reason`` (one line of text), after
    which the connection closes; with ``odata``, in OData's error shape."""
    if odata:
        code = {b"413": "TooLarge", b"408": "Timeout"}.get(status[:3], "InvalidRequest")
        body, content_type = ODataError(code, reason).body(), ODATA_JSON.encode()
    else:
        body, content_type = reason.encode() + b"\n", b"text/plain; charset=utf-8"
    return (b"HTTP/1.1 " + status + b"\r\n"
            b"Content-Type: " + content_type + b"\r\n"
            + (b"OData-Version: 4.0\r\n" if odata else b"")
            + b"Connection: close\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def refusal_answer(refusal: Refusal) -> bytes:
    """What a connection refused by the connection limits is told: 429 when
    its address holds too many already, 503 when the server does."""
    status = b"429 Too Many Requests" if refusal.per_address else b"503 Service Unavailable"
    return one_line_answer(status, refusal.reason)


class LimitedRequest(Request):
    """Refuses a body larger than the site's ``max_body`` as soon as the
    headers announce it (or, for chunked bodies, as soon as it grows past
    it) instead of spooling it to disk first: 413 and close, the way Twisted
    itself answers an unparseable request."""

    _refused = False
    _received = 0

    def _limit(self) -> int:
        return int(getattr(getattr(self.channel, "site", None), "max_body", 10 * 1024 * 1024))

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > self._limit():
            self._refuse()
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            return
        self._received += len(data)
        if self._received > self._limit():
            self._refuse()
            return
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if self._refused:
            return
        # OSEO bodies are XML, never HTML forms: skip Twisted's form parsing,
        # whose Content-Type parse (an email.message round trip) costs as much
        # as the rest of a cached GetCapabilities.
        self._parsePOSTFormSubmission = not path.startswith(b"/oseo")
        super().requestReceived(command, path, version)

    def _refuse(self) -> None:
        self._refused = True
        assert isinstance(self.channel, LimitedChannel)
        # (the request line's target, which Twisted's channel holds until the request is whole)
        target = getattr(self.channel, "_path", b"") or b""
        self.channel.refuse(b"413 Content Too Large", f"request body larger than {self._limit()} bytes",
                            odata=target.startswith(ODATA_PATH))


class LimitedChannel(HTTPChannel):
    """Twisted's HTTP/1.1 channel, except that a request or header line longer
    than it accepts (``MAX_LENGTH``) gets a 400 that says so (Twisted itself
    drops the connection without a word), that every refusal says why in one
    line, and that refusals linger (see ``refuse``). (No HTTP/2: h2 is not
    installed, so Twisted's protocol-switching wrapper would only ever pick
    this.)"""

    _linger: IDelayedCall | None = None
    # While a request is being received: when it must be whole (a time of
    # the site's reactor).
    _due: float | None = None
    # The timer that looks at _due: it may go off early (a request answered
    # in time, a next one begun), and then waits for the next _due, if any.
    _deadline: IDelayedCall | None = None
    # Whether the connection is TLS, once asked (see isSecure).
    _secure: bool | None = None
    # The connection's local and remote addresses, once asked (see getHost).
    _host: Any = None
    _peer: Any = None

    def isSecure(self) -> bool:
        # Asked several times a request (Twisted's Request, Klein's URL,
        # the forwarded-for rules), and each answer is a zope adaptation of
        # the transport, through the connection limiter's wrapper: a few
        # percent of a Submit. A connection does not turn TLS midway.
        secure = self._secure
        if secure is None:
            secure = bool(super().isSecure())
            if self.transport is not None:
                self._secure = secure
        return secure

    # Asked by every Request (Twisted's), the local one a getsockname system
    # call each time; a connection's addresses do not change.
    def getHost(self) -> Any:
        return self._kept("_host", super().getHost)

    def getPeer(self) -> Any:
        return self._kept("_peer", super().getPeer)

    def _kept(self, name: str, read: Callable[[], Any]) -> Any:
        address = getattr(self, name)
        if address is None:
            address = read()
            if self.transport is not None:
                setattr(self, name, address)
        return address

    def refuse(self, status: bytes, reason: str, *, odata: bool = False) -> None:
        """Answer ``status`` with ``reason`` (one line of text; with
        ``odata``, OData's error shape), whatever state the request is in,
        and close.

        Not at once: closing a socket whose input is still unread makes the
        kernel reset the connection, and a reset can destroy the answer
        before the client has read it (a client still sending a refused body
        then sees "connection reset", not the 413). So the answer is followed
        by a half-close, and what the client still sends is read and dropped
        until it hangs up, or for ``LINGER_SECONDS`` at most."""
        if self._linger is not None:
            return
        self._cancel_deadline()
        self.setTimeout(None)  # the linger closes it
        transport = self.transport
        assert transport is not None
        transport.write(one_line_answer(status, reason, odata=odata))
        transport.loseWriteConnection()  # type: ignore[attr-defined]
        self._linger = self.callLater(LINGER_SECONDS, self.loseConnection)

    # The request deadline: Twisted's own timeout is an idle one, reset by
    # every byte, so a client trickling a byte at a time would hold the
    # connection for ever. It runs from the connection's start (or the first
    # byte of each next request) until the request is whole.
    def connectionMade(self) -> None:
        super().connectionMade()
        self._start_deadline()

    # One timer per connection, not one per request: a request's start sets
    # _due, its end clears it, and the timer, when it goes off, refuses the
    # request only if one is still due by then (else it waits for the next
    # due time, or ends). A kept-alive connection's requests then cost no
    # DelayedCall each (Twisted's idle timeout already makes one per request).
    def _start_deadline(self) -> None:
        if self._due is None and self._linger is None and not self._handlingRequest:
            timeout = self._request_timeout()
            self._due = self._now() + timeout
            if self._deadline is None:
                self._deadline = self.callLater(timeout, self._deadline_reached)

    def _stop_deadline(self) -> None:
        self._due = None

    def _cancel_deadline(self) -> None:
        self._due = None
        if self._deadline is not None:
            if self._deadline.active():
                self._deadline.cancel()
            self._deadline = None

    def _deadline_reached(self) -> None:
        self._deadline = None
        due = self._due
        if due is None:
            return
        left = due - self._now()
        if left > 0:
            self._deadline = self.callLater(left, self._deadline_reached)
            return
        self._due = None
        self.refuse(b"408 Request Timeout", f"request not received within {self._request_timeout():g} seconds")

    def _now(self) -> float:
        return float(self.site.reactor.seconds())  # type: ignore[attr-defined]  # (Site.buildProtocol sets it)

    def _request_timeout(self) -> float:
        return float(getattr(getattr(self, "site", None), "request_timeout", REQUEST_TIMEOUT))

    def allContentReceived(self) -> None:
        self._stop_deadline()
        super().allContentReceived()

    def timeoutConnection(self) -> None:
        # An idle connection, closed as Twisted does but without its log line
        # for each (a flood of idle connections would flood the log).
        if self.abortTimeout is not None:
            self._abortingCall = self.callLater(self.abortTimeout, self.forceAbortClient)
        self.loseConnection()

    # Once refused, nothing more is parsed: not the rest of the data at hand
    # (LineReceiver goes on with it after a line that refused), nor what follows.
    def dataReceived(self, data: bytes) -> None:
        if self._linger is None:
            self._start_deadline()
            super().dataReceived(data)

    def lineReceived(self, line: bytes) -> None:
        if self._linger is None:
            self._start_deadline()  # a next request, buffered while the last one was answered
            super().lineReceived(line)

    def rawDataReceived(self, data: bytes) -> None:
        if self._linger is None:
            super().rawDataReceived(data)

    def lineLengthExceeded(self, line: bytes) -> None:
        self.refuse(b"400 Bad Request", f"request line or header longer than {self.MAX_LENGTH} bytes")

    def _send100Continue(self) -> None:
        # Twisted asks for the body after gotLength(), even when that refused it.
        if self._linger is None:
            super()._send100Continue()

    def _respondToBadRequestAndDisconnect(self) -> None:
        # Twisted's own refusal of a request it cannot parse (bad request
        # line, headers, framing): a bare 400 and an immediate close.
        self.refuse(b"400 Bad Request", "malformed HTTP request")

    def checkPersistence(self, request: Any, version: bytes) -> bool:
        # While the daemon drains, every answer closes its connection and
        # says so: a client or proxy keeping connections alive opens its
        # next one elsewhere (this daemon is no longer ready).
        closing = getattr(getattr(self, "site", None), "closing", None)
        if closing is not None and closing():
            request.responseHeaders.setRawHeaders(b"connection", [b"close"])
            return False
        return bool(super().checkPersistence(request, version))

    def connectionLost(self, reason: Failure) -> None:  # type: ignore[override]
        if self._linger is not None and self._linger.active():
            self._linger.cancel()
        self._cancel_deadline()
        super().connectionLost(reason)


class OseodSite(Site):
    protocol = LimitedChannel  # type: ignore[assignment]
    requestFactory = LimitedRequest
    displayTracebacks = False
    noisy = False  # the Listener logs where it listens

    def __init__(self, resource: Any, max_body: int, *, request_timeout: float = REQUEST_TIMEOUT,
                 closing: Callable[[], bool] | None = None, **kwargs: Any) -> None:
        """``request_timeout``: seconds a client has to send a whole request;
        the idle timeout of kept-alive connections (``timeout``) is at most
        that, ``KEEPALIVE_SECONDS`` by default; ``closing()``: whether the
        daemon drains (each answer then closes its connection)."""
        kwargs.setdefault("timeout", min(KEEPALIVE_SECONDS, request_timeout))
        super().__init__(resource, **kwargs)
        self.max_body = max_body
        self.request_timeout = request_timeout
        self.closing = closing

    def log(self, request: Any) -> None:
        # Twisted's access log goes through the global logger on every request
        # and costs ~25% of throughput; RequestMetrics logs what matters.
        pass
