"""A real SOAP client against the real server: zeep, generated from the
official ``oseo/1.0/oseo.wsdl`` (loaded offline, see tests/zeep_offline.py),
calls every operation oseod offers over loopback HTTP.

zeep follows the WSDL's SOAP 1.1 binding (``text/xml`` and a quoted
SOAPAction), signs each request with a WS-Security UsernameToken (PasswordText
or PasswordDigest) and maps answers to Python objects from the schemas; a
server whose answers zeep reads is one that WSDL-driven SOAP stacks can use.
Every raw answer is also checked against the official schemas.

zeep is synchronous (requests): each call runs in a thread while the reactor
serves it.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Any

import pytest
import pytest_twisted
from lxml import etree
from twisted.internet import reactor
from twisted.internet.threads import deferToThread

from oseod.auth.secrets import SecretBox
from oseod.config import Config, parse_config
from oseod.core.accounts import AccountService
from oseod.http.site import OseodSite
from oseod.oseo.namespaces import OSEO, OWS, SOAP11, SOAP12, WSSE
from oseod.store.connection import Redis
from tests.oseo_schema import assert_valid, requires_schemas

pytest.importorskip("zeep", reason="zeep (the test extra) is not installed: no real SOAP client to test with")

from zeep import Client, Plugin, xsd
from zeep.exceptions import Fault
from zeep.wsse.username import UsernameToken

from tests.zeep_offline import (OSEO_BINDING, OfflineError, OfflineTransport, ServedTransport, load_wsdl,
                                oseo_client, oseo_wsdl)
from tests.parts import make_parts
from tests.pools import POOLS

pytestmark = requires_schemas

XSD = "http://www.w3.org/2001/XMLSchema"
OPTIONS_NS = "urn:oseod:options"
DEMO = "urn:oseod:demo"
BASE = {"service": "OS", "version": "1.0.0"}


class Wire(Plugin):
    """What zeep put on the wire and got back, per call (zeep's plugin hooks)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, str], etree._Element]] = []
        self.received: list[tuple[str, etree._Element]] = []

    def egress(self, envelope: etree._Element, http_headers: dict[str, str], operation: Any,
               binding_options: Any) -> tuple[etree._Element, dict[str, str]]:
        self.sent.append((operation.name, dict(http_headers), envelope))
        return envelope, http_headers

    def ingress(self, envelope: etree._Element, http_headers: Any, operation: Any) -> tuple[etree._Element, Any]:
        self.received.append((operation.name, envelope))
        return envelope, http_headers


class SoapClient:
    """A zeep service bound to the test server, and the calls it made."""

    def __init__(self, url: str, user: str, password: str, *, digest: bool = False) -> None:
        self.wire = Wire()
        self.zeep = oseo_client(UsernameToken(user, password, use_digest=digest))
        self.zeep.plugins.append(self.wire)
        self.service = self.zeep.create_service(OSEO_BINDING, url)

    async def __call__(self, operation: str, **kwargs: Any) -> Any:
        """Run one operation in a thread; check the exchange; return zeep's answer."""
        sent_before = len(self.wire.sent)
        # GetCapabilities is OWS's: it has a service attribute but no version.
        base = {"service": "OS"} if operation == "GetCapabilities" else BASE
        try:
            answer = await deferToThread(getattr(self.service, operation), **base, **kwargs)
        except Fault:
            self._check_exchange(operation, sent_before)
            raise
        self._check_exchange(operation, sent_before)
        return answer

    def _check_exchange(self, operation: str, sent_before: int) -> None:
        [(name, headers, request)] = self.wire.sent[sent_before:]
        assert name == operation
        # SOAP 1.1, as the WSDL binds it: text/xml and the quoted soapAction.
        assert request.tag == f"{{{SOAP11}}}Envelope"
        assert headers["Content-Type"].startswith("text/xml"), headers
        assert headers["SOAPAction"] == f'"{operation}"', headers
        assert request.find(f"{{{SOAP11}}}Header/{{{WSSE}}}Security/{{{WSSE}}}UsernameToken") is not None
        # zeep's own request is schema-valid, and so is the answer (or fault).
        assert_valid(request)
        name, answer = self.wire.received[-1]
        assert name == operation and answer.tag == f"{{{SOAP11}}}Envelope"
        assert_valid(answer)


class Server:
    def __init__(self, redis: Redis, config: Config) -> None:
        secrets = SecretBox(os.urandom(32))
        self.parts = make_parts(config, redis, admin_token=lambda: "t", digest_secrets=secrets,
                                listener_url=lambda scheme: f"{scheme}://127.0.0.1:2121")
        # Sealed with the server's own box, so PasswordDigest works for these users.
        self.accounts = AccountService(self.parts.users, reactor, secrets=secrets, threads=POOLS)
        site = OseodSite(self.parts.frontend.resource(), config.server.max_request_bytes)
        self.port: Any = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.url = f"http://127.0.0.1:{self.port.getHost().port}/oseo"

    def client(self, user: str = "alice", password: str = "alice-password", *, digest: bool = False) -> SoapClient:
        return SoapClient(self.url, user, password, digest=digest)


@pytest_twisted.async_yield_fixture
async def server(redis: Redis) -> Any:
    made: list[Server] = []

    async def make(config: Config = Config()) -> Server:
        made.append(Server(redis, config))
        await made[-1].parts.engine.start()
        await made[-1].accounts.add("alice", "alice-password")
        return made[-1]

    yield make
    for srv in made:
        await srv.port.stopListening()
        await srv.parts.engine.drain()
        await srv.parts.engine.stop()


def option_values(**values: str) -> xsd.AnyObject:
    """``ParameterData/values`` is ``xs:anyType``: zeep fills it with an AnyObject.
    Its type here is xs:anyType itself (any elements, lax), so the elements go
    in raw and the ``xsi:type`` zeep writes names a type the schema knows."""
    any_type = xsd.ComplexType(xsd.Sequence([xsd.Any(max_occurs="unbounded", process_contents="lax")]),
                               qname=etree.QName(XSD, "anyType"))
    elements = []
    for name, text in values.items():
        element = etree.Element(etree.QName(OPTIONS_NS, name), nsmap={"opt": OPTIONS_NS})
        element.text = text
        elements.append(element)
    return xsd.AnyObject(any_type, any_type(_value_1=elements))


def order_specification(*items: str, reference: str) -> dict[str, Any]:
    return {
        "orderReference": reference,
        "option": [{"ParameterData": {"encoding": "XMLEncoding", "values": option_values(format="GeoTIFF")}}],
        "deliveryOptions": {"onlineDataAccess": {"protocol": "ftp"}},
        "orderType": "PRODUCT_ORDER",
        "orderItem": [{"itemId": item, "productId": {"identifier": f"{item}-product", "collectionId": DEMO}}
                      for item in items],
    }


def echoed_options(answer: etree._Element) -> dict[str, str]:
    """The option values a GetStatus answer echoes, read from the raw envelope:
    zeep gives ``None`` for an ``xs:anyType`` element whose ``xsi:type`` is
    ``xs:anyType`` (it keeps only its text), which is how zeep itself sent them."""
    values = answer.iterfind(f".//{{{OSEO}}}orderMonitorSpecification/{{{OSEO}}}option/{{{OSEO}}}ParameterData/"
                             f"{{{OSEO}}}values/*")
    return {etree.QName(value).localname: (value.text or "").strip() for value in values}


@pytest_twisted.ensureDeferred
async def test_product_order_lifecycle_with_password_text(server: Any) -> None:
    srv = await server()
    call = srv.client()

    capabilities = await call("GetCapabilities")
    assert capabilities.version == "1.0.0"
    assert capabilities.ServiceIdentification.ServiceType._value_1 == "OS"
    assert [c.collectionId for c in capabilities.Contents.SupportedCollection] == [DEMO]
    offered = {operation.name for operation in capabilities.OperationsMetadata.Operation}
    assert {"GetCapabilities", "GetOptions", "Submit", "GetStatus", "DescribeResultAccess", "Cancel"} <= offered

    options = await call("GetOptions", collectionId=DEMO)
    assert options.status == "success"
    [product_options] = [o for o in options.orderOptions if o.orderType == "PRODUCT_ORDER"]
    # Each option is a swe:DataRecord whose field holds a swe:Category and its allowed tokens.
    choices = {field.name: field.AbstractDataComponent.constraint.AllowedTokens.value
               for parameter in product_options.option for field in parameter.AbstractDataComponent.field}
    assert {"GeoTIFF", "NetCDF"} <= set(choices["format"]), choices
    assert product_options.productDeliveryOptions, "no delivery options"

    ack = await call("Submit", orderSpecification=order_specification("z1", "z2", reference="zeep lifecycle"),
                     statusNotification="None")
    assert ack.status == "success"
    assert ack.orderReference == "zeep lifecycle"
    order_id = ack.orderId
    assert order_id
    await srv.parts.engine.drain()

    status = await call("GetStatus", orderId=order_id, presentation="full")
    assert status.status == "success"
    [monitor] = status.orderMonitorSpecification
    assert monitor.orderId == order_id
    assert monitor.orderReference == "zeep lifecycle"
    assert monitor.orderType == "PRODUCT_ORDER"
    assert monitor.orderStatusInfo.status == "Completed"
    assert [option.ParameterData.encoding for option in monitor.option] == ["XMLEncoding"]
    assert echoed_options(call.wire.received[-1][1]) == {"format": "GeoTIFF"}
    assert [item.itemId for item in monitor.orderItem] == ["z1", "z2"]
    assert [item.productId.identifier for item in monitor.orderItem] == ["z1-product", "z2-product"]
    assert {item.orderItemStatusInfo.status for item in monitor.orderItem} == {"Completed"}

    found = await call("GetStatus", presentation="brief", filteringCriteria={
        "lastUpdate": datetime(2000, 1, 1, tzinfo=timezone.utc),
        "orderReference": "zeep lifecycle",
        "orderStatus": "Completed",
    })
    assert [m.orderId for m in found.orderMonitorSpecification] == [order_id]
    none = await call("GetStatus", presentation="brief", filteringCriteria={"orderStatus": "Failed"})
    assert not none.orderMonitorSpecification

    access = await call("DescribeResultAccess", orderId=order_id, subFunction="allReady")
    assert access.status == "success"
    urls = {url.itemId: url.itemAddress.ResourceAddress.URL for url in access.URLs}
    # one result file per item: the URL names it
    assert urls == {item: f"ftp://127.0.0.1:2121/{order_id}/{item}/{item}-product.dat" for item in ("z1", "z2")}, urls
    assert all(isinstance(url.expirationDate, datetime) and url.expirationDate.tzinfo for url in access.URLs)
    # nextReady counts from the previous DescribeResultAccess, the allReady above included
    fresh = await call("DescribeResultAccess", orderId=order_id, subFunction="nextReady")
    assert fresh.status == "success" and not fresh.URLs
    # with a timeStamp: the items completed at or after it
    since = await call("DescribeResultAccess", orderId=order_id, subFunction="nextReady",
                       timeStamp=datetime(2000, 1, 1, tzinfo=timezone.utc))
    assert sorted(url.itemId for url in since.URLs) == ["z1", "z2"]


@pytest_twisted.ensureDeferred
async def test_cancel_with_password_digest(server: Any) -> None:
    srv = await server(parse_config({"orders": {"moderation": "manual"}}))
    call = srv.client(digest=True)
    ack = await call("Submit", orderSpecification=order_specification("c1", "c2", reference="to cancel"),
                     statusNotification="None")
    order_id = ack.orderId
    status = await call("GetStatus", orderId=order_id, presentation="brief")
    assert status.orderMonitorSpecification[0].orderStatusInfo.status == "Submitted"

    cancelled = await call("Cancel", orderId=order_id, statusNotification="None")
    assert cancelled.status == "success"
    status = await call("GetStatus", orderId=order_id, presentation="full")
    [monitor] = status.orderMonitorSpecification
    assert monitor.orderStatusInfo.status == "Cancelled"
    assert [item.itemId for item in monitor.orderItem] == ["c1", "c2"]

    # The token is really checked: a wrong password is a fault, with either kind.
    for digest in (True, False):
        with pytest.raises(Fault) as refused:
            await srv.client(password="wrong", digest=digest)("GetStatus", orderId=order_id, presentation="brief")
        assert exception_of(refused.value)[0] == "AuthenticationFailed"


def exception_of(fault: Fault) -> tuple[str | None, str | None, str]:
    assert fault.detail is not None, fault
    [report] = [child for child in fault.detail if isinstance(child.tag, str)]
    assert report.tag == f"{{{OWS}}}ExceptionReport"
    exception = report.find(f"{{{OWS}}}Exception")
    assert exception is not None
    return exception.get("exceptionCode"), exception.get("locator"), "".join(exception.itertext()).strip()


@pytest_twisted.ensureDeferred
async def test_unknown_order_is_a_fault(server: Any) -> None:
    srv = await server()
    call = srv.client()
    with pytest.raises(Fault) as caught:
        await call("GetStatus", orderId="999999", presentation="full")
    fault = caught.value
    assert fault.code is not None and fault.code.endswith(":Client"), fault.code
    assert fault.message
    code, locator, text = exception_of(fault)
    assert (code, locator) == ("InvalidOrderIdentifier", "orderId")
    assert text


@pytest_twisted.ensureDeferred
async def test_a_client_built_from_the_served_wsdl(server: Any) -> None:
    """zeep fed with ``GET /oseo?wsdl`` (its schema imports still offline)
    finds the server by itself and speaks SOAP 1.2 on the first port, 1.1 on
    the other."""
    srv = await server()
    location = srv.url + "?wsdl"
    transport = ServedTransport(location, operation_timeout=30)
    document = await deferToThread(load_wsdl, location, transport)
    assert transport.loaded[0] == location
    assert "http://schemas.opengis.net/oseo/1.0/oseo.xsd" in transport.loaded
    wire = Wire()
    client = Client(document, wsse=UsernameToken("alice", "alice-password"), plugins=[wire],
                    transport=OfflineTransport(operation_timeout=30))
    service = client.service  # no address given: the WSDL's

    capabilities = await deferToThread(service.GetCapabilities, service="OS")
    assert [c.collectionId for c in capabilities.Contents.SupportedCollection] == [DEMO]
    ack = await deferToThread(service.Submit, **BASE, statusNotification="None",
                              orderSpecification=order_specification("w1", reference="served WSDL"))
    assert ack.status == "success"
    await srv.parts.engine.drain()
    status = await deferToThread(service.GetStatus, **BASE, orderId=ack.orderId, presentation="brief")
    assert status.orderMonitorSpecification[0].orderStatusInfo.status == "Completed"

    assert [name for name, _, _ in wire.sent] == ["GetCapabilities", "Submit", "GetStatus"]
    for (name, headers, request), (_, answer) in zip(wire.sent, wire.received):
        assert request.tag == f"{{{SOAP12}}}Envelope" and answer.tag == f"{{{SOAP12}}}Envelope"
        assert headers["Content-Type"].startswith("application/soap+xml"), headers
        assert f'action="{name}"' in headers["Content-Type"], headers
        assert_valid(request)
        assert_valid(answer)

    soap11 = client.bind("OSEO_V100", "OSEO_V100_Port")
    again = await deferToThread(soap11.GetStatus, **BASE, orderId=ack.orderId, presentation="brief")
    assert again.orderMonitorSpecification[0].orderId == ack.orderId
    _, headers, request = wire.sent[-1]
    assert request.tag == f"{{{SOAP11}}}Envelope" and headers["SOAPAction"] == '"GetStatus"'
    assert_valid(wire.received[-1][1])


def test_the_wsdl_loads_offline_only() -> None:
    """Every schema URL maps into the local mirror (catalog.xml rules); any
    other URL is refused, so a missing mirror file cannot turn into a download."""
    assert "OSEO_V100" in oseo_wsdl().services
    transport = OfflineTransport()
    assert transport.load("https://schemas.opengis.net/oseo/1.0/oseo.xsd") == (
        transport.load("http://schemas.opengis.net/oseo/1.0/oseo.xsd"))
    for url in ("http://example.org/x.xsd", "http://schemas.opengis.net/no/such.xsd",
                "http://schemas.opengis.net/../../etc/passwd", "/etc/passwd"):
        with pytest.raises(OfflineError):
            transport.load(url)
