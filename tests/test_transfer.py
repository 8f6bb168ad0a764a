"""Big results downloaded whole, resumed and cut off, over FTP (ftplib) and
HTTP (urllib and raw sockets) from the daemon's parts on real loopback
sockets: through os.sendfile on plain TCP, and through the classic producer
where sendfile cannot be used (no os.sendfile, TLS)."""

from __future__ import annotations

import base64
import datetime
import ftplib
import hashlib
import http.client
import os
import socket
import ssl
import struct
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import attrs
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
import pytest_twisted
from twisted.internet import protocol, reactor, threads
from twisted.internet import ssl as twisted_ssl
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, maybeDeferred

from oseod.config import DEMO_COLLECTION, Config
from oseod.ftp.factory import make_ftp_factory
from oseod.http.site import OseodSite
from oseod.jobs.dummy import content
from oseod.model.orders import OrderStatus
from oseod.transfer import FileShrunk, FileTransfer
from tests.events import captured, transfer_event
from tests.polling import eventually
from tests.test_http_ordering import order_id_of, server, submit  # noqa: F401 - server is a fixture

SIZE = 24 * 1024 * 1024 + 123  # more than the socket buffers hold; not a multiple of any chunk or page
CONFIG = Config(collections=(attrs.evolve(DEMO_COLLECTION, processor_options={"size": SIZE}),))
ITEM = "big"
NAME = "big-product.dat"
WHOLE = content(ITEM, SIZE)
TIMEOUT = 30.0  # only bounds a hung test
T = TypeVar("T")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def in_thread(f: Callable[[], T]) -> Deferred[T]:
    return threads.deferToThread(f)


@attrs.frozen
class Big:
    """One completed order of alice's with one big result, served over HTTP and FTP."""

    srv: Any
    order_id: str
    http: str  # the file's URL
    ftp_port: int

    @property
    def path(self) -> str:
        return f"/{self.order_id}/{ITEM}/{NAME}"

    def ftp(self) -> ftplib.FTP:
        client = ftplib.FTP(timeout=TIMEOUT)
        client.connect("127.0.0.1", self.ftp_port)
        client.login("alice", "alice-password")
        return client


@pytest_twisted.async_yield_fixture
async def big(server: Any) -> AsyncIterator[Big]:  # noqa: F811 - the fixture imported above
    srv = await server(CONFIG)
    code, ack = await srv.call(submit(ITEM))
    assert code == 200
    order_id = order_id_of(ack)
    await srv.parts.engine.drain()
    factory = make_ftp_factory(srv.parts.portal)
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    address = port.getHost()
    assert isinstance(address, IPv4Address)
    yield Big(srv, order_id, srv.url.removesuffix("/oseo") + f"/results/{order_id}/{ITEM}/{NAME}", address.port)
    await maybeDeferred(port.stopListening)

    async def closed() -> bool:
        return factory.connectionCount == 0

    await eventually(closed, TIMEOUT, "the FTP sessions to end")


@pytest.fixture
def transfers(monkeypatch: pytest.MonkeyPatch) -> list[FileTransfer]:
    """Every FileTransfer the servers start, to see which way its bytes went."""
    started: list[FileTransfer] = []
    send = FileTransfer.send

    def spy(self: FileTransfer, *args: Any, **kwargs: Any) -> Deferred[int]:
        started.append(self)
        return send(self, *args, **kwargs)

    monkeypatch.setattr(FileTransfer, "send", spy)
    return started


@pytest.fixture
def failures() -> Iterator[list[dict[str, Any]]]:
    """Every event logged with a failure (a traceback in the log)."""
    with captured(lambda event: "log_failure" in event or bool(event.get("isError"))) as events:
        yield events


@pytest.fixture
def transfer_log() -> Iterator[list[dict[str, Any]]]:
    """The transfer-log events (one per download, complete or not)."""
    with captured(transfer_event) as events:
        yield events


async def logged(events: list[dict[str, Any]], count: int) -> list[tuple[str, int, bool]]:
    async def there() -> bool:
        return len(events) >= count

    await eventually(there, TIMEOUT, f"{count} transfer-log events")
    return [(e["transport"], e["bytes_sent"], e["complete"]) for e in events]


def ftp_get(big: Big, rest: int | None = None) -> tuple[int, str, str]:
    """RETR with ftplib: bytes, their hash, the final reply."""
    digest, count = hashlib.sha256(), 0

    def got(data: bytes) -> None:
        nonlocal count
        digest.update(data)
        count += len(data)

    with big.ftp() as client:
        reply = client.retrbinary(f"RETR {big.path}", got, blocksize=1 << 20, rest=rest)
    return count, digest.hexdigest(), reply[:3]


def http_get(url: str, context: ssl.SSLContext | None = None, **headers: str) -> tuple[int, str, int]:
    """GET with urllib as alice: status, the body's hash, its length."""
    token = base64.b64encode(b"alice:alice-password").decode()
    request = urllib.request.Request(url, headers={"Authorization": f"Basic {token}", **headers})
    with urllib.request.urlopen(request, timeout=TIMEOUT, context=context) as response:
        body = response.read()
        return response.status, sha(body), len(body)


async def item_status(big: Big) -> OrderStatus:
    found = await big.srv.parts.ordering.find(big.order_id)
    assert found is not None
    return found.items[0].status.status  # type: ignore[no-any-return]


# -- through os.sendfile ----------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_whole_file_over_ftp_and_http_through_sendfile(big: Big, transfers: list[FileTransfer],
                                                              transfer_log: list[dict[str, Any]]) -> None:
    assert await in_thread(lambda: ftp_get(big)) == (SIZE, sha(WHOLE), "226")
    assert await in_thread(lambda: http_get(big.http)) == (200, sha(WHOLE), SIZE)
    assert [(t.direct, t.sent) for t in transfers] == [(True, SIZE)] * 2
    assert await logged(transfer_log, 2) == [("ftp", SIZE, True), ("http", SIZE, True)]

    async def downloaded() -> bool:
        return await item_status(big) is OrderStatus.Downloaded

    await eventually(downloaded, TIMEOUT, "the item to be Downloaded")


@pytest_twisted.ensureDeferred
async def test_resumed_ftp_download_and_http_ranges_through_sendfile(big: Big, transfers: list[FileTransfer],
                                                                      transfer_log: list[dict[str, Any]]) -> None:
    rest = SIZE // 3 + 1
    assert await in_thread(lambda: ftp_get(big, rest=rest)) == (SIZE - rest, sha(WHOLE[rest:]), "226")
    assert await in_thread(lambda: ftp_get(big, rest=SIZE)) == (0, sha(b""), "226")  # nothing left
    first, last = 5, 5 * 1024 * 1024 + 7
    assert await in_thread(lambda: http_get(big.http, Range=f"bytes={first}-{last}")) == (
        206, sha(WHOLE[first:last + 1]), last + 1 - first)
    assert await in_thread(lambda: http_get(big.http, Range=f"bytes={rest}-")) == (206, sha(WHOLE[rest:]), SIZE - rest)
    assert [(t.direct, t.sent) for t in transfers] == [
        (True, SIZE - rest), (True, 0), (True, last + 1 - first), (True, SIZE - rest)]
    # A resumed FTP download that reached the end completes the file; a Range never does.
    assert await logged(transfer_log, 4) == [
        ("ftp", SIZE - rest, True), ("ftp", 0, True), ("http", last + 1 - first, False), ("http", SIZE - rest, False)]


def reset(sock: socket.socket) -> None:
    """Close with a reset, as a killed client does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def read_some(sock: socket.socket, at_least: int) -> bytes:
    data = b""
    while len(data) < at_least:
        chunk = sock.recv(1 << 20)
        assert chunk, "the server closed first"
        data += chunk
    return data


@pytest_twisted.ensureDeferred
async def test_cut_off_downloads_are_not_complete(big: Big, transfers: list[FileTransfer],
                                                  transfer_log: list[dict[str, Any]],
                                                  failures: list[dict[str, Any]]) -> None:
    def ftp_cut() -> str:
        with big.ftp() as client:
            client.voidcmd("TYPE I")
            data = client.transfercmd(f"RETR {big.path}")
            read_some(data, 1 << 20)
            reset(data)
            with pytest.raises(ftplib.error_temp) as aborted:
                client.voidresp()
            client.voidcmd("NOOP")  # the session goes on
            return str(aborted.value)[:3]

    def http_cut() -> bytes:
        token = base64.b64encode(b"alice:alice-password")
        path = big.http.split("/", 3)[3]
        with socket.create_connection(("127.0.0.1", int(big.http.split(":")[2].split("/")[0])), TIMEOUT) as sock:
            sock.sendall(b"GET /%s HTTP/1.1\r\nHost: x\r\nAuthorization: Basic %s\r\n\r\n" % (path.encode(), token))
            head = read_some(sock, 1 << 20)
            reset(sock)
        return head.split(b"\r\n", 1)[0]

    assert await in_thread(ftp_cut) == "426"
    assert await in_thread(http_cut) == b"HTTP/1.1 200 OK"
    events = await logged(transfer_log, 2)
    assert [(transport, complete) for transport, _, complete in events] == [("ftp", False), ("http", False)]
    assert all(1 << 20 <= sent < SIZE for _, sent, _ in events), events
    assert [t.direct for t in transfers] == [True, True]
    assert all(t.sent == sent for t, (_, sent, _) in zip(transfers, events))
    assert await item_status(big) is OrderStatus.Completed  # not Downloaded
    metrics = big.srv.parts.metrics
    assert (metrics.count("ftp", "download", "aborted"), metrics.count("http", "download", "aborted")) == (1, 1)
    assert failures == []  # a client going away is in the transfer log, not a traceback
    # Both servers still answer in full afterwards.
    assert await in_thread(lambda: ftp_get(big)) == (SIZE, sha(WHOLE), "226")
    assert await in_thread(lambda: http_get(big.http)) == (200, sha(WHOLE), SIZE)


@pytest_twisted.ensureDeferred
async def test_ascii_mode_sends_crlf_line_ends(server: Any) -> None:  # noqa: F811 - the fixture imported above
    srv = await server(Config())
    code, ack = await srv.call(submit("text"))
    order_id = order_id_of(ack)
    await srv.parts.engine.drain()
    port = reactor.listenTCP(0, make_ftp_factory(srv.parts.portal), interface="127.0.0.1")
    path = f"/{order_id}/text/text-product.dat"
    expected = content("text", 1024)

    def lines() -> tuple[bytes, str]:
        raw = bytearray()
        with ftplib.FTP(timeout=TIMEOUT) as client:
            client.connect("127.0.0.1", port.getHost().port)  # type: ignore[attr-defined]
            client.login("alice", "alice-password")
            client.voidcmd("TYPE A")
            with client.transfercmd(f"RETR {path}") as data:
                while chunk := data.recv(65536):
                    raw.extend(chunk)
            return bytes(raw), client.voidresp()[:3]

    try:
        raw, reply = await in_thread(lines)
    finally:
        await maybeDeferred(port.stopListening)
    assert reply == "226"
    assert raw == expected.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def test_ascii_lines_keep_a_crlf_split_across_writes() -> None:
    from oseod.ftp.protocol import AsciiLines

    written: list[bytes] = []
    lines = AsciiLines(attrs.make_class("Sink", {})())
    lines.cons.write = written.append  # type: ignore[attr-defined]
    for chunk in (b"a\r", b"\nb\n", b"", b"c\r\n\n", b"\r"):
        lines.write(chunk)
    assert b"".join(written) == b"a\r\nb\r\nc\r\n\r\n\r"


# -- through the classic producer -------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_without_sendfile_the_producer_sends_the_same_bytes(big: Big, transfers: list[FileTransfer],
                                                                  transfer_log: list[dict[str, Any]],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "sendfile")  # as on a platform without it
    rest = SIZE // 2 + 3
    assert await in_thread(lambda: ftp_get(big)) == (SIZE, sha(WHOLE), "226")
    assert await in_thread(lambda: ftp_get(big, rest=rest)) == (SIZE - rest, sha(WHOLE[rest:]), "226")
    assert await in_thread(lambda: http_get(big.http)) == (200, sha(WHOLE), SIZE)
    assert await in_thread(lambda: http_get(big.http, Range=f"bytes={rest}-")) == (206, sha(WHOLE[rest:]), SIZE - rest)
    assert [(t.direct, t.sent) for t in transfers] == [(False, SIZE), (False, SIZE - rest)] * 2
    assert await logged(transfer_log, 4) == [
        ("ftp", SIZE, True), ("ftp", SIZE - rest, True), ("http", SIZE, True), ("http", SIZE - rest, False)]


def throwaway_certificate() -> twisted_ssl.PrivateCertificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    return twisted_ssl.PrivateCertificate.loadPEM(
        certificate.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()))


@pytest_twisted.ensureDeferred
async def test_https_downloads_go_through_the_producer(big: Big, transfers: list[FileTransfer]) -> None:
    site = OseodSite(big.srv.parts.frontend.resource(), CONFIG.server.max_request_bytes)
    port = reactor.listenSSL(0, site, throwaway_certificate().options(), interface="127.0.0.1")
    try:
        url = big.http.replace(big.http.split("/results")[0], f"https://127.0.0.1:{port.getHost().port}")
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # the throwaway certificate
        assert await in_thread(lambda: http_get(url, context)) == (200, sha(WHOLE), SIZE)
        assert [(t.direct, t.sent) for t in transfers] == [(False, SIZE)]
    finally:
        await maybeDeferred(port.stopListening)


# -- a file shorter than promised ---------------------------------------------------------


class _Sender(protocol.Protocol):
    """Starts the transfer when the client says so (once it is connected:
    a reset before its connect() returned would fail that instead)."""

    def __init__(self, transfer: FileTransfer, bypass: bool, done: Deferred[int]) -> None:
        self.transfer, self.bypass, self.done = transfer, bypass, done

    def dataReceived(self, data: bytes) -> None:
        assert self.transport is not None
        self.transfer.send(self.transport, self.transport, bypass=self.bypass).chainDeferred(self.done)  # type: ignore[arg-type]


@pytest.mark.parametrize("bypass", [True, False], ids=["sendfile", "producer"])
@pytest_twisted.ensureDeferred
async def test_a_file_shorter_than_promised_aborts_the_connection(tmp_path: Path, bypass: bool) -> None:
    path = tmp_path / "short.dat"
    path.write_bytes(WHOLE[:3 * 1024 * 1024])
    with open(path, "rb") as source:
        transfer = FileTransfer(source, 0, 4 * 1024 * 1024)
        done: Deferred[int] = Deferred()
        factory = protocol.Factory.forProtocol(lambda: _Sender(transfer, bypass, done))  # type: ignore[arg-type]
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")

        def receive() -> int:
            got = 0
            with socket.create_connection(("127.0.0.1", port.getHost().port), TIMEOUT) as sock:
                sock.sendall(b"go")
                try:
                    while chunk := sock.recv(1 << 20):
                        got += len(chunk)
                except ConnectionResetError:
                    pass
            return got

        try:
            received = await in_thread(receive)
            with pytest.raises(FileShrunk):
                await done
        finally:
            await maybeDeferred(port.stopListening)
    assert transfer.direct is bypass
    assert transfer.sent == 3 * 1024 * 1024 and received <= transfer.sent
