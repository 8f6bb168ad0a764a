"""Packages as clients get them: Submit with packaging over the wire, the
engine packing the batch, DescribeResultAccess handing out the package's
URL (schema-valid), the package downloaded with real FTP and HTTP clients,
unpacked and compared byte for byte with the items' results, the downloads
making the items Downloaded; packaging values a collection does not offer
refused, and advertised in GetOptions."""

from __future__ import annotations

import ftplib
import io
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import attrs
import pytest
import pytest_twisted
import treq
from twisted.internet import reactor, task, threads
from twisted.internet.address import IPv4Address

from oseod.config import DEMO_COLLECTION, PACKAGING_FORMATS, Config
from oseod.core.packages import SUFFIXES, is_package_name
from oseod.ftp.factory import make_ftp_factory
from oseod.jobs.dummy import content
from oseod.model.orders import OrderStatus
from oseod.oseo.namespaces import OSEO
from oseod.store.orders import OrderStore
from tests.events import captured, transfer_event
from tests.polling import eventually
from tests.test_http_downloads import fetch
from tests.test_http_ordering import BASE, code_of, describe, order_id_of, server, submit  # noqa: F401 - a fixture
from tests.test_jobs_packaging import unpack

S = OrderStatus
CLIENT_TIMEOUT = 20.0  # only bounds a hung test


def test_package_names() -> None:
    assert [is_package_name("12", n) for n in ("12-0.zip", "12-17.tar.gz", "12-3.tar.bz2", "12-1.tar")] == [True] * 4
    assert not any(is_package_name("12", n) for n in ("13-0.zip", "12-.zip", "12-x.zip", "12-0.rar", "12-0", "a1",
                                                       "12-0.tar.gz.partial", "112-0.zip"))


def packaged_submit(packaging: str, *items: str) -> str:
    return submit(*items).replace("</orderReference>", f"</orderReference><packaging>{packaging}</packaging>")


FtpClient = Callable[[Callable[[ftplib.FTP], Any]], Any]


@pytest_twisted.async_yield_fixture
async def ftp_client() -> AsyncIterator[Callable[[Any], FtpClient]]:
    """An FTP listener on loopback over a test server's portal: ``talk(f)``
    runs ``f`` with an ftplib client logged in as alice, in a thread."""
    ports: list[Any] = []

    def start(srv: Any) -> FtpClient:
        factory = make_ftp_factory(srv.parts.portal)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        ports.append((port, factory))
        address = port.getHost()
        assert isinstance(address, IPv4Address)

        def talk(session: Callable[[ftplib.FTP], Any]) -> Any:
            def run() -> Any:
                with ftplib.FTP(timeout=CLIENT_TIMEOUT) as client:
                    client.connect(address.host, address.port)
                    client.login("alice", "alice-password")
                    return session(client)

            return threads.deferToThread(run)

        return talk

    yield start
    for port, factory in ports:
        await port.stopListening()
        deadline = time.monotonic() + CLIENT_TIMEOUT
        while factory.connectionCount and time.monotonic() < deadline:
            await task.deferLater(reactor, 0.01, lambda: None)


def expected(order_items: tuple[str, ...]) -> dict[str, bytes]:
    """What the demo (dummy) processor made of the items, as a package holds it."""
    return {f"{item}/{item}-product.dat": content(item, 1024) for item in order_items}


@pytest.mark.parametrize("packaging", PACKAGING_FORMATS)
@pytest_twisted.ensureDeferred
async def test_a_package_over_ftp_and_http(server: Any, ftp_client: Any, packaging: str) -> None:
    srv = await server()
    talk = ftp_client(srv)
    items = ("a1", "a2", "a3")
    code, ack = await srv.call(packaged_submit(packaging, *items))
    assert code == 200
    order_id = order_id_of(ack)
    await srv.parts.engine.drain()
    name = f"{order_id}-0{SUFFIXES[packaging]}"

    # DescribeResultAccess: each item's address is the package (the answer is schema-valid)
    code, answer = await srv.call(describe(order_id))
    entries = answer.findall(f"{{{OSEO}}}URLs")
    assert [e.findtext(f"{{{OSEO}}}itemId") for e in entries] == list(items)
    assert {e.findtext(f".//{{{OSEO}}}URL") for e in entries} == {f"ftp://127.0.0.1:2121/{order_id}/{name}"}
    assert len({e.findtext(f"{{{OSEO}}}expirationDate") for e in entries}) == 1
    code, fresh = await srv.call(describe(order_id, "nextReady"))
    assert fresh.findall(f"{{{OSEO}}}URLs") == []  # the allReady above was the previous call

    # FTP: the package beside the items' directories, fetched whole
    def over_ftp(client: ftplib.FTP) -> tuple[list[str], int | None, bytes]:
        listed = sorted(client.nlst(f"/{order_id}"))
        client.voidcmd("TYPE I")
        size = client.size(f"/{order_id}/{name}")
        chunks: list[bytes] = []
        client.retrbinary(f"RETR /{order_id}/{name}", chunks.append)
        return listed, size, b"".join(chunks)

    listed, size, by_ftp = await talk(over_ftp)
    assert listed == sorted([*items, name])
    assert size == len(by_ftp)
    assert unpack(by_ftp, packaging) == expected(items)

    async def downloads_are(status: OrderStatus, count: int) -> bool:
        order = await srv.parts.ordering.find(order_id)
        counted = await OrderStore(srv.redis).downloads(order_id)
        return (order is not None and order.status.status is status
                and {i: counted.get(i, (0, 0.0))[0] for i in items} == dict.fromkeys(items, count))

    await eventually(lambda: downloads_are(S.Downloaded, 1), what="the FTP download to make the order Downloaded")
    order = await srv.parts.ordering.find(order_id)
    assert order is not None
    assert [(i.status.status, i.status.additional_info) for i in order.items] == [(S.Downloaded, "Downloaded")] * 3
    assert order.status.additional_info == "All 3 items were downloaded"

    # HTTP: the same bytes; a HEAD or a Range is not a download, a whole GET is
    url = srv.url.removesuffix("/oseo") + f"/results/{order_id}/{name}"
    code, headers, body = await fetch(url, method="HEAD")
    assert (code, body, headers.getRawHeaders("content-length")) == (200, b"", [str(len(by_ftp))])
    # a .tar.gz is sent as the file it is, not gzip-encoded (treq's decoder leaves an empty header)
    assert headers.getRawHeaders("content-encoding") in (None, [""])
    code, _, body = await fetch(url, Range="bytes=0-9")
    assert (code, body) == (206, by_ftp[:10])
    with captured(transfer_event) as transfers:
        code, _, by_http = await fetch(url)
        assert (code, by_http) == (200, by_ftp)
        await eventually(lambda: downloads_are(S.Downloaded, 2), what="the HTTP download to be counted")
    [logged] = [e for e in transfers if e["transport"] == "http" and e["order_id"] == order_id]
    assert (logged["item_id"], logged["file"], logged["bytes_sent"], logged["complete"]) == (None, name, len(by_ftp),
                                                                                             True)


@pytest_twisted.ensureDeferred
async def test_packages_are_the_owners_and_only_those_offered(server: Any) -> None:
    srv = await server()
    code, ack = await srv.call(packaged_submit("zip", "b1"))
    order_id = order_id_of(ack)
    code, ack = await srv.call(submit("c1"))
    plain_id = order_id_of(ack)
    await srv.parts.engine.drain()
    root = srv.url.removesuffix("/oseo") + "/results"
    package = f"{root}/{order_id}/{order_id}-0.zip"
    assert (await fetch(package))[0] == 200
    assert (await fetch(package, user="bob"))[0] == 404  # as if there were no such order
    assert (await fetch(package, user=None))[0] == 401
    for url in (f"{root}/{order_id}/{order_id}-0.tar", f"{root}/{order_id}/{order_id}-1.zip",
                f"{root}/{plain_id}/{plain_id}-0.zip", f"{root}/{order_id}/.packages",
                f"{root}/999999/999999-0.zip"):
        code, _, body = await fetch(url)
        assert code == 404, (url, body)
    # an item's directory asked for without its slash: sent there (as before packages had URLs beside them)
    response = await treq.get(f"{root}/{order_id}/b1", auth=("alice", "alice-password"), allow_redirects=False,
                              persistent=False)
    await response.content()
    assert (response.code, response.headers.getRawHeaders("location")) == (308, ["b1/"])
    code, _, page = await fetch(f"{root}/{order_id}/b1")
    assert code == 200 and b'href="b1-product.dat"' in page
    # the items themselves stay downloadable one by one
    code, _, body = await fetch(f"{root}/{order_id}/b1/b1-product.dat")
    assert (code, body) == (200, content("b1", 1024))
    # an order without packaging: its items' own addresses, as before
    code, answer = await srv.call(describe(plain_id))
    assert [u.text for u in answer.iter(f"{{{OSEO}}}URL")] == [
        f"ftp://127.0.0.1:2121/{plain_id}/c1/c1-product.dat"]


@pytest_twisted.ensureDeferred
async def test_packaging_a_collection_does_not_offer_is_refused(server: Any) -> None:
    only_zip = attrs.evolve(DEMO_COLLECTION, packaging=("zip",))
    srv = await server(Config(collections=(only_zip,)))
    code, options = await srv.call(f'<GetOptions xmlns="{OSEO}" {BASE}><collectionId>{only_zip.id}</collectionId>'
                                   "</GetOptions>")
    assert code == 200
    assert {d.text for d in options.iter(f"{{{OSEO}}}description")} >= {
        "PRODUCT_ORDER options for oseod demo collection; packaging: zip"}
    for value in ("tgz", "rar"):  # one oseod builds, one it does not
        code, fault = await srv.call(packaged_submit(value, "d1"))
        text = "".join(fault.itertext())
        assert (code, code_of(fault)) == (400, ("InvalidParameterValue", "packaging"))
        assert f'packaging "{value}"' in text and "offers: zip" in text
    code, fault = await srv.call(packaged_submit("zipx", "d1"))  # not an OSEO value at all
    assert (code, code_of(fault)) == (400, ("InvalidParameterValue", "packaging"))
    code, ack = await srv.call(packaged_submit("zip", "d1"))
    assert code == 200 and order_id_of(ack)


@pytest_twisted.ensureDeferred
async def test_the_demo_collection_offers_every_packaging_oseod_builds(server: Any) -> None:
    every = await server()
    code, options = await every.call(f'<GetOptions xmlns="{OSEO}" {BASE}><collectionId>urn:oseod:demo</collectionId>'
                                     "</GetOptions>")
    assert "PRODUCT_ORDER options for oseod demo collection; packaging: zip, tar, tgz, bzip2" in [
        d.text for d in options.iter(f"{{{OSEO}}}description")]
    code, fault = await every.call(packaged_submit("7z", "e1"))
    assert code_of(fault) == ("InvalidParameterValue", "packaging")
    assert "offers: zip, tar, tgz, bzip2" in "".join(fault.itertext())
