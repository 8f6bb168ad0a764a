"""
The floor of a Submit on oseod's stack: what twisted.web, lxml and one Redis
script cost with none of oseod's own work.

POST /floor parses the body with lxml (a hardened, reused parser, as
oseod's), sends one EVALSHA of a trivial script with as many keys and
argument bytes as a 10-item Submit's create script (13 keys, 354 bytes; 17
arguments, 2,242 bytes) on a txredisapi connection, written in one piece as
oseod writes its scripts, waits for the reply, and answers a small XML
document rendered by lxml. Like oseod's requests for /oseo, it skips
Twisted's form parsing. bench/floor.py measures it against the echo server.

With --oseod-site it serves through oseod's own HTTP layer (OseodSite, its
request and channel, the connection budget's wrapper) instead of a plain
Site: the difference is what that layer costs.

Usage: python bench/floor_server.py --redis-socket PATH [--port-file PATH] [--oseod-site]
"""

from __future__ import annotations

import argparse
import hashlib
import os
from pathlib import Path
from typing import Any

import txredisapi
from lxml import etree
from twisted.internet import defer, endpoints, reactor
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

SCRIPT = b"return 1"
KEYS = [f"oseod:floor:{n:02d}:" + "k" * 9 for n in range(13)]  # 13 keys, 354 bytes
ARGS = ["a" * 131] * 16 + ["a" * 146]  # 17 arguments, 2,242 bytes
OSEO = "http://www.opengis.net/oseo/1.0"


def _bulk(text: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(text), text)


def _command() -> bytes:
    parts = [b"EVALSHA", hashlib.sha1(SCRIPT).hexdigest().encode(), str(len(KEYS)).encode(),
             *(k.encode() for k in KEYS), *(a.encode() for a in ARGS)]
    return b"*%d\r\n" % len(parts) + b"".join(_bulk(p) for p in parts)


class FloorRequest(Request):
    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        self._parsePOSTFormSubmission = False  # as oseod does for /oseo
        super().requestReceived(command, path, version)


class Floor(Resource):
    isLeaf = True

    def __init__(self, connection: Any) -> None:
        super().__init__()
        self._connection = connection
        self._command = _command()
        self._parser = etree.XMLParser(resolve_entities=False, load_dtd=False, no_network=True,
                                       remove_comments=True, remove_pis=True, collect_ids=False)

    def render_POST(self, request: Any) -> Any:
        defer.ensureDeferred(self._answer(request))
        return NOT_DONE_YET

    async def _answer(self, request: Any) -> None:
        lost: list[object] = []  # the client went away (wrk closes its connections at the end of a run)
        request.notifyFinish().addErrback(lost.append)
        etree.fromstring(request.content.read(), self._parser)
        self._connection.transport.write(self._command)
        await self._connection.replyQueue.get()
        root = etree.Element(f"{{{OSEO}}}SubmitAck", nsmap={"oseo": OSEO})
        etree.SubElement(root, f"{{{OSEO}}}status").text = "success"
        etree.SubElement(root, f"{{{OSEO}}}orderId").text = "a" * 14
        request.setHeader(b"content-type", b"application/soap+xml; charset=utf-8")
        if not lost:
            request.write(etree.tostring(root, encoding="utf-8"))
            request.finish()


class QuietSite(Site):
    def log(self, request: object) -> None:
        pass


def _oseod_site(resource: Resource) -> Any:
    """``resource`` behind oseod's own HTTP layer (its Site, request and
    channel, and the connection budget's wrapper), as the daemon serves /oseo."""
    from oseod.config import ServerConfig
    from oseod.connections import process_budget
    from oseod.http.site import OseodSite, refusal_answer

    config = ServerConfig()
    return process_budget(config, reactor).guard(OseodSite(resource, config.max_request_bytes), refusal_answer,
                                                 "http")


async def _start(redis_socket: str, port_file: Path | None, oseod_site: bool) -> None:
    redis = await txredisapi.UnixConnection(redis_socket, reconnect=False)
    await redis.execute_command("SCRIPT", "LOAD", SCRIPT.decode())
    connection = redis._factory.connectionQueue.pending[0]  # noqa: SLF001 - written to as oseod writes scripts
    if oseod_site:
        site = _oseod_site(Floor(connection))
    else:
        site = QuietSite(Floor(connection))
        site.requestFactory = FloorRequest
    port = await endpoints.TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(site)
    url = f"http://127.0.0.1:{port.getHost().port}"  # type: ignore[attr-defined]
    if port_file is not None:
        partial = port_file.with_name(port_file.name + ".partial")
        partial.write_text(url + "\n")
        os.replace(partial, port_file)
    print(f"listening {url}", flush=True)


def _failed(failure: Any) -> None:
    print(f"floor server: cannot start: {failure.getErrorMessage()}", flush=True)
    reactor.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis-socket", required=True)
    parser.add_argument("--port-file", type=Path)
    parser.add_argument("--oseod-site", action="store_true", help="serve through oseod's HTTP layer")
    args = parser.parse_args()
    defer.ensureDeferred(_start(args.redis_socket, args.port_file, args.oseod_site)).addErrback(_failed)
    reactor.run()


if __name__ == "__main__":
    main()
