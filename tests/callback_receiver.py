"""A client's call-back service on loopback, for the call-back tests: a plain
HTTP server in a thread that keeps every request and answers with the ack of
what it received (a SubmitResponse: SubmitResponseAck; a GetQuotationResponse:
GetQuotationResponseAck...), or, while ``refusing``, HTTP 503. Header names
are kept in lower case."""

from __future__ import annotations

import contextlib
import http.server
import socketserver
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

from lxml import etree

ACK = (b'<?xml version="1.0" encoding="UTF-8"?>'
       b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>'
       b'<oseo:SubmitResponseAck xmlns:oseo="http://www.opengis.net/oseo/1.0" service="OS" version="1.0.0">'
       b"<oseo:status>success</oseo:status></oseo:SubmitResponseAck></s:Body></s:Envelope>")
def ack_for(body: bytes) -> bytes:
    """The SOAP 1.2 acknowledgement of the call-back ``body``: the
    ``…Ack`` of the element in its SOAP Body (SubmitResponseAck when it
    cannot tell)."""
    name = "SubmitResponse"
    try:
        root = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        root = None
    if root is not None:
        payload = next((e for child in root if etree.QName(child).localname == "Body"
                        for e in child if isinstance(e.tag, str)), None)
        if payload is not None:
            name = etree.QName(payload).localname
    return ACK.replace(b"SubmitResponseAck", f"{name}Ack".encode())


class Receiver(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.refusing = False
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server_address[1]}/callbacks"

    def bodies(self) -> list[bytes]:
        with self.lock:
            return [body for _, body in self.received]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with self.server.lock:
            refusing = self.server.refusing
            if not refusing:
                self.server.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        answer = b"busy" if refusing else ack_for(body)
        self.send_response(503 if refusing else 200)
        self.send_header("Content-Type", "text/plain" if refusing else "application/soap+xml; charset=utf-8")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        pass


Server = TypeVar("Server", bound=socketserver.BaseServer)


@contextmanager
def serving(server: Server) -> Iterator[Server]:
    """``server`` answering in a thread of its own until the block ends."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def receiver(tls: ssl.SSLContext | None = None) -> contextlib.AbstractContextManager[Receiver]:
    """A receiver on loopback; with ``tls``, an https one."""
    return serving(Receiver(tls))
