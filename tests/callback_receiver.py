"""A client's call-back service on loopback, for the call-back tests: a plain
HTTP server in a thread that keeps every request and answers with a
SubmitResponseAck (or, while ``refusing``, HTTP 503). Header names are kept
in lower case."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager

ACK = (b'<?xml version="1.0" encoding="UTF-8"?>'
       b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>'
       b'<oseo:SubmitResponseAck xmlns:oseo="http://www.opengis.net/oseo/1.0" service="OS" version="1.0.0">'
       b"<oseo:status>success</oseo:status></oseo:SubmitResponseAck></s:Body></s:Envelope>")


class Receiver(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.refusing = False
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/callbacks"

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
        answer = b"busy" if refusing else ACK
        self.send_response(503 if refusing else 200)
        self.send_header("Content-Type", "text/plain" if refusing else "application/soap+xml; charset=utf-8")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
