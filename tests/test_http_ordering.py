"""Ordering over the wire: every synchronous OSEO operation through the real
HTTP stack (loopback), the real portal and a real Redis, answers validated
against the official schemas."""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import pytest_twisted
import treq
from lxml import etree
from twisted.internet import reactor

from oseod.auth.account import Account
from oseod.auth.secrets import SecretBox
from oseod.config import Config, parse_config
from oseod.core.accounts import AccountService
from oseod.http.site import OseodSite
from oseod.oseo.namespaces import OSEO, OWS, SOAP11, SOAP12, WSA, WSSE, WSU
from oseod.oseo.security import PASSWORD_DIGEST, PASSWORD_TEXT
from oseod.store.connection import Redis
from tests.oseo_schema import SCHEMAS_DIR, assert_valid, requires_schemas
from tests.parts import guarded, make_parts
from tests.pools import POOLS

pytestmark = requires_schemas

SAMPLES = SCHEMAS_DIR / "oseo" / "1.0" / "SampleMessages"
BASE = 'service="OS" version="1.0.0"'


def token(user: str, password: str, *, digest: bool = False, nonce: bytes | None = None) -> str:
    created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    nonce = nonce if nonce is not None else os.urandom(16)
    if digest:
        value = base64.b64encode(hashlib.sha1(nonce + created.encode() + password.encode()).digest()).decode()
        kind = PASSWORD_DIGEST
    else:
        value, kind = password, PASSWORD_TEXT
    return (f'<wsse:Security xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}"><wsse:UsernameToken>'
            f"<wsse:Username>{user}</wsse:Username><wsse:Password Type=\"{kind}\">{value}</wsse:Password>"
            f"<wsse:Nonce>{base64.b64encode(nonce).decode()}</wsse:Nonce><wsu:Created>{created}</wsu:Created>"
            "</wsse:UsernameToken></wsse:Security>")


def envelope(payload: str, header: str = "", soap: str = SOAP12) -> bytes:
    return (f'<s:Envelope xmlns:s="{soap}"><s:Header>{header}</s:Header>'
            f"<s:Body>{payload}</s:Body></s:Envelope>").encode()


def submit(*items: str, collection: str = "urn:oseod:demo", reference: str = "my order", order_type: str =
           "PRODUCT_ORDER", option: str = "GeoTIFF", notification: str = "None") -> str:
    order_items = "".join(
        f"<orderItem><itemId>{item}</itemId><productId><identifier>{item}-product</identifier>"
        f"<collectionId>{collection}</collectionId></productId></orderItem>"
        if order_type != "SUBSCRIPTION_ORDER" else
        f"<orderItem><itemId>{item}</itemId><subscriptionId><collectionId>{collection}</collectionId>"
        "</subscriptionId></orderItem>"
        for item in items
    )
    if order_type == "TASKING_ORDER":
        order_items = "<orderItem><itemId>t</itemId><taskingRequestId><ID>urn:task:1</ID></taskingRequestId></orderItem>"
    return (f"<Submit xmlns=\"{OSEO}\" {BASE}><orderSpecification><orderReference>{reference}</orderReference>"
            "<option><ParameterData><encoding>XMLEncoding</encoding><values>"
            f"<format xmlns=\"urn:oseod:options\">{option}</format></values></ParameterData></option>"
            "<deliveryOptions><onlineDataAccess><protocol>ftp</protocol></onlineDataAccess></deliveryOptions>"
            f"<orderType>{order_type}</orderType>{order_items}</orderSpecification>"
            f"<statusNotification>{notification}</statusNotification></Submit>")


def get_status(order_id: str, presentation: str = "full") -> str:
    return f'<GetStatus xmlns="{OSEO}" {BASE}><orderId>{order_id}</orderId><presentation>{presentation}</presentation></GetStatus>'


def search(criteria: str, presentation: str = "brief") -> str:
    return (f'<GetStatus xmlns="{OSEO}" {BASE}><filteringCriteria>{criteria}</filteringCriteria>'
            f"<presentation>{presentation}</presentation></GetStatus>")


def describe(order_id: str, sub_function: str = "allReady") -> str:
    return (f'<DescribeResultAccess xmlns="{OSEO}" {BASE}><orderId>{order_id}</orderId>'
            f"<subFunction>{sub_function}</subFunction></DescribeResultAccess>")


def cancel(order_id: str) -> str:
    return f'<Cancel xmlns="{OSEO}" {BASE}><orderId>{order_id}</orderId><statusNotification>None</statusNotification></Cancel>'


class Server:
    def __init__(self, redis: Redis, config: Config) -> None:
        self.redis = redis
        secrets = SecretBox(os.urandom(32))
        self.parts = make_parts(config, redis, admin_token=lambda: "t", digest_secrets=secrets,
                                listener_url=lambda scheme: f"{scheme}://127.0.0.1:2121")
        # Sealed with the server's own box, so PasswordDigest works for these users.
        self.accounts = AccountService(self.parts.users, reactor, secrets=secrets, threads=POOLS)
        self.site = OseodSite(self.parts.frontend.resource(), config.server.max_request_bytes)
        # Behind the connection budget, as the daemon's listener is.
        self.port: Any = reactor.listenTCP(0, guarded(self.site, config), interface="127.0.0.1")
        self.url = f"http://127.0.0.1:{self.port.getHost().port}/oseo"

    async def post(self, body: bytes, content_type: str = "application/soap+xml",
                   **headers: str) -> tuple[int, etree._Element, bytes]:
        all_headers = {"Content-Type": content_type, **headers}
        response = await treq.post(self.url, data=body, headers=all_headers, persistent=False)
        answer = await response.content()
        assert response.code < 500, answer
        return response.code, assert_valid(answer), answer

    async def call(self, payload: str, user: str = "alice", password: str = "alice-password",
                   **kw: Any) -> tuple[int, etree._Element]:
        code, element, _ = await self.post(envelope(payload, token(user, password, **kw)))
        return code, element


@pytest_twisted.async_yield_fixture
async def server(redis: Redis) -> Any:
    made: list[Server] = []

    async def make(config: Config = Config()) -> Server:
        made.append(Server(redis, config))
        srv = made[-1]
        await srv.parts.engine.start()
        await srv.accounts.add("alice", "alice-password")
        await srv.accounts.add("bob", "bob-password", group="others")
        return srv

    yield make
    for srv in made:
        await srv.port.stopListening()
        await srv.parts.engine.drain()
        await srv.parts.engine.stop()


def code_of(element: etree._Element) -> tuple[str | None, str | None]:
    exception = element.find(f".//{{{OWS}}}Exception")
    assert exception is not None, etree.tostring(element)
    return exception.get("exceptionCode"), exception.get("locator")


def order_id_of(ack: etree._Element) -> str:
    assert ack.tag == f"{{{OSEO}}}SubmitAck", etree.tostring(ack)
    order_id = ack.findtext(f"{{{OSEO}}}orderId")
    assert order_id
    return order_id


@pytest_twisted.ensureDeferred
async def test_product_order_lifecycle(server: Any) -> None:
    srv = await server()
    code, options = await srv.call(f'<GetOptions xmlns="{OSEO}" {BASE}><collectionId>urn:oseod:demo</collectionId></GetOptions>')
    assert code == 200 and options.tag == f"{{{OSEO}}}GetOptionsResponse"
    tokens = [e.text for e in options.iter("{http://www.opengis.net/swe/2.0}value")]
    assert {"GeoTIFF", "NetCDF"} <= set(tokens)

    code, ack = await srv.call(submit("a1", "a2", reference="lifecycle"))
    assert code == 200
    order_id = order_id_of(ack)
    assert ack.findtext(f"{{{OSEO}}}orderReference") == "lifecycle"
    await srv.parts.engine.drain()

    code, status = await srv.call(get_status(order_id))
    monitor = status.find(f"{{{OSEO}}}orderMonitorSpecification")
    assert monitor is not None
    assert monitor.findtext(f"{{{OSEO}}}orderId") == order_id
    assert monitor.findtext(f"{{{OSEO}}}orderReference") == "lifecycle"
    assert monitor.findtext(f"{{{OSEO}}}orderStatusInfo/{{{OSEO}}}status") == "Completed"
    assert monitor.findtext(".//{urn:oseod:options}format") == "GeoTIFF"  # the option echoed back
    items = monitor.findall(f"{{{OSEO}}}orderItem")
    assert [i.findtext(f"{{{OSEO}}}itemId") for i in items] == ["a1", "a2"]
    assert {i.findtext(f"{{{OSEO}}}orderItemStatusInfo/{{{OSEO}}}status") for i in items} == {"Completed"}

    code, brief = await srv.call(get_status(order_id, "brief"))
    assert brief.find(f".//{{{OSEO}}}orderItem") is None

    code, found = await srv.call(search("<orderStatus>Completed</orderStatus><orderReference>lifecycle</orderReference>"))
    assert code == 200 and [e.text for e in found.iter(f"{{{OSEO}}}orderId")] == [order_id]
    code, fault = await srv.call(search("<orderReference>lifecycle</orderReference><orderStatus>Completed</orderStatus>"))
    assert code == 400 and code_of(fault) == ("InvalidParameterValue", "orderStatus")  # out of XSD order
    code, none = await srv.call(search("<orderStatus>Failed</orderStatus>"))
    assert none.find(f"{{{OSEO}}}orderMonitorSpecification") is None
    code, by_day = await srv.call(search(f"<lastUpdate>2000-01-01T00:00:00Z</lastUpdate>"
                                         f"<lastUpdateEnd>{datetime.now(timezone.utc).year + 1}-01-01</lastUpdateEnd>"))
    assert order_id in [e.text for e in by_day.iter(f"{{{OSEO}}}orderId")]

    code, urls = await srv.call(describe(order_id))
    addresses = [e.text for e in urls.iter(f"{{{OSEO}}}URL")]
    assert len(addresses) == 2 and all(a.startswith(f"ftp://127.0.0.1:2121/{order_id}/") for a in addresses)
    assert urls.find(f".//{{{OSEO}}}expirationDate") is not None
    code, first = await srv.call(describe(order_id, "nextReady"))
    assert list(first.iter(f"{{{OSEO}}}URL")) == []  # the allReady above counted as the previous call

    code, refused = await srv.call(cancel(order_id))
    assert code == 400 and code_of(refused) == ("InvalidParameterValue", "orderId")
    assert "Completed" in "".join(refused.itertext())


@pytest_twisted.ensureDeferred
async def test_a_submit_retried_with_its_message_id_answers_the_first_order(server: Any) -> None:
    srv = await server()

    async def submit_with(message_id: str | None, user: str = "alice") -> str:
        addressing = f'<wsa:MessageID xmlns:wsa="{WSA}">{message_id}</wsa:MessageID>' if message_id else ""
        code, ack, _ = await srv.post(envelope(submit("a1", reference="retry"),
                                               token(user, f"{user}-password") + addressing))
        assert code == 200
        return order_id_of(ack)

    first = await submit_with("urn:uuid:0b5e1c3e-1")
    assert await submit_with("urn:uuid:0b5e1c3e-1") == first  # the same SubmitAck: a lost answer, retried
    assert await submit_with("urn:uuid:0b5e1c3e-2") != first
    assert await submit_with("urn:uuid:0b5e1c3e-1", user="bob") != first  # per user
    assert len({await submit_with(None), await submit_with(None)}) == 2  # no MessageID: no idempotence
    code, found = await srv.call(search("<orderReference>retry</orderReference>"))
    assert len([e.text for e in found.iter(f"{{{OSEO}}}orderId")]) == 4


@pytest_twisted.ensureDeferred
async def test_manual_moderation_then_cancel(server: Any) -> None:
    srv = await server(parse_config({"orders": {"moderation": "manual"}}))
    code, ack = await srv.call(submit("m1"))
    order_id = order_id_of(ack)
    code, status = await srv.call(get_status(order_id))
    assert status.findtext(f".//{{{OSEO}}}orderStatusInfo/{{{OSEO}}}status") == "Submitted"
    code, cancelled = await srv.call(cancel(order_id))
    assert code == 200 and cancelled.tag == f"{{{OSEO}}}CancelAck"
    code, status = await srv.call(get_status(order_id))
    assert status.findtext(f".//{{{OSEO}}}orderStatusInfo/{{{OSEO}}}status") == "Cancelled"


@pytest_twisted.ensureDeferred
async def test_soap11_digest_tokens_and_bare_basic(server: Any) -> None:
    srv = await server()
    nonce = os.urandom(16)
    body = envelope(submit("d1"), token("alice", "alice-password", digest=True, nonce=nonce), soap=SOAP11)
    code, ack, raw = await srv.post(body, "text/xml; charset=utf-8", SOAPAction='"Submit"')
    assert code == 200 and etree.fromstring(raw).tag == f"{{{SOAP11}}}Envelope"
    order_id = order_id_of(ack)
    # The same nonce again is a replay.
    code, fault, _ = await srv.post(body, "text/xml; charset=utf-8", SOAPAction='"Submit"')
    assert code == 401 and code_of(fault) == ("AuthenticationFailed", "identity_token")
    code, fault = await srv.call(get_status(order_id), password="wrong", digest=True)
    assert code == 401 and code_of(fault)[0] == "AuthenticationFailed"

    basic = "Basic " + base64.b64encode(b"alice:alice-password").decode()
    code, status, raw = await srv.post(get_status(order_id).encode(), "application/xml", Authorization=basic)
    assert code == 200 and etree.fromstring(raw).tag == f"{{{OSEO}}}GetStatusResponse"
    code, report, raw = await srv.post(get_status(order_id).encode(), "application/xml")
    assert code == 401 and etree.fromstring(raw).tag == f"{{{OWS}}}ExceptionReport"


@pytest_twisted.ensureDeferred
async def test_authorisation_matrix(server: Any) -> None:
    """Two users: bob can neither see nor touch alice's order."""
    srv = await server(parse_config({"orders": {"moderation": "manual"}}))
    code, ack = await srv.call(submit("x1", reference="alice's"))
    order_id = order_id_of(ack)
    missing = "k" * len(order_id)  # an id of the same form that nobody has
    for make in (get_status, describe, cancel):
        payload = make(order_id)
        code, fault = await srv.call(payload, "bob", "bob-password")
        assert code == 400 and code_of(fault) == ("InvalidOrderIdentifier", "orderId"), payload
        # Alice's order and none at all: the same bytes, but for the id (so ids give nothing away).
        theirs = (await srv.post(envelope(payload, token("bob", "bob-password"))))[2]
        none = (await srv.post(envelope(make(missing), token("bob", "bob-password"))))[2]
        assert theirs.replace(order_id.encode(), b"ID") == none.replace(missing.encode(), b"ID"), payload
        code, answer = await srv.call(payload)
        assert code == 200, payload
    code, found = await srv.call(search("<orderReference>alice's</orderReference>"), "bob", "bob-password")
    assert found.find(f"{{{OSEO}}}orderMonitorSpecification") is None
    for payload in (get_status("999999"), describe("999999"), cancel("999999"), get_status("not-an-id")):
        code, fault = await srv.call(payload, "bob", "bob-password")
        assert code == 400 and code_of(fault) == ("InvalidOrderIdentifier", "orderId"), payload


RESTRICTED = {
    "collection": [
        {"id": "urn:x:products", "order_types": ["PRODUCT_ORDER"], "option": [{"name": "format", "choices": ["GeoTIFF"]}]},
        {"id": "urn:x:subscriptions", "order_types": ["SUBSCRIPTION_ORDER"]},
        {"id": "urn:x:secret", "groups": ["insiders"]},
    ]
}


@pytest.mark.parametrize(
    ("payload", "code", "locator", "status"),
    [
        (f'<GetStatus xmlns="{OSEO}" {BASE}><orderId>1</orderId></GetStatus>', "MissingParameterValue", "presentation", 400),
        (submit("o1", collection="urn:x:products", option="JPEG2000"), "InvalidParameterValue", "option", 400),
        (submit("o1", collection="urn:x:products", notification="All"), "InvalidNotificationValue", "ws-address", 400),
        (f'<GetOptions xmlns="{OSEO}" {BASE}><collectionId>urn:x:nowhere</collectionId></GetOptions>',
         "UnsupportedCollection", "collectionId", 400),
        (f'<GetOptions xmlns="{OSEO}" {BASE}><collectionId>urn:x:secret</collectionId></GetOptions>',
         "UnsupportedCollection", "collectionId", 400),
        (submit("o1", collection="urn:x:products", order_type="SUBSCRIPTION_ORDER"), "SubscriptionNotSupported",
         "orderType", 400),
        (submit("o1", collection="urn:x:subscriptions"), "ProductOrderingNotSupported", "orderType", 400),
        (submit("o1", order_type="TASKING_ORDER"), "FutureProductNotSupported", "orderType", 400),
        (f'<GetOptions xmlns="{OSEO}" {BASE}><taskingRequestId><ID>urn:t</ID></taskingRequestId></GetOptions>',
         "OperationNotSupported", "taskingRequestId", 400),
        (f'<GetQuotation xmlns="{OSEO}" {BASE}><quotationId>urn:q:none</quotationId></GetQuotation>',
         "InvalidParameterValue", "quotationId", 400),
        (f'<GetCapabilities xmlns="{OSEO}" service="OS"><AcceptVersions xmlns="{OWS}"><Version>2.0.0</Version>'
         "</AcceptVersions></GetCapabilities>", "VersionNegotiationFailed", "AcceptVersions", 400),
        (submit("o1", reference="r" * 31, collection="urn:x:products"), "InvalidParameterValue", "orderReference", 400),
        (submit("i" * 81, collection="urn:x:products"), "InvalidParameterValue", "itemId", 400),
    ],
)
@pytest_twisted.ensureDeferred
async def test_exception_codes(server: Any, payload: str, code: str, locator: str, status: int) -> None:
    srv = await server(parse_config(RESTRICTED))
    http_status, fault = await srv.call(payload)
    assert (http_status, *code_of(fault)) == (status, code, locator)
    assert "".join(fault.itertext()).strip()  # a human text


@pytest_twisted.ensureDeferred
async def test_limits_name_the_limit(server: Any) -> None:
    srv = await server(parse_config({"orders": {"max_items_per_order": 3, "max_active_items_per_user": 4,
                                                "moderation": "manual"}}))
    code, fault = await srv.call(submit("1", "2", "3", "4"))
    assert code == 400 and code_of(fault)[0] == "InvalidParameterValue" and "3" in "".join(fault.itertext())
    code, ack = await srv.call(submit("1", "2", "3"))
    assert code == 200
    code, fault = await srv.call(submit("4", "5"))
    assert code == 400 and code_of(fault)[0] == "InvalidParameterValue" and "4" in "".join(fault.itertext())
    # Another user has a budget of their own.
    code, ack = await srv.call(submit("1", "2"), "bob", "bob-password")
    assert code == 200


@pytest_twisted.ensureDeferred
async def test_notification_addresses_are_accepted_and_kept(server: Any) -> None:
    srv = await server()
    header = token("alice", "alice-password") + (
        f'<wsa:MessageID xmlns:wsa="{WSA}">urn:uuid:1234</wsa:MessageID>'
        f'<wsa:ReplyTo xmlns:wsa="{WSA}"><wsa:Address>http://client.example.org/cb</wsa:Address></wsa:ReplyTo>')
    code, ack, _ = await srv.post(envelope(submit("n1", notification="Final"), header))
    order = await srv.parts.ordering.get(Account(name="alice"), order_id_of(ack))
    assert (order.notification.reply_to, order.notification.message_id) == ("http://client.example.org/cb",
                                                                           "urn:uuid:1234")
    # The provider's own network is not a call-back target (unless [notifications] allowed_networks says so).
    for address in ("http://127.0.0.1:9/cb", "https://localhost/cb", "http://10.1.2.3/cb", "http://[::1]/cb",
                    "http://169.254.169.254/latest/meta-data", "ftp://client.example.org/cb"):
        refused = token("alice", "alice-password") + header[header.index("<wsa:MessageID"):].replace(
            "http://client.example.org/cb", address)
        code, fault, _ = await srv.post(envelope(submit("n2", notification="All"), refused))
        assert code == 400 and code_of(fault) == ("InvalidNotificationValue", "ws-address"), address


REQUEST_SAMPLES = sorted(
    p for p in SAMPLES.glob("*.xml")
    if not p.stem.endswith(("Response", "Ack")) and p.stem not in {"Capabilities", "Capabilities_withNotifications",
                                                                   "Notify", "Subscribe", "SubscribeResponse"}
    and "Response" not in p.stem
) if SAMPLES.exists() else []


@pytest.mark.parametrize("sample", REQUEST_SAMPLES, ids=lambda p: p.stem)
@pytest_twisted.ensureDeferred
async def test_official_samples_get_a_valid_answer(server: Any, sample: Any) -> None:
    """Each official request, as a client would send it: a schema-valid answer
    or a schema-valid fault, never a 5xx."""
    srv = await server()
    payload = etree.tostring(etree.parse(str(sample)).getroot()).decode()
    for soap in (SOAP12, SOAP11):
        content_type = "application/soap+xml" if soap == SOAP12 else "text/xml"
        code, answer, _ = await srv.post(envelope(payload, token("alice", "alice-password"), soap), content_type)
        assert code in (200, 400), (sample.name, code)


CATALOGUE = {
    "collection": [
        {"id": "urn:x:s2", "identifier_prefixes": ["S2A_", "S2B_"], "payment_methods": ["account"],
         "option": [{"name": "format", "choices": ["GeoTIFF", "JPEG2000"]}],
         "scene_selection": [{"name": "cloudCover", "choices": ["10", "50", "100"], "description": "max cloud %"}]},
        {"id": "urn:x:landsat", "identifier_prefixes": ["LC08_"]},
    ]
}


def item_submit(identifier: str, payment: str | None = None) -> str:
    payment_xml = (f"<payment><paymentMethod>{payment}</paymentMethod><orderAccount>acc-1</orderAccount></payment>"
                   if payment else "")
    return (f'<Submit xmlns="{OSEO}" {BASE}><orderSpecification><orderType>PRODUCT_ORDER</orderType>'
            f"<orderItem><itemId>i</itemId>{payment_xml}<productId><identifier>{identifier}</identifier></productId>"
            "</orderItem></orderSpecification><statusNotification>None</statusNotification></Submit>")


@pytest_twisted.ensureDeferred
async def test_identifiers_payment_and_scene_selection(server: Any) -> None:
    srv = await server(parse_config(CATALOGUE))
    code, options = await srv.call(f'<GetOptions xmlns="{OSEO}" {BASE}><identifier>S2B_MSIL1C_X</identifier>'
                                   "<identifier>LC08_L1TP_Y</identifier></GetOptions>")
    assert code == 200
    sets = options.findall(f"{{{OSEO}}}orderOptions")
    assert [s.findtext(f"{{{OSEO}}}identifier") for s in sets] == ["S2B_MSIL1C_X", "LC08_L1TP_Y"]
    assert sets[0].findtext(f".//{{{OSEO}}}paymentMethod") == "account"
    assert sets[0].find(f".//{{{OSEO}}}sceneSelectionOption") is not None
    assert sets[1].find(f".//{{{OSEO}}}paymentOptions") is None

    code, fault = await srv.call(f'<GetOptions xmlns="{OSEO}" {BASE}><identifier>XYZ</identifier></GetOptions>')
    assert code == 400 and code_of(fault) == ("InvalidParameterValue", "identifier")

    code, ack = await srv.call(item_submit("S2A_MSIL2A_Z", payment="account"))
    order = await srv.parts.ordering.get(Account(name="alice"), order_id_of(ack))
    assert order.spec.items[0].collection_id == "urn:x:s2"
    code, status = await srv.call(get_status(order.order_id))
    assert status.findtext(f".//{{{OSEO}}}payment/{{{OSEO}}}orderAccount") == "acc-1"  # echoed
    code, fault = await srv.call(item_submit("S2A_MSIL2A_Z", payment="cash"))
    assert code == 400 and code_of(fault) == ("InvalidParameterValue", "paymentMethod")
    code, fault = await srv.call(item_submit("UNKNOWN_PRODUCT"))
    assert code == 400 and code_of(fault) == ("UnsupportedCollection", "collectionId")


def describe_at(order_id: str, sub_function: str, stamp: str) -> str:
    return (f'<DescribeResultAccess xmlns="{OSEO}" {BASE}><timeStamp>{stamp}</timeStamp><orderId>{order_id}</orderId>'
            f"<subFunction>{sub_function}</subFunction></DescribeResultAccess>")


def item_ids(answer: etree._Element) -> list[str | None]:
    return [e.findtext(f"{{{OSEO}}}itemId") for e in answer.findall(f"{{{OSEO}}}URLs")]


@pytest_twisted.ensureDeferred
async def test_next_ready_counts_from_the_previous_describe_result_access(server: Any) -> None:
    srv = await server()
    # The items are completed one by one between the calls, as the engine
    # does when it finishes each (stopped here, so the test decides when).
    await srv.parts.engine.stop()
    code, ack = await srv.call(submit("a1", "a2", "a3", "a4", reference="next ready"))
    order_id = order_id_of(ack)
    ordering = srv.parts.ordering
    try:
        code, none = await srv.call(describe(order_id, "nextReady"))
        assert code == 200 and item_ids(none) == []
        assert await ordering.complete_item(order_id, "a1")
        code, everything = await srv.call(describe(order_id, "allReady"))
        assert item_ids(everything) == ["a1"]
        assert await ordering.complete_item(order_id, "a2")
        # allReady moved the mark too: only what became ready after it
        code, fresh = await srv.call(describe(order_id, "nextReady"))
        assert item_ids(fresh) == ["a2"]
        code, again = await srv.call(describe(order_id, "nextReady"))
        assert item_ids(again) == []  # nextReady twice: nothing new
        code, everything = await srv.call(describe(order_id, "allReady"))
        assert item_ids(everything) == ["a1", "a2"]  # allReady still lists all of them

        # A timeStamp: the items completed at or after it, whatever the mark says.
        assert await ordering.complete_item(order_id, "a3")
        order = await ordering.find(order_id)
        assert order is not None
        completed = {i.spec.item_id: i.completed_at for i in order.items if i.completed_at is not None}
        # a2's completion time, to the microsecond and a hair earlier (xs:dateTime is decimal, the store binary)
        at = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=int(completed["a2"] * 1e6) - 1)
        stamp = at.isoformat().replace("+00:00", "Z")
        assert completed["a1"] < at.timestamp() <= completed["a2"]
        code, since = await srv.call(describe_at(order_id, "nextReady", stamp))
        assert code == 200 and item_ids(since) == ["a2", "a3"]  # a3 was never offered by nextReady, a2 was
        code, later = await srv.call(describe_at(order_id, "nextReady", "2999-01-01T00:00:00Z"))
        assert item_ids(later) == []
        assert await ordering.complete_item(order_id, "a4")
        code, timed_all = await srv.call(describe_at(order_id, "allReady", "2999-01-01T00:00:00Z"))
        assert item_ids(timed_all) == ["a1", "a2", "a3", "a4"]  # allReady lists all, its timeStamp aside
        code, fresh = await srv.call(describe(order_id, "nextReady"))
        assert item_ids(fresh) == []  # the timed calls moved the mark as well
    finally:
        await srv.parts.engine.start()  # the fixture drains and stops it
