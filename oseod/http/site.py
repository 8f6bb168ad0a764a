"""The HTTP site: a body-size cap enforced before the body is read, and no
per-request access log (the daemon logs one structured event per request)."""

from __future__ import annotations

from typing import Any

from twisted.web.server import Request, Site


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
        reason = f"request body larger than {self._limit()} bytes\n".encode()
        transport = self.channel.transport
        assert transport is not None
        transport.write(
            b"HTTP/1.1 413 Content Too Large\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Connection: close\r\n"
            b"Content-Length: " + str(len(reason)).encode() + b"\r\n\r\n" + reason
        )
        self.channel.loseConnection()


class OseodSite(Site):
    requestFactory = LimitedRequest
    displayTracebacks = False
    noisy = False  # the Listener logs where it listens

    def __init__(self, resource: Any, max_body: int, **kwargs: Any) -> None:
        super().__init__(resource, **kwargs)
        self.max_body = max_body

    def log(self, request: Any) -> None:
        # Twisted's access log goes through the global logger on every request
        # and costs ~25% of throughput; RequestMetrics logs what matters.
        pass
