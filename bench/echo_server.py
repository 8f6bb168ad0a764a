"""
A bare Klein app: the ceiling of Twisted + Klein on this machine.

bench/capabilities.py reports oseod's request rates as a ratio to this server,
measured in the same run, so the figures say how much oseod's own work costs
rather than how fast the machine happens to be. It is deliberately the same
stack as oseod (twisted.web Site, Klein routing, the default reactor) with no
work in the handlers:

    GET  /echo   a fixed small body
    GET  /echo/N N bytes (an answer as long as another server's)
    POST /echo   the request body, echoed back

The access log is off: it goes through the global log on every request and costs
about a quarter of the throughput (notes/twisted-stack.md §1.8).

Usage: python bench/echo_server.py [--listen ENDPOINT] [--port-file PATH]
Once listening, it writes its URL to --port-file (atomically) and to stdout.
SIGTERM or SIGINT stops it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from klein import Klein
from twisted.internet import endpoints, reactor
from twisted.internet.interfaces import IListeningPort
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from twisted.web.server import Site

FIXED_BODY = b"oseod bench echo server\n"

app = Klein()


@app.route("/echo", methods=["GET"])
def fixed(request: IRequest) -> bytes:
    request.setHeader(b"content-type", b"text/plain")
    return FIXED_BODY


@app.route("/echo/<int:size>", methods=["GET"])
def sized(request: IRequest, size: int) -> bytes:
    """``size`` bytes (at most 1 MiB): the ceiling for an answer that long."""
    request.setHeader(b"content-type", b"text/plain")
    return b"echo" + b"." * (min(size, 1 << 20) - 4)


@app.route("/echo", methods=["POST"])
def echo(request: IRequest) -> bytes:
    content_type = request.getHeader(b"content-type") or b"application/octet-stream"
    request.setHeader(b"content-type", content_type)
    return request.content.read()


class QuietSite(Site):
    """A Site without an access log."""

    def log(self, request: object) -> None:
        pass


def _listening(port: IListeningPort, port_file: Path | None) -> None:
    url = f"http://127.0.0.1:{port.getHost().port}"  # type: ignore[attr-defined]
    if port_file is not None:
        partial = port_file.with_name(port_file.name + ".partial")
        partial.write_text(url + "\n")
        os.replace(partial, port_file)  # readers never see half a URL
    print(f"listening {url}", flush=True)


def _failed(failure: Failure, name: str) -> None:
    print(f"{name}: cannot listen: {failure.getErrorMessage()}", file=sys.stderr, flush=True)
    reactor.stop()


def serve(resource: Any, description: str, name: str) -> None:
    """Take --listen and --port-file from the command line, serve ``resource``
    there (no access log) and run the reactor until a signal stops it: the
    main of each of the bench's loopback servers."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--listen", default="tcp:0:interface=127.0.0.1:backlog=1024",
                        help="Twisted server endpoint (default: a free loopback port)")
    parser.add_argument("--port-file", type=Path, help="write the URL here once listening")
    args = parser.parse_args()
    endpoint = endpoints.serverFromString(reactor, args.listen)
    d = endpoint.listen(QuietSite(resource))
    d.addCallbacks(_listening, _failed, callbackArgs=(args.port_file,), errbackArgs=(name,))
    reactor.run()


def main() -> None:
    serve(app.resource(), __doc__.split("\n\n")[0].strip(), "echo_server")


if __name__ == "__main__":
    main()
