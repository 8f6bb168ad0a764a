"""The end of a drain: once the listeners stopped listening, the requests and
transfers still in flight are finished and every connection is closed.

The reactor's own shutdown would cut every open connection, a Submit in the
middle of its answer or a download half sent included. Here, until
``bound`` seconds have passed, idle connections (an HTTP keep-alive waiting
for its next request, an FTP session between transfers, told 421) are closed, and a
connection busy with a request or a transfer is left to finish it, told to
close after it (``Connection: close``). What is still open at the bound is
left to the reactor's shutdown, with one line saying how many."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from twisted.internet import task
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from .connections import GuardedFactory

# How often the open connections are looked at again while they finish.
CHECK_SECONDS = 0.1

log = Logger()


def busy(protocol: Any) -> bool:
    """Whether a connection's protocol is in the middle of something a
    client waits for: an HTTP request (read or answered), an FTP transfer."""
    requests = getattr(protocol, "requests", None)  # twisted.web's HTTPChannel
    if requests:
        # An event stream (the console's live view) never ends by itself:
        # it is cut, and the browser's EventSource reconnects elsewhere.
        return not all(_event_stream(request) for request in requests)
    transfer = getattr(protocol, "dtpInstance", None)  # twisted's FTP
    return transfer is not None and bool(getattr(transfer, "isConnected", False))


def _event_stream(request: Any) -> bool:
    kind = request.responseHeaders.getRawHeaders(b"content-type") or [b""]
    return bool(getattr(request, "startedWriting", False)) and kind[0].startswith(b"text/event-stream")


def _close_after_request(protocol: Any) -> None:
    """An HTTP connection closes once its requests are answered (and says so
    to the client, if its answer has not started)."""
    if not hasattr(protocol, "requests"):
        return
    protocol.persistent = False
    for request in protocol.requests:
        if not getattr(request, "startedWriting", True):
            request.responseHeaders.setRawHeaders(b"connection", [b"close"])


def _innermost(protocol: Any) -> Any:
    """The protocol under its wrappers: twisted.web's Site wraps its
    HTTPChannel (for the HTTP/2 choice), FTPFactory each FTP session (its
    connection limit)."""
    while (inner := getattr(protocol, "_channel", None) or getattr(protocol, "wrappedProtocol", None)) is not None:
        protocol = inner
    return protocol


def _sweep(factories: Iterable[GuardedFactory]) -> int:
    """Close the idle connections; how many are still busy."""
    left = 0
    for factory in factories:
        for connection in list(factory.open_connections):
            inner = _innermost(connection.wrappedProtocol)
            if busy(inner):
                _close_after_request(inner)
                left += 1
            elif callable(goodbye := getattr(inner, "going_down", None)):
                goodbye()  # an FTP session: 421 first, so the client knows why
            elif connection.transport is not None:
                connection.transport.loseConnection()
    return left


async def finish_in_flight(factories: Iterable[GuardedFactory], clock: IReactorTime, bound: float) -> int:
    """Close every connection of ``factories`` as soon as it is idle, for at
    most ``bound`` seconds; how many were still busy at the bound."""
    factories = list(factories)
    busy_now = _sweep(factories)
    if busy_now:
        log.info("drain: finishing {count} request(s) or transfer(s) in flight (at most {bound} s)",
                 count=busy_now, bound=bound)
    waited = 0.0
    while busy_now and waited < bound:
        await task.deferLater(clock, CHECK_SECONDS, lambda: None)
        waited += CHECK_SECONDS
        busy_now = _sweep(factories)
    if busy_now:
        log.warn("drain: {count} request(s) or transfer(s) still in flight after {bound} s are cut off",
                 count=busy_now, bound=bound)
    return busy_now
