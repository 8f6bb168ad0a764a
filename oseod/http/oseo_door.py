"""``/oseo`` as a door of its own: a plain twisted.web resource rather than a
Klein route. The OSEO endpoint is one path with three methods, so it needs
none of Klein's routing, and going around it saves the URL map's bind and
match, two ``maybeDeferred``, the error-handler chain and a chunked answer
(written here with its Content-Length) on every request: the daemon's CPU
per 10-item Submit went from 0.86 to 0.63 ms, per GetStatus from 0.47 to
0.33 ms (bench/ordering.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from ..answers import error_answer
from .oseo import OseoEndpoint

ALLOWED_METHODS = b"GET, HEAD, POST"


class OseoDoor(Resource):
    """``POST /oseo`` (SOAP), ``GET /oseo`` (KVP, ``?wsdl``): anything below
    /oseo is a 404, any other method a 405, each in one line, as the other
    doors answer them."""

    isLeaf = True
    log = Logger()

    def __init__(self, oseo: OseoEndpoint) -> None:
        super().__init__()
        self._oseo = oseo

    def render(self, request: IRequest) -> bytes | int:
        # A leaf under Doors: the whole path is in postpath.
        if request.postpath != [b"oseo"]:  # type: ignore[attr-defined]
            return error_answer(request, 404, "not found")
        method = request.method
        handler: Callable[[IRequest], Awaitable[bytes]]
        if method == b"POST":
            handler = self._oseo.post
        elif method in (b"GET", b"HEAD"):
            handler = self._oseo.get
        else:
            request.setHeader(b"allow", ALLOWED_METHODS)
            return error_answer(request, 405, "method not allowed")
        gone: list[bool] = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))  # type: ignore[attr-defined]
        # Never cancelled (Klein would cancel it when the client hangs up): a
        # Submit whose client has gone is still stored and queued; only its
        # answer is dropped.
        answering = Deferred.fromCoroutine(handler(request))
        answering.addCallbacks(self._answer, self._failed, callbackArgs=(request, gone),
                               errbackArgs=(request, gone))
        return NOT_DONE_YET

    @staticmethod
    def _answer(body: bytes, request: IRequest, gone: list[bool]) -> None:
        if not gone:
            _write(request, body)

    def _failed(self, failure: Failure, request: IRequest, gone: list[bool]) -> None:
        """The endpoint answers every error itself; this is for its own bugs."""
        self.log.failure("internal error answering /oseo", failure)
        if not gone:
            _write(request, error_answer(request, 500, "internal error"))


def _write(request: IRequest, body: bytes) -> None:
    request.setHeader(b"content-length", b"%d" % len(body))
    request.write(body)  # (nothing but the headers for a HEAD: twisted.web's Request drops the rest)
    request.finish()
