"""Hostile requests to /oseo: malformed, oversized, deeply nested, wrongly
namespaced or badly encoded XML, XXE and entity bombs, hostile credentials.

Everything goes over real loopback HTTP to the whole in-process stack (the
site with its body cap, the real portal, a real Redis). One server serves the
whole module, so the last test can check that, after all of it, the daemon is
healthy and never answered with an internal error. Every fault is validated
against the official schemas: a hostile request gets a SOAP Fault (or a bare
ows:ExceptionReport) with the right exceptionCode, or a 4xx with a one-line
reason, and never a 5xx, a traceback or a hang (each request has a client
timeout: an answer that never comes fails the test instead of stalling the
run).
"""

from __future__ import annotations

import base64
import os
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest
import pytest_twisted
import treq
from lxml import etree
from twisted.internet import defer, reactor
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.threads import deferToThread
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.web.client import FileBodyProducer

from oseod.auth.account import Account
from oseod.auth.passwords import hash_password
from oseod.config import DEMO_COLLECTION, Config
from oseod.http.operations import OFF_THREAD_BYTES
from oseod.http.site import OseodSite
from oseod.oseo.namespaces import OSEO, OWS, SOAP11, SOAP12, WSSE, WSU
from oseod.oseo.security import PASSWORD_TEXT
from oseod.store.connection import Redis, RedisAddress
from oseod.store.users import UserRecord
from tests.oseo_schema import assert_valid, requires_schemas
from tests.polling import eventually
from tests.wire import raw_exchange
from tests.parts import make_parts

pytestmark = requires_schemas

# A Redis database of its own: the function-scoped ``redis`` fixture of other
# modules flushes database 0, and this module's server lives across tests.
HOSTILE_DB = 11

ALICE, ALICE_PASSWORD = "alice", "Alice-pässwörd-🔑-パスワード"
BOB, BOB_PASSWORD = "bob.2@example", "bob-password"

BASE = 'service="OS" version="1.0.0"'
SOAP12_CT = "application/soap+xml; charset=utf-8"
SOAP11_CT = "text/xml; charset=utf-8"
BARE_CT = "application/xml"
CONTENT_TYPES = {SOAP12: SOAP12_CT, SOAP11: SOAP11_CT, None: BARE_CT}
# The demo setup, with payment methods to order with (one as long as allowed),
# and a lock-out that these many wrong credentials, from one address to one
# server that lives across the module, never reach (tests/test_auth_lockout.py
# tests the lock-out).
CONFIG = attrs.evolve(Config(), collections=(attrs.evolve(DEMO_COLLECTION, payment_methods=("quota", "ü" * 40)),),
                      auth=attrs.evolve(Config().auth, max_failures_per_user=10_000, max_failures_per_address=10_000))
DEFAULT_CAP = CONFIG.server.max_request_bytes
TIMEOUT = 60  # seconds; a safety net against hangs, not a performance assertion
GET_CAPABILITIES = f'<GetCapabilities xmlns="{OSEO}" service="OS"/>'


# ------------------------------------------------------------------- messages


def username_token(user: str = ALICE, password: str = ALICE_PASSWORD, *, extra: str = "") -> str:
    return (f'<wsse:Security xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}"><wsse:UsernameToken>'
            f"<wsse:Username>{user}</wsse:Username>"
            f'<wsse:Password Type="{PASSWORD_TEXT}">{password}</wsse:Password>{extra}'
            "</wsse:UsernameToken></wsse:Security>")


def envelope(payload: str, soap: str = SOAP12, header: str | None = None) -> bytes:
    """``payload`` in a SOAP ``soap`` envelope whose header carries Alice's
    UsernameToken (``header``: other header blocks instead)."""
    header = username_token() if header is None else header
    return (f'<s:Envelope xmlns:s="{soap}"><s:Header>{header}</s:Header>'
            f"<s:Body>{payload}</s:Body></s:Envelope>").encode()


def basic(user: str | bytes, password: str | bytes) -> dict[str, list[bytes]]:
    raw = (user if isinstance(user, bytes) else user.encode()) + b":" + (
        password if isinstance(password, bytes) else password.encode())
    return {"Authorization": [b"Basic " + base64.b64encode(raw)]}


def item(item_id: str = "i1", extra: str = "", product: str = "p1") -> str:
    """An orderItem; ``extra`` goes where the schema puts extension."""
    return (f"<orderItem><itemId>{item_id}</itemId>{extra}<productId><identifier>{product}</identifier>"
            "<collectionId>urn:oseod:demo</collectionId></productId></orderItem>")


def submit(*, reference: str = "hostile", before_type: str = "", after_type: str = "", items: str | None = None,
           attributes: str = "") -> str:
    """A Submit of the demo collection. ``before_type`` goes between
    orderReference and orderType, ``after_type`` (extensions) after it."""
    items = item() if items is None else items
    return (f'<Submit xmlns="{OSEO}" {BASE}{attributes}><orderSpecification>'
            f"<orderReference>{reference}</orderReference>{before_type}<orderType>PRODUCT_ORDER</orderType>"
            f"{after_type}{items}</orderSpecification><statusNotification>None</statusNotification></Submit>")


def get_status(order_id: str) -> str:
    return (f'<GetStatus xmlns="{OSEO}" {BASE}><orderId>{order_id}</orderId>'
            "<presentation>full</presentation></GetStatus>")


# Every string element of a Submit that oseo.xsd bounds, with its maxLength,
# and a Submit that holds them all (each "{name}" replaced by its value).
LIMITS = {
    "orderReference": 30, "orderRemark": 4000, "serverAddress": 255, "userName": 8, "userPassword": 20,
    "path": 1024, "firstName": 40, "lastName": 40, "companyRef": 40, "streetAddress": 40, "city": 40,
    "state": 40, "postalCode": 12, "country": 40, "postBox": 12, "telephoneNumber": 18,
    "facsimileTelephoneNumber": 18, "productAnnotation": 4000, "specialInstructions": 4000, "itemId": 80,
    "productOrderOptionsId": 40, "orderItemRemark": 4000, "paymentMethod": 40, "orderAccount": 20,
}
_ADDRESS = ("<firstName>{firstName}</firstName><lastName>{lastName}</lastName><companyRef>{companyRef}</companyRef>"
            "<postalAddress><streetAddress>{streetAddress}</streetAddress><city>{city}</city><state>{state}</state>"
            "<postalCode>{postalCode}</postalCode><country>{country}</country><postBox>{postBox}</postBox>"
            "</postalAddress><telephoneNumber>{telephoneNumber}</telephoneNumber>"
            "<facsimileTelephoneNumber>{facsimileTelephoneNumber}</facsimileTelephoneNumber>")
FULL_SUBMIT = (
    f'<Submit xmlns="{OSEO}" {BASE}><orderSpecification>'
    "<orderReference>{orderReference}</orderReference><orderRemark>{orderRemark}</orderRemark>"
    "<deliveryInformation><onlineAddress><protocol>ftp</protocol><serverAddress>{serverAddress}</serverAddress>"
    "<userName>{userName}</userName><userPassword>{userPassword}</userPassword><path>{path}</path>"
    f"</onlineAddress><mailAddress>{_ADDRESS}</mailAddress></deliveryInformation>"
    f"<invoiceAddress>{_ADDRESS}</invoiceAddress>"
    "<deliveryOptions><onlineDataAccess><protocol>ftp</protocol></onlineDataAccess>"
    "<productAnnotation>{productAnnotation}</productAnnotation>"
    "<specialInstructions>{specialInstructions}</specialInstructions></deliveryOptions>"
    "<orderType>PRODUCT_ORDER</orderType>"
    "<orderItem><itemId>{itemId}</itemId><productOrderOptionsId>{productOrderOptionsId}</productOrderOptionsId>"
    "<orderItemRemark>{orderItemRemark}</orderItemRemark>"
    "<payment><paymentMethod>{paymentMethod}</paymentMethod><orderAccount>{orderAccount}</orderAccount></payment>"
    "<productId><identifier>p1</identifier><collectionId>urn:oseod:demo</collectionId></productId></orderItem>"
    "</orderSpecification><statusNotification>None</statusNotification></Submit>"
)


def full_submit(**values: str) -> str:
    defaults = {name: name[:min(limit, 8)] for name, limit in LIMITS.items()} | {"paymentMethod": "quota"}
    return FULL_SUBMIT.format(**{**defaults, **values})


# --------------------------------------------------------------------- server


class Server:
    def __init__(self, redis: Redis) -> None:
        config = CONFIG
        self.parts = make_parts(config, redis, admin_token=lambda: "the-token", digest_secrets=None,
                                listener_url=lambda scheme: f"{scheme}://127.0.0.1:1")
        self.site = OseodSite(self.parts.frontend.resource(), config.server.max_request_bytes)
        self.port: Any = reactor.listenTCP(0, self.site, interface="127.0.0.1")
        self.base = f"http://127.0.0.1:{self.port.getHost().port}"

    async def request(self, method: str, path: str, body: Any = None, content_type: str | None = None,
                      headers: dict[str, Any] | None = None) -> tuple[int, Any, bytes]:
        all_headers: dict[str, Any] = dict(headers or {})
        if content_type is not None:
            all_headers["Content-Type"] = [content_type]
        response = await treq.request(method, self.base + path, data=body, headers=all_headers, persistent=False,
                                      timeout=TIMEOUT)
        answer = await response.content()
        assert response.code < 500, answer[:2000]
        assert b"Traceback" not in answer and b'File "' not in answer
        return response.code, response.headers, answer

    async def post(self, body: Any, content_type: str | None = SOAP12_CT,
                   headers: dict[str, Any] | None = None) -> tuple[int, Any, bytes]:
        return await self.request("POST", "/oseo", body, content_type, headers)

    async def call(self, payload: str, soap: str | None = SOAP12, **kwargs: Any) -> tuple[int, bytes]:
        """POST ``payload`` as Alice: in an envelope with her token, or bare
        (``soap`` None) with HTTP Basic."""
        if soap is None:
            code, _, answer = await self.post(payload.encode(), BARE_CT, headers=basic(ALICE, ALICE_PASSWORD))
        else:
            code, _, answer = await self.post(envelope(payload, soap, **kwargs), CONTENT_TYPES[soap])
        return code, answer


@pytest_twisted.async_yield_fixture(scope="module")
async def server(redis_server: RedisAddress) -> AsyncIterator[Server]:
    redis = Redis(attrs.evolve(redis_server, db=HOSTILE_DB))
    await redis.connect()
    await redis.conn.flushdb()
    srv = Server(redis)
    await srv.parts.engine.start()
    await srv.parts.users.create(UserRecord(name=ALICE, password_hash=hash_password(ALICE_PASSWORD)))
    await srv.parts.users.create(UserRecord(name=BOB, password_hash=hash_password(BOB_PASSWORD), group="others"))
    yield srv
    await srv.port.stopListening()
    await srv.parts.engine.drain()
    await srv.parts.engine.stop()
    await redis.close()


# ------------------------------------------------------------------ checking


def fault(answer: bytes, code: str, soap: str | None, *, locator: str | None = None) -> str:
    """Check that ``answer`` is a schema-valid fault of ``code`` in the
    ``soap`` envelope (None: a bare report); its ExceptionText."""
    root = etree.fromstring(answer)
    expected_root = f"{{{soap}}}Envelope" if soap else f"{{{OWS}}}ExceptionReport"
    assert root.tag == expected_root, answer[:500]
    report = assert_valid(root)
    exception = report.find(f".//{{{OWS}}}Exception") if report.tag != f"{{{OWS}}}Exception" else report
    assert exception is not None, answer[:500]
    assert exception.get("exceptionCode") == code, answer[-1500:]
    if soap == SOAP12:
        assert root.findtext(f".//{{{SOAP12}}}Code/{{{SOAP12}}}Value") == "soap:Sender"
    elif soap == SOAP11:
        assert root.findtext("./*/*/faultcode") == "soap:Client"
    if locator is not None:
        assert exception.get("locator") == locator, answer[-1500:]
    return exception.findtext(f"{{{OWS}}}ExceptionText") or ""


def order_id_of(answer: bytes) -> str:
    ack = assert_valid(answer)
    assert ack.tag == f"{{{OSEO}}}SubmitAck", answer[:500]
    order_id = ack.findtext(f"{{{OSEO}}}orderId")
    assert order_id
    return order_id


# ------------------------------------------------------------ malformed XML

MALFORMED = {
    "truncated": envelope(submit())[:-40],
    "unclosed tags": envelope("<GetCapabilities service='OS'><Sections><Section>All").replace(b"</s:Body>", b""),
    "mismatched tags": b"<a><b></a></b>",
    "garbage bytes": bytes(range(256)) * 4,
    "random bytes": bytes.fromhex("9f1c0b7e55d2a4ff00e1c3b5") * 100,
    "empty body": b"",
    "only a prolog": b'<?xml version="1.0" encoding="UTF-8"?>\n',
    "only whitespace": b" \r\n\t ",
    "two roots": envelope(GET_CAPABILITIES) + envelope(GET_CAPABILITIES),
    "text after the root": envelope(GET_CAPABILITIES) + b"trailing",
    "undeclared prefix": b"<s:Envelope><s:Body/></s:Envelope>",
    "undefined entity": envelope(submit(reference="&nope;")),
    "unescaped ampersand": envelope(submit(reference="a & b")),
    "attribute without quotes": f"<GetCapabilities xmlns='{OSEO}' service=OS/>".encode(),
    "duplicate attribute": f"<GetCapabilities xmlns='{OSEO}' service='OS' service='OS'/>".encode(),
    "XML declaration not first": b" " + b'<?xml version="1.0"?>' + envelope(GET_CAPABILITIES),
    "JSON": b'{"request": "GetCapabilities", "service": "OS"}',
    "HTML": b"<!-- x --><html><body><p>hello<br></body></html>",
    "a form": b"service=OS&request=GetCapabilities",
}


@pytest.mark.parametrize("soap", [SOAP12, SOAP11, None], ids=["soap12", "soap11", "bare"])
@pytest.mark.parametrize("body", list(MALFORMED.values()), ids=list(MALFORMED))
@pytest_twisted.ensureDeferred
async def test_malformed_xml_is_a_sender_fault(server: Server, body: bytes, soap: str | None) -> None:
    # Not XML, so the answer takes the form the content type announces.
    code, headers, answer = await server.post(body, CONTENT_TYPES[soap], headers=basic(ALICE, ALICE_PASSWORD))
    assert code == 400
    assert headers.getRawHeaders("content-type")[0].startswith(CONTENT_TYPES[soap].split(";")[0])
    text = fault(answer, "NoApplicableCode", soap)
    assert "well-formed" in text or "DOCTYPE" in text


# ------------------------------------------------------- XXE, entity bombs


class Tripwire(Factory):
    """A listener that counts the connections made to it: a server that
    fetches an external entity or DTD from it would show up here."""

    def __init__(self) -> None:
        self.connections = 0

    def buildProtocol(self, addr: Any) -> Protocol:
        self.connections += 1
        return Protocol()


@pytest.fixture
def tripwire() -> Iterator[tuple[Tripwire, str]]:
    factory = Tripwire()
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    yield factory, f"http://127.0.0.1:{port.getHost().port}"
    port.stopListening()


@pytest.fixture
def secret_file(tmp_path: Path) -> tuple[str, str]:
    """A local file with a unique secret, as the target of file:// URLs."""
    secret = "TOP-SECRET-" + os.urandom(8).hex()
    path = tmp_path / "secret.txt"
    path.write_text(secret + "\n")
    return path.as_uri(), secret


def _xxe_bodies(file_url: str, http_url: str) -> dict[str, bytes]:
    payload = submit(reference="&xxe;")
    soap = envelope(payload).decode()
    bomb = "".join(f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10))
    return {
        "external entity (file)": f'<!DOCTYPE s:Envelope [<!ENTITY xxe SYSTEM "{file_url}">]>{soap}'.encode(),
        "external entity (/etc/passwd)":
            f'<!DOCTYPE s:Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>{soap}'.encode(),
        "external entity (http)": f'<!DOCTYPE s:Envelope [<!ENTITY xxe SYSTEM "{http_url}/e">]>{soap}'.encode(),
        "parameter entities": (f'<!DOCTYPE s:Envelope [<!ENTITY % p SYSTEM "{file_url}">'
                               f'<!ENTITY % d SYSTEM "{http_url}/d.dtd"> %p; %d;]>{soap}').encode(),
        "external DTD (http)": f'<!DOCTYPE s:Envelope SYSTEM "{http_url}/x.dtd">{soap}'.replace("&xxe;", "x").encode(),
        "external DTD (file)": f'<!DOCTYPE s:Envelope SYSTEM "{file_url}">{soap}'.replace("&xxe;", "x").encode(),
        "public DTD": f'<!DOCTYPE s:Envelope PUBLIC "-//X//Y//EN" "{http_url}/p.dtd">{soap}'.replace(
            "&xxe;", "x").encode(),
        "UTF-16 DOCTYPE": (f'<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE s:Envelope '
                           f'[<!ENTITY xxe SYSTEM "{file_url}">]>{soap}').encode("utf-16"),
        "UTF-16BE DOCTYPE without BOM": (f'<?xml version="1.0" encoding="UTF-16BE"?><!DOCTYPE s:Envelope '
                                         f'[<!ENTITY xxe SYSTEM "{file_url}">]>{soap}').encode("utf-16-be"),
        "UTF-32 DOCTYPE": f'<!DOCTYPE s:Envelope [<!ENTITY xxe SYSTEM "{file_url}">]>{soap}'.encode("utf-32"),
        "billion laughs": (f'<!DOCTYPE s:Envelope [<!ENTITY lol0 "lol">{bomb}<!ENTITY xxe "&lol9;">]>'
                           f"{soap}").encode(),
        "quadratic blowup": (f'<!DOCTYPE s:Envelope [<!ENTITY a "{"a" * 50_000}">]>'
                             f"{soap.replace('&xxe;', '&a;' * 5_000)}").encode(),
        "DOCTYPE after a comment": f'<!-- hi --><!DOCTYPE s:Envelope [<!ENTITY xxe "x">]>{soap}'.encode(),
    }


@pytest.mark.parametrize("case", list(_xxe_bodies("file:///x", "http://x")))
@pytest.mark.parametrize("content_type", [SOAP12_CT, BARE_CT])
@pytest_twisted.ensureDeferred
async def test_dtds_are_refused_without_being_read(server: Server, tripwire: tuple[Tripwire, str],
                                                   secret_file: tuple[str, str], case: str,
                                                   content_type: str) -> None:
    wire, http_url = tripwire
    file_url, secret = secret_file
    body = _xxe_bodies(file_url, http_url)[case]
    code, _, answer = await server.post(body, content_type)
    assert code == 400
    text = fault(answer, "NoApplicableCode", SOAP12 if content_type == SOAP12_CT else None)
    assert "DOCTYPE" in text
    assert secret.encode() not in answer and b"root:" not in answer and b"lollol" not in answer
    assert wire.connections == 0
    assert len(answer) < 2000


@pytest_twisted.ensureDeferred
async def test_xinclude_and_schema_locations_are_not_followed(server: Server, tripwire: tuple[Tripwire, str],
                                                             secret_file: tuple[str, str]) -> None:
    wire, http_url = tripwire
    file_url, secret = secret_file
    xi = "http://www.w3.org/2001/XInclude"
    # XInclude in an extension (simple content: refused, not processed).
    code, answer = await server.call(submit(after_type=f'<extension><xi:include xmlns:xi="{xi}" href="{file_url}" '
                                                      f'parse="text"/></extension>'))
    assert code == 400
    fault(answer, "InvalidParameterValue", SOAP12, locator="extension")
    assert secret.encode() not in answer
    # schemaLocation hints and an XInclude among option values are kept as
    # the client's XML, never fetched nor expanded, not even when echoed.
    location = f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="{OSEO} {http_url}/s.xsd"'
    scene = (f"<sceneSelection><ParameterData><encoding>XMLEncoding</encoding><values>"
             f'<xi:include xmlns:xi="{xi}" href="{file_url}" parse="text"/></values></ParameterData>'
             "</sceneSelection>")
    code, answer = await server.call(submit(attributes=" " + location, items=item(extra=scene)))
    assert code == 200, answer
    code, answer = await server.call(get_status(order_id_of(answer)))
    assert code == 200
    assert_valid(answer)
    assert f'href="{file_url}"'.encode() in answer
    assert secret.encode() not in answer
    assert wire.connections == 0


# --------------------------------------------------------- oversized bodies


class LazyDocument:
    """A file-like object whose content is made as it is read: a SOAP
    Submit whose orderRemark is ``size`` bytes of padding in total. With
    ``known_length`` it can seek and tell (FileBodyProducer then sends a
    Content-Length); without, the body goes chunked. ``produced`` counts what
    the client was allowed to send."""

    def __init__(self, size: int, known_length: bool) -> None:
        head = envelope(submit(reference="big", before_type="<orderRemark>")).split(b"<orderRemark>")[0]
        self._head = head + b"<orderRemark>"
        self.size = size
        self.produced = 0
        self._position = 0
        if known_length:
            self.seek = self._seek  # type: ignore[method-assign]
            self.tell = self._tell  # type: ignore[method-assign]

    def read(self, n: int) -> bytes:
        n = min(n, self.size - self.produced)
        if n <= 0:
            return b""
        start = self.produced
        self.produced += n
        if start < len(self._head):
            chunk = self._head[start:start + n]
            return chunk + b"x" * (n - len(chunk))
        return b"x" * n

    def _seek(self, offset: int, whence: int = 0) -> int:
        # Only FileBodyProducer's length probe: seek(0, 2), tell(), seek(0, 0).
        self._position = self.size if whence == 2 else offset
        return self._position

    def _tell(self) -> int:
        return self._position

    def close(self) -> None:
        pass


@pytest.mark.parametrize("known_length", [True, False], ids=["content-length", "chunked"])
@pytest_twisted.ensureDeferred
async def test_a_64_mib_body_is_refused_unread(server: Server, known_length: bool) -> None:
    size = 64 * 1024 * 1024
    document = LazyDocument(size, known_length)
    producer = FileBodyProducer(document, readSize=64 * 1024)  # type: ignore[arg-type]
    code, headers, answer = await server.post(producer, SOAP12_CT, headers=basic(ALICE, ALICE_PASSWORD))
    assert code == 413
    assert headers.getRawHeaders("content-type") == ["text/plain; charset=utf-8"]
    assert answer == f"request body larger than {DEFAULT_CAP} bytes\n".encode()
    # The server stopped reading: the client could push no more than the
    # socket buffers hold (a Content-Length is refused before any of the
    # body is read; a chunked body once it outgrows the cap).
    assert document.produced < (DEFAULT_CAP if known_length else size // 2)
    producer.stopProducing()
    code, _, answer = await server.post(envelope(GET_CAPABILITIES), SOAP12_CT)
    assert code == 200
    assert_valid(answer)


@pytest_twisted.ensureDeferred
async def test_bodies_under_the_cap_are_read(server: Server) -> None:
    padding = "x" * 1_000_000  # over OFF_THREAD_BYTES: parsed from the spooled file
    code, answer = await server.call(submit(before_type=f"<orderRemark>{padding}</orderRemark>"))
    assert code == 400
    assert "4000" in fault(answer, "InvalidParameterValue", SOAP12, locator="orderRemark")
    assert len(answer) < 3000
    # One text longer than the XML limits allow (1 MiB) is the parser's
    # refusal, however far under the cap the body is.
    for size in (2_000_000, DEFAULT_CAP - 4096):
        code, answer = await server.call(submit(before_type=f"<orderRemark>{'x' * size}</orderRemark>"))
        assert code == 400
        assert "longer than 1048576 bytes" in fault(answer, "NoApplicableCode", SOAP12)


@pytest_twisted.ensureDeferred
async def test_big_requests_are_parsed_in_a_thread_and_answered_the_same(server: Server) -> None:
    # Over OFF_THREAD_BYTES the body is unwrapped and the request parsed in
    # the thread pool (seconds of work for the biggest ones), with the same
    # answers as on the reactor thread.
    extensions = "".join(f"<extension>ext-{n:06d}-{'e' * 100}</extension>" for n in range(5_000))
    assert len(extensions) > OFF_THREAD_BYTES
    code, answer = await server.call(submit(reference="big", after_type=extensions))
    assert code == 200, answer[:500]
    order_id = order_id_of(answer)
    code, answer = await server.call(get_status(order_id))
    assert code == 200
    monitor = etree.fromstring(answer).find(f".//{{{OSEO}}}orderMonitorSpecification")
    assert monitor is not None
    echoed = monitor.findall(f"{{{OSEO}}}extension")
    assert len(echoed) == 5_000 and echoed[-1].text == f"ext-004999-{'e' * 100}"
    code, answer = await server.call(submit(before_type="<orderRemark>" + "r" * 4001 + "</orderRemark>",
                                            after_type=extensions))
    assert code == 400
    assert "4000" in fault(answer, "InvalidParameterValue", SOAP12, locator="orderRemark")
    code, answer = await server.call(submit(after_type=extensions + "<unexpected/>"))
    assert code == 400 and fault(answer, "InvalidParameterValue", SOAP12, locator="unexpected")


_BODY = envelope(GET_CAPABILITIES)
_POST = b"POST /oseo HTTP/1.1\r\nHost: x\r\nContent-Type: application/soap+xml\r\n"
RAW_REQUESTS = {
    "bad Content-Length": _POST + b"Content-Length: twelve\r\n\r\n" + _BODY,
    "negative Content-Length": _POST + b"Content-Length: -5\r\n\r\n" + _BODY,
    "two Content-Lengths": _POST + b"Content-Length: 10\r\nContent-Length: 20\r\n\r\n" + _BODY,
    "Content-Length and chunked": _POST + b"Content-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n" + _BODY,
    "bad chunk size": _POST + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n" + _BODY + b"\r\n0\r\n\r\n",
    "unknown transfer coding": _POST + b"Transfer-Encoding: gzip\r\n\r\n" + _BODY,
    "header without colon": _POST + b"Nonsense\r\nContent-Length: 3\r\n\r\nabc",
    "many headers": _POST + b"".join(b"X-%d: y\r\n" % n for n in range(2000)) + b"Content-Length: 3\r\n\r\nabc",
    "not HTTP": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(32) + b"\r\n\r\n",
    "HTTP/2 preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
}
@pytest_twisted.ensureDeferred
async def test_an_announced_oversized_body_is_refused_before_100_continue(server: Server) -> None:
    # curl asks "Expect: 100-continue" before sending a body over 1 MB: the
    # one answer is the 413 (no "100 Continue" after it), then the close.
    answer = await _exchange(server, _POST + b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % (64 << 20))
    assert answer.startswith(b"HTTP/1.1 413 Content Too Large\r\n"), answer
    assert answer.count(b"HTTP/1.1") == 1, answer
    assert answer.endswith(f"\r\n\r\nrequest body larger than {DEFAULT_CAP} bytes\n".encode())


# Lines longer than Twisted reads (16 KiB): Twisted itself would drop the
# connection without a word.
LONG_LINES = {
    "huge header": _POST + b"X-Big: " + b"a" * 100_000 + b"\r\nContent-Length: 3\r\n\r\nabc",
    "huge request line": b"GET /oseo?request=" + b"x" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
}


async def _exchange(server: Server, data: bytes) -> bytes:
    answer = await deferToThread(raw_exchange, server.port.getHost().port, data, TIMEOUT)
    assert b"Traceback" not in answer
    return answer


@pytest.mark.parametrize("data", list(RAW_REQUESTS.values()), ids=list(RAW_REQUESTS))
@pytest_twisted.ensureDeferred
async def test_broken_http_framing_is_a_4xx_with_a_reason(server: Server, data: bytes) -> None:
    answer = await _exchange(server, data)
    assert answer.split(b"\r\n", 1)[0].startswith(b"HTTP/1.1 4"), answer[:300]
    assert answer.endswith(b"\r\n\r\nmalformed HTTP request\n"), answer[-300:]


@pytest.mark.parametrize("data", list(LONG_LINES.values()), ids=list(LONG_LINES))
@pytest_twisted.ensureDeferred
async def test_over_long_lines_are_a_400_with_a_reason(server: Server, data: bytes) -> None:
    answer = await _exchange(server, data)
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer[:300]
    assert answer.endswith(b"\r\n\r\nrequest line or header longer than 16384 bytes\n")


# ----------------------------------------------------------- deep nesting


@pytest.mark.parametrize("depth", [100_000, 1_000])
@pytest_twisted.ensureDeferred
async def test_deep_nesting_is_refused_by_the_parser(server: Server, depth: int) -> None:
    nested = "<a>" * depth + "</a>" * depth
    code, answer = await server.call(submit(after_type=f"<extension>{nested}</extension>"))
    assert code == 400
    assert fault(answer, "NoApplicableCode", SOAP12).endswith("elements nested more than 64 deep")


@pytest_twisted.ensureDeferred
async def test_nesting_within_the_parser_limit(server: Server) -> None:
    nested = "<a>" * 200 + "</a>" * 200
    code, answer = await server.call(submit(after_type=f"<extension>{nested}</extension>"))
    assert code == 400
    assert "nested more than 64 deep" in fault(answer, "NoApplicableCode", SOAP12)
    nested = "<a>" * 50 + "</a>" * 50
    code, answer = await server.call(submit(after_type=f"<extension>{nested}</extension>"))
    assert code == 400
    assert "text only" in fault(answer, "InvalidParameterValue", SOAP12, locator="extension")
    # Inside option values, deep XML is the client's own: kept and echoed
    # (within the XML limits: 64 levels in all, envelope included).
    nested = "<a>" * 50 + "deep" + "</a>" * 50
    scene = (f"<sceneSelection><ParameterData><encoding>XMLEncoding</encoding><values>{nested}</values>"
             "</ParameterData></sceneSelection>")
    code, answer = await server.call(submit(items=item(extra=scene)))
    assert code == 200
    code, answer = await server.call(get_status(order_id_of(answer)))
    assert code == 200
    values = assert_valid(answer).find(f".//{{{OSEO}}}sceneSelection//{{{OSEO}}}values")
    assert values is not None
    chain = values.xpath("*[1]/descendant-or-self::*")
    assert len(chain) == 50 and chain[-1].text == "deep"


# ------------------------------------------------------- wrong namespaces


def _wrong_namespaces() -> dict[str, tuple[bytes, str, str | None, str, str | None]]:
    """name: (body, content type, fault envelope, exceptionCode, locator)."""
    token = username_token()
    no_body = f'<s:Envelope xmlns:s="{SOAP12}"><s:Header>{token}</s:Header></s:Envelope>'.encode()
    foreign_body = (f'<s:Envelope xmlns:s="{SOAP12}" xmlns:o="{SOAP11}"><s:Header>{token}</s:Header>'
                    f"<o:Body>{GET_CAPABILITIES}</o:Body></s:Envelope>").encode()
    header_last = (f'<s:Envelope xmlns:s="{SOAP12}"><s:Body>{GET_CAPABILITIES}</s:Body><s:Header>{token}'
                   "</s:Header></s:Envelope>").encode()
    other_envelope = f'<s:Envelope xmlns:s="urn:not-soap"><s:Body>{GET_CAPABILITIES}</s:Body></s:Envelope>'
    return {
        "SOAP 1.1 envelope as SOAP 1.2": (envelope(GET_CAPABILITIES, SOAP11), SOAP12_CT, SOAP12,
                                          "NoApplicableCode", None),
        "SOAP 1.2 envelope as SOAP 1.1": (envelope(GET_CAPABILITIES, SOAP12), SOAP11_CT, SOAP11,
                                          "NoApplicableCode", None),
        "SOAP 1.2 envelope as application/xml": (envelope(GET_CAPABILITIES), BARE_CT, None,
                                                 "NoApplicableCode", None),
        "unknown envelope namespace": (other_envelope.encode(), SOAP12_CT, SOAP12, "NoApplicableCode", None),
        "unknown envelope namespace, bare": (other_envelope.encode(), BARE_CT, None, "OperationNotSupported",
                                             "Envelope"),
        "Submit in OSEO 2.0": (envelope(submit().replace(OSEO, "http://www.opengis.net/oseo/2.0")), SOAP12_CT,
                               SOAP12, "OperationNotSupported", "Submit"),
        "Submit without namespace": (envelope(submit().replace(f' xmlns="{OSEO}"', "")), SOAP12_CT, SOAP12,
                                     "OperationNotSupported", "Submit"),
        "Submit children in another namespace": (
            envelope(submit().replace("<orderSpecification>", '<orderSpecification xmlns="urn:x">')), SOAP12_CT,
            SOAP12, "InvalidParameterValue", "orderSpecification"),
        "an OSEO response as request": (envelope(f'<SubmitAck xmlns="{OSEO}"><status>success</status></SubmitAck>'),
                                        SOAP12_CT, SOAP12, "OperationNotSupported", "SubmitAck"),
        "two Body children": (envelope(GET_CAPABILITIES * 2), SOAP12_CT, SOAP12, "NoApplicableCode", None),
        "two Body children, SOAP 1.1": (envelope(GET_CAPABILITIES + submit(), SOAP11), SOAP11_CT, SOAP11,
                                        "NoApplicableCode", None),
        "empty Body": (envelope(""), SOAP12_CT, SOAP12, "NoApplicableCode", None),
        "Body with only text": (envelope("GetCapabilities"), SOAP12_CT, SOAP12, "NoApplicableCode", None),
        "no Body": (no_body, SOAP12_CT, SOAP12, "NoApplicableCode", None),
        "Body in the SOAP 1.1 namespace": (foreign_body, SOAP12_CT, SOAP12, "NoApplicableCode", None),
        "Header after Body": (header_last, SOAP12_CT, SOAP12, "NoApplicableCode", None),
        "a Body as root": (f'<s:Body xmlns:s="{SOAP12}">{GET_CAPABILITIES}</s:Body>'.encode(), SOAP12_CT, SOAP12,
                           "NoApplicableCode", None),
    }


@pytest.mark.parametrize("case", list(_wrong_namespaces()))
@pytest_twisted.ensureDeferred
async def test_wrong_namespaces(server: Server, case: str) -> None:
    body, content_type, soap, code, locator = _wrong_namespaces()[case]
    status, _, answer = await server.post(body, content_type, headers=basic(ALICE, ALICE_PASSWORD))
    assert status == 400
    fault(answer, code, soap, locator=locator)


# -------------------------------------------------------- over-long strings


@pytest.mark.parametrize(("name", "limit"), list(LIMITS.items()))
@pytest_twisted.ensureDeferred
async def test_over_long_strings_name_the_element(server: Server, name: str, limit: int) -> None:
    # Limits count characters, not bytes: "ü" is two bytes in UTF-8.
    code, answer = await server.call(full_submit(**{name: "ü" * (limit + 1)}))
    assert code == 400
    text = fault(answer, "InvalidParameterValue", SOAP12, locator=name)
    assert name in text and str(limit) in text and str(limit + 1) in text
    assert len(answer) < 3000  # the value is quoted, not echoed in full
    code, answer = await server.call(full_submit(**{name: "ü" * limit}))
    assert code == 200, answer


@pytest_twisted.ensureDeferred
async def test_over_long_strings_elsewhere(server: Server) -> None:
    criteria = f'<GetStatus xmlns="{OSEO}" {BASE}><filteringCriteria><orderReference>{"r" * 31}</orderReference>'
    code, answer = await server.call(criteria + "</filteringCriteria><presentation>brief</presentation></GetStatus>")
    assert code == 400
    fault(answer, "InvalidParameterValue", SOAP12, locator="orderReference")
    options = (f'<GetOptions xmlns="{OSEO}" {BASE}><collectionId>{"c" * 256}</collectionId></GetOptions>')
    code, answer = await server.call(options)
    assert code == 400
    fault(answer, "InvalidParameterValue", SOAP12, locator="collectionId")
    # An unbounded element (orderId) with a megabyte of text: a clean refusal.
    code, answer = await server.call(get_status("o" * 1_000_000))
    assert code == 400
    fault(answer, "InvalidOrderIdentifier", SOAP12, locator="orderId")
    assert len(answer) < 3000


# ------------------------------------------------------------ bad encodings

BAD_ENCODINGS = {
    "declared UTF-8, Latin-1 bytes": b'<?xml version="1.0" encoding="UTF-8"?>' + envelope(submit()).replace(
        b"hostile", b"caf\xe9"),
    "declared UTF-16, UTF-8 bytes": b'<?xml version="1.0" encoding="UTF-16"?>' + envelope(submit()),
    "declared US-ASCII, UTF-8 bytes": b'<?xml version="1.0" encoding="US-ASCII"?>' + envelope(
        submit(reference="café")),
    "invalid UTF-8 (0xff 0xfe)": envelope(submit(reference="X")).replace(b">X<", b">\xff\xfe<"),
    "invalid UTF-8 (overlong)": envelope(submit(reference="X")).replace(b">X<", b">\xc0\xaf<"),
    "invalid UTF-8 (surrogate)": envelope(submit(reference="X")).replace(b">X<", b">\xed\xa0\x80<"),
    "invalid UTF-8 (truncated sequence)": envelope(submit(reference="X")).replace(b">X<", b">\xe2\x82<"),
    "unknown encoding name": b'<?xml version="1.0" encoding="x-klingon"?>' + envelope(submit()),
    "EBCDIC": '<?xml version="1.0" encoding="cp500"?><a/>'.encode("cp500"),
    "NUL byte in text": envelope(submit(reference="X")).replace(b">X<", b">a\x00b<"),
    "NUL byte in a tag": envelope(submit()).replace(b"<orderType>", b"<order\x00Type>"),
    "NUL as a character reference": envelope(submit(reference="&#0;")),
    "U+FFFF as a character reference": envelope(submit(reference="&#xFFFF;")),
    "a surrogate as a character reference": envelope(submit(reference="&#xD800;")),
    "a control character": envelope(submit(reference="X")).replace(b">X<", b">\x07<"),
    "UTF-16 without BOM or declaration": envelope(GET_CAPABILITIES).decode().encode("utf-16-le"),
}


@pytest.mark.parametrize("body", list(BAD_ENCODINGS.values()), ids=list(BAD_ENCODINGS))
@pytest_twisted.ensureDeferred
async def test_bad_encodings_are_malformed_xml(server: Server, body: bytes) -> None:
    code, _, answer = await server.post(body, SOAP12_CT)
    assert code == 400
    assert "well-formed" in fault(answer, "NoApplicableCode", SOAP12)


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be", "utf-32", "iso-8859-1", "windows-1252", "shift_jis"])
@pytest_twisted.ensureDeferred
async def test_other_declared_encodings_are_read(server: Server, codec: str) -> None:
    reference = {"shift_jis": "参照"}.get(codec, "café")
    token = username_token(BOB, BOB_PASSWORD)  # the body must be encodable in ``codec``
    document = f'<?xml version="1.0" encoding="{codec}"?>' + envelope(submit(reference=reference), header=token).decode()
    code, _, answer = await server.post(document.encode(codec), SOAP12_CT)
    assert code == 200, answer
    ack = assert_valid(answer)
    assert ack.findtext(f"{{{OSEO}}}orderReference") == reference
    assert answer.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')


# ------------------------------------------- huge attributes, namespaces


@pytest_twisted.ensureDeferred
async def test_huge_attribute_values(server: Server) -> None:
    # Past the XML limits (1 MiB for one attribute or tag), the parser refuses.
    code, answer = await server.call(submit().replace('service="OS"', f'service="{"O" * 2_000_000}"'))
    assert code == 400
    assert "longer than 1048576 bytes" in fault(answer, "NoApplicableCode", SOAP12)
    huge = "O" * 1_000_000
    code, answer = await server.call(submit().replace('service="OS"', f'service="{huge}"'))
    assert code == 400
    assert "must be" in fault(answer, "InvalidParameterValue", SOAP12, locator="service")
    assert len(answer) < 3000
    code, answer = await server.call(submit().replace('version="1.0.0"', f'version="{huge}"'))
    assert code == 400
    fault(answer, "InvalidParameterValue", SOAP12, locator="version")
    # An attribute nobody reads is ignored, however long.
    code, answer = await server.call(submit(attributes=f' junk="{huge}"'))
    assert code == 200
    assert len(answer) < 3000
    # Names are bounded by the parser.
    code, answer = await server.call(submit(attributes=f' {"a" * 60_000}="x"'))
    assert code == 400
    fault(answer, "NoApplicableCode", SOAP12)
    # An element name past the parser's limit, and a long one within it.
    code, answer = await server.call(f'<{"G" * 60_000} xmlns="{OSEO}"/>')
    assert code == 400
    fault(answer, "NoApplicableCode", SOAP12)
    code, answer = await server.call(f'<{"G" * 40_000} xmlns="{OSEO}"/>')
    assert code == 400
    fault(answer, "OperationNotSupported", SOAP12)
    assert len(answer) < 3000


@pytest_twisted.ensureDeferred
async def test_long_text_in_kept_xml(server: Server) -> None:
    # Extensions and option values are kept verbatim and echoed; a long word
    # in them once took quadratic time (namespace prefixes were looked for at
    # every position of it).
    word = "w" * 1_000_000
    option = (f"<sceneSelection><ParameterData><encoding>XMLEncoding</encoding><values><x>{word}</x>"
              f'<y note="{word}"/></values></ParameterData></sceneSelection>')
    code, answer = await server.call(submit(after_type=f"<extension>{word}</extension>",
                                            items=item(extra=option + f"<extension>{word}</extension>")))
    assert code == 200
    code, answer = await server.call(get_status(order_id_of(answer)))
    assert code == 200
    assert answer.count(word.encode()) == 4
    assert_valid(answer)


@pytest_twisted.ensureDeferred
async def test_many_attributes(server: Server) -> None:
    many = "".join(f' a{n}="v"' for n in range(50_000))
    code, answer = await server.call(submit(attributes=many))
    assert code == 200
    order_id_of(answer)
    # More than the XML limits allow (60 000 with the default config).
    many = "".join(f' a{n}="v"' for n in range(61_000))
    code, answer = await server.call(submit(attributes=many))
    assert code == 400
    assert "more than 60000 XML attributes" in fault(answer, "NoApplicableCode", SOAP12)


@pytest_twisted.ensureDeferred
async def test_a_few_namespace_declarations_are_fine(server: Server) -> None:
    declarations = "".join(f' xmlns:p{n}="urn:oseod:test:{n}"' for n in range(50))
    option = ('<sceneSelection><ParameterData><encoding>XMLEncoding</encoding><values>'
              '<p7:frame unit="p8:degree">7</p7:frame>'
              "</values></ParameterData></sceneSelection>")
    code, answer = await server.call(submit(attributes=declarations, items=item(extra=option)))
    assert code == 200
    code, answer = await server.call(get_status(order_id_of(answer)))
    assert code == 200
    # The echoed scene selection still knows what p7 and p8 (in a QName value) are.
    frame = assert_valid(answer).find(f".//{{urn:oseod:test:7}}frame")
    assert frame is not None
    assert frame.nsmap["p8"] == "urn:oseod:test:8"


@pytest.mark.parametrize("count", [300, 30_000])
@pytest_twisted.ensureDeferred
async def test_too_many_namespace_declarations(server: Server, count: int) -> None:
    # Each kept fragment (here 200 extensions) once carried every declaration
    # in scope, copied in quadratic time: 100 000 of them blocked the daemon
    # for hours and would have stored gigabytes. (100 000 no longer fit in
    # one tag of the XML limits.)
    declarations = "".join(f' xmlns:p{n}="urn:oseod:test:{n}"' for n in range(count))
    extensions = "<extension>x</extension>" * 200
    code, answer = await server.call(submit(attributes=declarations, after_type=extensions))
    assert code == 400
    assert "more than 100 XML namespaces" in fault(answer, "NoApplicableCode", SOAP12)


@pytest.mark.parametrize("codec", ["utf-8", "utf-16"])
@pytest_twisted.ensureDeferred
async def test_the_namespace_limit(server: Server, codec: str) -> None:
    def body(extra: int) -> bytes:
        # A bare Submit declares one namespace of its own.
        declarations = "".join(f' xmlns:p{n}="urn:oseod:test:{n}"' for n in range(extra))
        return submit(attributes=declarations).encode(codec)

    auth = basic(ALICE, ALICE_PASSWORD)
    code, _, answer = await server.post(body(99), BARE_CT, headers=auth)
    assert code == 200, answer
    code, _, answer = await server.post(body(100), BARE_CT, headers=auth)
    assert code == 400
    fault(answer, "NoApplicableCode", None)


@pytest.mark.parametrize(("change", "locator"), [
    (("<orderSpecification>", "<orderSpecification>text"), "orderSpecification"),
    (("</orderReference>", "</orderReference>text"), "orderSpecification"),
    (("<orderItem>", "<orderItem>  \n text \n"), "orderItem"),
    (("<productId>", '<productId>text'), "productId"),
    (("</Submit>", "text</Submit>"), "Submit"),
    (("<orderType>", "<mailAddress>text</mailAddress><orderType>"), "mailAddress"),
    (("<deliveryOptions>", '<deliveryOptions city="Paris">'), "deliveryOptions"),
    (("<protocol>", '<protocol x:y="z" xmlns:x="urn:x">'), "protocol"),
    (("<ParameterData>", '<ParameterData xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="Q">'),
     "ParameterData"),
    (("<extension>", '<extension note="x">'), "extension"),
])
@pytest_twisted.ensureDeferred
async def test_text_and_attributes_where_the_schema_has_none(server: Server, change: tuple[str, str],
                                                              locator: str) -> None:
    """Kept XML (options, delivery options, addresses, extensions) is echoed
    by GetStatus: text in element-only content or an attribute nobody
    declared would make that echo schema-invalid, so both are refused."""
    option = ("<option><ParameterData><encoding>XMLEncoding</encoding><values>"
              '<format xmlns="urn:oseod:options">NetCDF</format></values></ParameterData></option>'
              "<deliveryOptions><onlineDataAccess><protocol>ftp</protocol></onlineDataAccess></deliveryOptions>")
    payload = submit(before_type=option, after_type="<extension>x</extension>")
    assert change[0] in payload
    code, answer = await server.call(payload.replace(change[0], change[1], 1))
    assert code == 400
    fault(answer, "InvalidParameterValue", SOAP12, locator=locator)


@pytest_twisted.ensureDeferred
async def test_attributes_where_the_schema_allows_them(server: Server) -> None:
    location = ('xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
                f'xsi:schemaLocation="{OSEO} http://schemas.opengis.net/oseo/1.0/oseo.xsd"')
    option = (f"<option {location}><ParameterData><encoding>XMLEncoding</encoding>"
              '<values unit="any" xmlns:q="urn:q" q:any="thing"><format xmlns="urn:oseod:options" note="n">NetCDF'
              "</format></values></ParameterData></option>")
    code, answer = await server.call(submit(before_type=option))
    assert code == 200, answer
    code, answer = await server.call(get_status(order_id_of(answer)))
    assert code == 200
    values = assert_valid(answer).find(f".//{{{OSEO}}}option//{{{OSEO}}}values")
    assert values is not None and values.get("{urn:q}any") == "thing"


@pytest_twisted.ensureDeferred
async def test_ten_thousand_items(server: Server) -> None:
    items = "".join(item(f"i{n}", product=f"p{n}") for n in range(10_000))
    code, answer = await server.call(submit(items=items))
    assert code == 400
    text = fault(answer, "InvalidParameterValue", SOAP12, locator="orderItem")
    assert "at most 200" in text and "10000" in text


# -------------------------------------------- HTTP methods, content types


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND"])
@pytest_twisted.ensureDeferred
async def test_wrong_methods_on_oseo(server: Server, method: str) -> None:
    code, headers, answer = await server.request(method, "/oseo", envelope(GET_CAPABILITIES), SOAP12_CT)
    assert code == 405
    assert answer == b"method not allowed\n"
    assert "POST" in headers.getRawHeaders("allow")[0]


@pytest.mark.parametrize(("content_type", "body", "status", "soap", "code"), [
    ("text/plain", envelope(GET_CAPABILITIES), 200, SOAP12, None),
    ("application/x-www-form-urlencoded", envelope(GET_CAPABILITIES), 200, SOAP12, None),
    ("application/json", b'{"request": "GetCapabilities"}', 400, None, "NoApplicableCode"),
    ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\nb\r\n--x--\r\n",
     400, None, "NoApplicableCode"),
    ("multipart/form-data; boundary=x", envelope(GET_CAPABILITIES), 200, SOAP12, None),
    ("application/soap+xml; action=urn:x; charset=iso-8859-1", envelope(GET_CAPABILITIES), 200, SOAP12, None),
    (";;;;", envelope(GET_CAPABILITIES), 200, SOAP12, None),
    ("application/soap+xml" + "; p=v" * 2000, envelope(GET_CAPABILITIES), 200, SOAP12, None),
    ("TEXT/XML", envelope(GET_CAPABILITIES, SOAP11), 200, SOAP11, None),
    ("text/xml", GET_CAPABILITIES.encode(), 200, None, None),
    ("application/xml", envelope(GET_CAPABILITIES, SOAP11), 400, None, "NoApplicableCode"),
    (None, envelope(GET_CAPABILITIES), 200, SOAP12, None),
    (None, b"", 400, None, "NoApplicableCode"),
])
@pytest_twisted.ensureDeferred
async def test_content_types(server: Server, content_type: str | None, body: bytes, status: int,
                             soap: str | None, code: str | None) -> None:
    got, _, answer = await server.post(body, content_type)
    assert got == status
    if code is None:
        payload = assert_valid(answer)
        assert payload.tag == f"{{{OSEO}}}Capabilities"
        root = etree.fromstring(answer)
        assert root.tag == (f"{{{soap}}}Envelope" if soap else f"{{{OSEO}}}Capabilities")
    else:
        fault(answer, code, soap)


@pytest.mark.parametrize("query", [
    "", "?request=GetCapabilities&service=OS&sections=" + "Nope," * 1000, "?request=Submit", "?%ff%fe=%00",
    "?request=" + "x" * 10_000, "?service=OS&request=GetCapabilities&acceptVersions=9.9.9",
])
@pytest_twisted.ensureDeferred
async def test_hostile_kvp(server: Server, query: str) -> None:
    code, headers, answer = await server.request("GET", "/oseo" + query)
    assert code == 400
    assert_valid(answer)
    assert len(answer) < 4000


# ------------------------------------------------------ hostile credentials


def _tokens() -> dict[str, tuple[str, str]]:
    """name: (header, expected status/code); all AuthenticationFailed."""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "wrong password": username_token(ALICE, "wrong"),
        "unknown user": username_token("mallory", "x"),
        "unicode user name": username_token("ünïcødé-👤", ALICE_PASSWORD),
        "a megabyte user name": username_token("u" * 1_000_000, "x"),
        "no Username": f'<wsse:Security xmlns:wsse="{WSSE}"><wsse:UsernameToken><wsse:Password>x</wsse:Password>'
                       "</wsse:UsernameToken></wsse:Security>",
        "no Password": f'<wsse:Security xmlns:wsse="{WSSE}"><wsse:UsernameToken><wsse:Username>{ALICE}'
                       "</wsse:Username></wsse:UsernameToken></wsse:Security>",
        "unknown Type": username_token().replace(PASSWORD_TEXT, "urn:rot13"),
        "Nonce not base64": username_token(extra="<wsse:Nonce>!!!</wsse:Nonce>"),
        "huge Nonce": username_token(extra=f"<wsse:Nonce>{base64.b64encode(os.urandom(10_000)).decode()}"
                                           "</wsse:Nonce>"),
        "Created in the far past": username_token(extra="<wsu:Created>1970-01-01T00:00:00Z</wsu:Created>"),
        "Created not a date": username_token(extra="<wsu:Created>yesterday</wsu:Created>"),
        "Created year 99999": username_token(extra="<wsu:Created>99999-01-01T00:00:00Z</wsu:Created>"),
        "digest without nonce": username_token().replace("#PasswordText", "#PasswordDigest"),
        "digest of garbage": username_token(extra=f"<wsse:Nonce>AAAA</wsse:Nonce><wsu:Created>{now}</wsu:Created>",
                                            password="%%%").replace("#PasswordText", "#PasswordDigest"),
    }


@pytest.mark.parametrize("case", list(_tokens()))
@pytest.mark.parametrize("soap", [SOAP12, SOAP11], ids=["soap12", "soap11"])
@pytest_twisted.ensureDeferred
async def test_hostile_username_tokens(server: Server, case: str, soap: str) -> None:
    code, answer = await server.call(submit(), soap, header=_tokens()[case])
    assert code == 401
    text = fault(answer, "AuthenticationFailed", soap, locator="identity_token")
    assert ALICE_PASSWORD not in text and len(answer) < 3000


@pytest_twisted.ensureDeferred
async def test_a_replayed_nonce_is_refused(server: Server) -> None:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    nonce = base64.b64encode(os.urandom(16)).decode()
    header = username_token(extra=f"<wsse:Nonce>{nonce}</wsse:Nonce><wsu:Created>{now}</wsu:Created>")
    code, answer = await server.call(GET_CAPABILITIES, header=header)
    assert code == 200
    code, answer = await server.call(GET_CAPABILITIES, header=header)
    assert code == 401
    assert "replay" in fault(answer, "AuthenticationFailed", SOAP12)


@pytest.mark.parametrize("authorization", [
    b"Basic !!!not-base64!!!", b"Basic " + base64.b64encode(b"no-colon"), b"Basic " + base64.b64encode(b":"),
    b"Basic " + base64.b64encode(b"\xff\xfe:\xff"), b"Basic " + base64.b64encode(b"alice:" + b"p" * 10_000),
    b"Bearer the-token", b"Digest username=alice", b"Basic", b"\xff" * 100,
])
@pytest_twisted.ensureDeferred
async def test_hostile_basic_credentials(server: Server, authorization: bytes) -> None:
    code, headers, answer = await server.post(submit().encode(), BARE_CT, headers={"Authorization": [authorization]})
    assert code == 401
    fault(answer, "AuthenticationFailed", None, locator="identity_token")
    assert headers.getRawHeaders("www-authenticate") == ['Basic realm="oseod", Bearer realm="oseod"']


# ------------------------------------------------------------------ unicode

UNICODE_REFERENCE = "Ордер 🛰 ünï‮cødé 参考\u200d🧑‍🚀"  # 20 characters, RTL override and ZWJ included


@pytest.mark.parametrize("soap", [SOAP12, SOAP11, None], ids=["soap12", "soap11", "bare"])
@pytest_twisted.ensureDeferred
async def test_unicode_is_echoed_exactly(server: Server, soap: str | None) -> None:
    remark = "Ünïcödé remark — 𝔘𝔫𝔦𝔠𝔬𝔡𝔢, 中文, العربية, emoji 🎉, combining é"
    item_id = "ïtem-𝟙"
    code, answer = await server.call(submit(reference=UNICODE_REFERENCE, before_type=f"<orderRemark>{remark}"
                                                                                     "</orderRemark>",
                                            items=item(item_id)), soap)
    assert code == 200, answer
    ack = assert_valid(answer)
    assert ack.findtext(f"{{{OSEO}}}orderReference") == UNICODE_REFERENCE
    code, answer = await server.call(get_status(order_id_of(answer)), soap)
    assert code == 200
    status = assert_valid(answer)
    assert status.findtext(f".//{{{OSEO}}}orderReference") == UNICODE_REFERENCE
    assert status.findtext(f".//{{{OSEO}}}orderRemark") == remark
    assert status.findtext(f".//{{{OSEO}}}itemId") == item_id
    # And as a search criterion.
    search = (f'<GetStatus xmlns="{OSEO}" {BASE}><filteringCriteria><orderReference>{UNICODE_REFERENCE}'
              "</orderReference></filteringCriteria><presentation>brief</presentation></GetStatus>")
    code, answer = await server.call(search, soap)
    assert code == 200
    found = assert_valid(answer).findall(f".//{{{OSEO}}}orderReference")
    assert found and all(e.text == UNICODE_REFERENCE for e in found)


@pytest_twisted.ensureDeferred
async def test_unicode_in_errors(server: Server) -> None:
    code, answer = await server.call(f'<Ünïcødé-𝔒𝔭 xmlns="{OSEO}"/>')
    assert code == 400
    fault(answer, "OperationNotSupported", SOAP12, locator="Ünïcødé-𝔒𝔭")
    code, answer = await server.call(submit(reference="🛰" * 31))
    assert code == 400
    assert "🛰" in fault(answer, "InvalidParameterValue", SOAP12, locator="orderReference")
    code, answer = await server.call(get_status("ordre-🛰-inconnu"))
    assert code == 400
    assert "🛰" in fault(answer, "InvalidOrderIdentifier", SOAP12, locator="orderId")


@pytest_twisted.ensureDeferred
async def test_unicode_passwords_over_basic_and_tokens(server: Server) -> None:
    code, _, answer = await server.post(GET_CAPABILITIES.encode(), BARE_CT, headers=basic(ALICE, ALICE_PASSWORD))
    assert code == 200
    # The same password in Latin-1 bytes is another password.
    latin = ALICE_PASSWORD.encode("utf-8", "replace").decode("utf-8").encode("latin-1", "replace")
    code, _, answer = await server.post(submit().encode(), BARE_CT, headers=basic(ALICE.encode(), latin))
    assert code == 401
    code, answer = await server.call(GET_CAPABILITIES, SOAP11)
    assert code == 200


# --------------------------------------------------------------- two users


@pytest_twisted.ensureDeferred
async def test_users_cannot_reach_each_others_orders(server: Server) -> None:
    code, answer = await server.call(submit(reference="alice's"))
    order_id = order_id_of(answer)
    bob = username_token(BOB, BOB_PASSWORD)
    for payload in (get_status(order_id),
                    f'<DescribeResultAccess xmlns="{OSEO}" {BASE}><orderId>{order_id}</orderId>'
                    "<subFunction>allReady</subFunction></DescribeResultAccess>",
                    f'<Cancel xmlns="{OSEO}" {BASE}><orderId>{order_id}</orderId>'
                    "<statusNotification>None</statusNotification></Cancel>"):
        code, answer = await server.call(payload, header=bob)
        assert code == 400  # as if there were no such order: ids give nothing away
        fault(answer, "InvalidOrderIdentifier", SOAP12, locator="orderId")
    search = (f'<GetStatus xmlns="{OSEO}" {BASE}><filteringCriteria><orderReference>alice\'s</orderReference>'
              "</filteringCriteria><presentation>brief</presentation></GetStatus>")
    code, answer = await server.call(search, header=bob)
    assert code == 200
    assert assert_valid(answer).find(f".//{{{OSEO}}}orderId") is None
    # Alice's token with Bob's Basic credentials: the token decides.
    code, _, answer = await server.post(envelope(get_status(order_id)), SOAP12_CT, headers=basic(BOB, BOB_PASSWORD))
    assert code == 200


# ------------------------------------------------------------- afterwards


@pytest_twisted.ensureDeferred
async def test_the_daemon_is_still_healthy_afterwards(server: Server) -> None:
    """Runs last (pytest keeps file order): after everything above, /health
    answers 200 and no request of the module was an internal error."""
    code, _, answer = await server.request("GET", "/health")
    assert code == 200
    code, _, metrics = await server.request("GET", "/metrics")
    assert code == 200
    assert b"InternalError" not in metrics
    code, answer = await server.call(GET_CAPABILITIES)
    assert code == 200


def _send_and_hang_up(port: int, data: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as connection:
        connection.sendall(data)
        connection.shutdown(socket.SHUT_RDWR)


@pytest_twisted.ensureDeferred
async def test_clients_that_hang_up_mid_request_lose_nothing_and_log_no_error(server: Server) -> None:
    # Load generators stop that way: the Submit goes on (its order is stored
    # and processed), only its answer is dropped, and nothing is an error.
    errors: list[dict[str, Any]] = []

    def observe(event: dict[str, Any]) -> None:
        if event.get("log_failure") is not None or event.get("log_level") in (LogLevel.error, LogLevel.critical):
            errors.append(event)

    reference = f"hangup-{os.getpid()}"
    body = envelope(submit(reference=reference))
    data = (b"POST /oseo HTTP/1.1\r\nHost: x\r\nContent-Type: " + SOAP12_CT.encode()
            + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    globalLogPublisher.addObserver(observe)
    try:
        await defer.gatherResults([deferToThread(_send_and_hang_up, server.port.getHost().port, data)
                                   for _ in range(20)])

        async def all_stored() -> bool:
            orders = await server.parts.ordering.search(Account(ALICE), reference=reference)
            return len(orders) == 20 and all(o.status.status.value == "Completed" for o in orders)

        await eventually(all_stored, TIMEOUT, "the 20 orders of the clients that hung up")
    finally:
        globalLogPublisher.removeObserver(observe)
    assert [formatEvent(e) for e in errors] == []
