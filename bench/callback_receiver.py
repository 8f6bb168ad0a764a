"""
A client's call-back service for bench/callbacks.py: a bare twisted.web
server on loopback that acknowledges every POST with a SubmitResponseAck
(SOAP 1.2, status success) and counts what arrives.

    POST /ANY     the ack; the arrival is recorded under the path ANY
    GET  /count   JSON, per path: messages, distinct wsa:MessageIDs, first
                  and last arrival (time.monotonic(), comparable with the
                  benchmark's own clock on Linux)
    GET  /records?path=/ANY   JSON list, one per arrival under that path:
                  [arrival, wsa:MessageID, orderId, the order's status]
    GET  /last    the last body received under any path, with its Content-Type

Each arrival is read with three regular expressions, not an XML parser, so
that the receiver itself costs little: what bench/callbacks.py measures is
the daemon's rate, and it measures this server's ceiling in the same run
(the same body and Content-Type straight from wrk) to show how far below it
that rate is. Paths keep the daemon's call-backs (``/callbacks``) apart from
that load (``/ceiling``). The access log is off, as in echo_server.py.

Usage: python bench/callback_receiver.py [--listen ENDPOINT] [--port-file PATH]
Once listening, it writes its URL to --port-file (atomically) and to stdout.
SIGTERM or SIGINT stops it.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from twisted.web.resource import Resource
from twisted.web.server import Request

from echo_server import serve

ACK = (b'<?xml version="1.0" encoding="UTF-8"?>'
       b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>'
       b'<oseo:SubmitResponseAck xmlns:oseo="http://www.opengis.net/oseo/1.0" service="OS" version="1.0.0">'
       b"<oseo:status>success</oseo:status></oseo:SubmitResponseAck></s:Body></s:Envelope>")
ACK_TYPE = b"application/soap+xml; charset=utf-8"

MESSAGE_ID = re.compile(rb"<(?:[\w.-]+:)?MessageID[^>]*>\s*([^<\s]+)")
ORDER_ID = re.compile(rb"<(?:[\w.-]+:)?orderId>\s*([^<\s]+)")
ORDER_STATUS = re.compile(rb"<(?:[\w.-]+:)?orderStatusInfo>\s*<(?:[\w.-]+:)?status>\s*([^<\s]+)")


class Arrivals:
    """What came to one path."""

    def __init__(self) -> None:
        self.records: list[tuple[float, str, str, str]] = []
        self.message_ids: set[str] = set()

    def add(self, body: bytes) -> None:
        now = time.monotonic()
        found = [m.group(1).decode(errors="replace") if m else "" for m in
                 (MESSAGE_ID.search(body), ORDER_ID.search(body), ORDER_STATUS.search(body))]
        self.records.append((now, found[0], found[1], found[2]))
        self.message_ids.add(found[0])

    def summary(self) -> dict[str, Any]:
        return {"messages": len(self.records), "distinct_message_ids": len(self.message_ids),
                "first": self.records[0][0] if self.records else None,
                "last": self.records[-1][0] if self.records else None}


class Receiver(Resource):
    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.paths: dict[str, Arrivals] = {}
        self.last_body = b""
        self.last_type = b""

    def render_POST(self, request: Request) -> bytes:  # noqa: N802 - twisted.web's name
        body = request.content.read() if request.content is not None else b""
        path = request.path.decode(errors="replace")
        arrivals = self.paths.get(path)
        if arrivals is None:
            arrivals = self.paths[path] = Arrivals()
        arrivals.add(body)
        self.last_body, self.last_type = body, request.getHeader(b"content-type") or b""
        request.setHeader(b"content-type", ACK_TYPE)
        return ACK

    def render_GET(self, request: Request) -> bytes:  # noqa: N802
        request.setHeader(b"content-type", b"application/json")
        if request.path == b"/count":
            return json.dumps({path: a.summary() for path, a in self.paths.items()}).encode()
        if request.path == b"/records":
            path = (request.args.get(b"path") or [b"/callbacks"])[0].decode(errors="replace")
            arrivals = self.paths.get(path)
            return json.dumps(arrivals.records if arrivals else []).encode()
        if request.path == b"/last":
            request.setHeader(b"content-type", self.last_type or b"application/octet-stream")
            return self.last_body
        request.setResponseCode(404)
        return b'{"error": "not found"}'


def main() -> None:
    serve(Receiver(), (__doc__ or "").split("\n\n")[1].strip(), "callback_receiver")


if __name__ == "__main__":
    main()
