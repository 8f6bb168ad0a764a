"""GetQuotation in its three modes over the real HTTP stack (loopback, real
portal, real Redis), every answer validated against the official schemas;
prices from the collection's table (per item, per option choice, QUOTA) and
from a processor's IQuotes hook; quotations kept in Redis for their validity
(a Clock for time); the asynchronous GetQuotationResponse delivered to a real
receiver; Submit by quotationId, and its refusals."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import pytest_twisted
from lxml import etree
from twisted.internet import reactor, task
from zope.interface import implementer
from zope.interface.verify import verifyObject

from oseod.auth.account import Account
from oseod.config import ConfigError, parse_config
from oseod.core.ordering import OrderingService
from oseod.core.quotations import QuotationService, new_quotation_id
from oseod.jobs.dummy import DummyProcessor
from oseod.threads import ThreadPools
from oseod.jobs.processors import IItemProcessor, IQuotes, load_processor
from oseod.model.errors import RequestRejected
from oseod.model.orders import ItemSpec, Notification, OptionValue, OrderSpec, OrderType
from oseod.notify.quotations import QuotationCallbacks, message_id
from oseod.notify.sender import IOutboxChannel, OutboxSender
from oseod.oseo.namespaces import OSEO, OWS, WSA
from oseod.store import keys
from oseod.store.connection import Redis
from oseod.store.orders import OrderStore
from oseod.store.outbox import OutboxStore
from oseod.store.quotations import QUOTATION, QuotationStore
from tests.callback_receiver import receiver
from tests.oseo_schema import assert_valid, requires_schemas
from tests.polling import eventually
from tests.test_http_ordering import BASE, code_of, envelope, get_status, order_id_of, server, token  # noqa: F401
from tests.pools import POOLS

NS = {"o": OSEO}
ALICE = Account("alice")
HOURS = 72

PRICED = {"id": "urn:x:priced", "price_per_item": 1.5, "currency": "EUR",
          "option": [{"name": "format", "choices": ["GeoTIFF", "NetCDF", "JPEG2000"], "default": "GeoTIFF"},
                     {"name": "level", "choices": ["L1", "L2"]}],
          "prices": {"format=NetCDF": 2.5, "format=GeoTIFF": 0.25, "level=L2": 10}}
QUOTA = {"id": "urn:x:quota", "price_per_item": 3, "currency": "QUOTA"}
HOOKED = {"id": "urn:x:hooked", "price_per_item": 1, "currency": "EUR",
          "processor": "tests.test_quotation:QuotingProcessor"}
LOOPBACK = {"allowed_networks": ["127.0.0.0/8"], "retry_delay": 0.1, "timeout": 10.0}


def config(mode: str = "synchronous", **sections: Any) -> Any:
    return parse_config({"quotation": {"mode": mode, "validity_hours": HOURS},
                         "collection": [PRICED, QUOTA, HOOKED], **sections})


@implementer(IItemProcessor, IQuotes)
class QuotingProcessor(DummyProcessor):
    """Prices "gold-" products itself (asynchronously); the table does the rest."""

    asked: list[tuple[str, str]] = []

    def __init__(self, options: Mapping[str, Any], reactor: Any, clock: Any, *, threads: ThreadPools) -> None:
        super().__init__(options, reactor, clock, threads=threads)

    async def quote_item(self, collection: str, item: ItemSpec) -> Decimal | None:
        self.asked.append((collection, item.item_id))
        return Decimal("7.25") if (item.product_id or "").startswith("gold-") else None


def option(name: str, value: str) -> str:
    return (f"<option><ParameterData><encoding>XMLEncoding</encoding><values><{name} xmlns=\"urn:x:options\">"
            f"{value}</{name}></values></ParameterData></option>")


def specification(*items: str, collection: str = "urn:x:priced", options: str = "", reference: str = "quoted") -> str:
    """Items as "ID", "ID:FORMAT" (the item's own format choice) or "ID@COLLECTION"."""
    order_items = []
    for text in items:
        text, _, where = text.partition("@")
        item_id, _, choice = text.partition(":")
        order_items.append(f"<orderItem><itemId>{item_id}</itemId>{option('format', choice) if choice else ''}"
                           f"<productId><identifier>{item_id}-product</identifier>"
                           f"<collectionId>{where or collection}</collectionId></productId></orderItem>")
    return (f"<orderSpecification><orderReference>{reference}</orderReference>{options}"
            "<deliveryOptions><onlineDataAccess><protocol>ftp</protocol></onlineDataAccess></deliveryOptions>"
            f"<orderType>PRODUCT_ORDER</orderType>{''.join(order_items)}</orderSpecification>")


def get_quotation(*items: str, **kw: Any) -> str:
    return f'<GetQuotation xmlns="{OSEO}" {BASE}>{specification(*items, **kw)}</GetQuotation>'


def monitor(quotation_id: str) -> str:
    return f'<GetQuotation xmlns="{OSEO}" {BASE}><quotationId>{quotation_id}</quotationId></GetQuotation>'


def submit_quoted(quotation_id: str, notification: str = "None") -> str:
    return (f'<Submit xmlns="{OSEO}" {BASE}><quotationId>{quotation_id}</quotationId>'
            f"<statusNotification>{notification}</statusNotification></Submit>")


def addressing(reply_to: str, message_id: str = "urn:uuid:quote-1") -> str:
    return (f'<wsa:MessageID xmlns:wsa="{WSA}">{message_id}</wsa:MessageID>'
            f'<wsa:ReplyTo xmlns:wsa="{WSA}"><wsa:Address>{reply_to}</wsa:Address></wsa:ReplyTo>')


def read(parent: etree._Element) -> dict[str, Any]:
    """The OrderQuotation in a GetQuotationAck or GetQuotationResponse."""
    quotation = parent.find("o:quotation", NS)
    assert quotation is not None, etree.tostring(parent)[:500]
    group = quotation.find("o:orderItemGroupPrice", NS)
    assert group is not None
    return {
        "id": quotation.findtext("o:quotationId", namespaces=NS),
        "valid_until": datetime.fromisoformat(
            (quotation.findtext("o:validityTime", namespaces=NS) or "").replace("Z", "+00:00")),
        "total": Decimal(quotation.findtext("o:price/o:value", namespaces=NS) or "nan"),
        "currency": quotation.findtext("o:price/o:currency", namespaces=NS),
        "provider": group.findtext("o:provider/o:serviceName", namespaces=NS),
        "items": {e.findtext("o:itemId", namespaces=NS): (Decimal(e.findtext("o:price/o:value", namespaces=NS) or "nan"),
                                                          e.findtext("o:priceInformation", namespaces=NS))
                  for e in group.iterfind("o:orderItemPrice", NS)},
    }


def quotation_id_of(ack: etree._Element) -> str:
    """The quotationId of a GetQuotationAck that carries no quotation."""
    assert ack.tag == f"{{{OSEO}}}GetQuotationAck" and ack.find("o:quotation", NS) is None, etree.tostring(ack)
    found = ack.findtext("o:quotationId", namespaces=NS)
    assert found
    return found


async def quotation_flags(srv: Any) -> dict[str, str]:
    code, capabilities = await srv.call(f'<GetCapabilities xmlns="{OSEO}" service="OS"/>')
    assert code == 200
    element = capabilities.find(f".//{{{OSEO}}}GetQuotationCapabilities")
    assert element is not None
    operations = {e.get("name") for e in capabilities.iter(f"{{{OWS}}}Operation")}
    return {**element.attrib, "advertised": str("GetQuotation" in operations).lower()}


# ---------------------------------------------------------------- synchronous


@requires_schemas
@pytest_twisted.ensureDeferred
async def test_synchronous_quotes_each_item_by_the_table_and_its_option_choices(server: Any, redis: Redis) -> None:
    srv = await server(config())
    assert await quotation_flags(srv) == {"supported": "true", "synchronous": "true", "asynchronous": "false",
                                          "monitoring": "false", "off-line": "false", "advertised": "true"}
    code, ack = await srv.call(get_quotation("a", "b:NetCDF", "c:JPEG2000", options=option("level", "L2")))
    assert code == 200 and ack.tag == f"{{{OSEO}}}GetQuotationAck"
    assert ack.findtext("o:status", namespaces=NS) == "success"
    quotation = read(ack)
    assert quotation["currency"] == "EUR" and quotation["provider"] == "oseod ordering service"
    # 1.5 per item, 10 for level L2 (the order's choice), and the item's format
    # (its own choice, else the option's default, GeoTIFF).
    assert quotation["items"] == {
        "a": (Decimal("11.75"), "1.5 per item, 0.25 for format GeoTIFF, 10 for level L2"),
        "b": (Decimal("14"), "1.5 per item, 2.5 for format NetCDF, 10 for level L2"),
        "c": (Decimal("11.5"), "1.5 per item, 10 for level L2"),
    }
    assert quotation["total"] == Decimal("37.25")
    assert quotation["id"].startswith("urn:oseod:quotation:")
    # Kept in Redis for as long as it is valid.
    left = await QuotationStore(redis).seconds_left(quotation["id"])
    assert left is not None and HOURS * 3600 - 600 < left <= HOURS * 3600
    assert abs(quotation["valid_until"] - datetime.now(timezone.utc) - timedelta(hours=HOURS)) < timedelta(minutes=10)

    code, plain = await srv.call(get_quotation("d", collection="urn:x:priced"))
    assert read(plain)["items"] == {"d": (Decimal("1.75"), "1.5 per item, 0.25 for format GeoTIFF")}
    # A quotation may be read again by its id, in any mode.
    code, again = await srv.call(monitor(quotation["id"]))
    assert code == 200 and read(again) == quotation


@requires_schemas
@pytest_twisted.ensureDeferred
async def test_quota_is_a_currency_and_one_quotation_has_one(server: Any) -> None:
    srv = await server(config())
    code, ack = await srv.call(get_quotation("q1", "q2", collection="urn:x:quota"))
    quotation = read(ack)
    assert (quotation["currency"], quotation["total"]) == ("QUOTA", Decimal(6))
    code, fault = await srv.call(get_quotation("e1", "q1@urn:x:quota"))
    assert (code, *code_of(fault)) == (400, "InvalidParameterValue", "orderItem")
    assert "different currencies" in "".join(fault.itertext())


@requires_schemas
@pytest_twisted.ensureDeferred
async def test_a_quotation_is_refused_as_the_submit_would_be(server: Any) -> None:
    srv = await server(config())
    for payload, expected in [
        (get_quotation("x:TIFF"), ("InvalidParameterValue", "option")),
        (get_quotation("x", collection="urn:x:nowhere"), ("UnsupportedCollection", "collectionId")),
        (get_quotation("x", reference="r" * 31), ("InvalidParameterValue", "orderReference")),
        (f'<GetQuotation xmlns="{OSEO}" {BASE}/>', ("MissingParameterValue", "orderSpecification")),
    ]:
        code, fault = await srv.call(payload)
        assert (code, *code_of(fault)) == (400, *expected), payload


@requires_schemas
@pytest_twisted.ensureDeferred
async def test_a_processor_providing_iquotes_prices_items_first(server: Any) -> None:
    # As the engine loads it (pytest may have imported this module under another name).
    loaded: Any = load_processor(HOOKED["processor"], {})
    verifyObject(IQuotes, loaded({}, reactor, reactor, threads=POOLS))
    loaded.asked.clear()
    srv = await server(config())
    code, ack = await srv.call(get_quotation("gold-1", "tin-1", collection="urn:x:hooked"))
    assert read(ack)["items"] == {"gold-1": (Decimal("7.25"), None), "tin-1": (Decimal("1"), None)}
    assert read(ack)["total"] == Decimal("8.25")
    assert loaded.asked == [("urn:x:hooked", "gold-1"), ("urn:x:hooked", "tin-1")]


# ------------------------------------------------------------ Submit by quotationId


@requires_schemas
@pytest_twisted.ensureDeferred
async def test_submit_by_quotation_id_orders_exactly_what_was_quoted_once(server: Any) -> None:
    srv = await server(config())
    code, ack = await srv.call(get_quotation("a", "b:NetCDF", reference="from a quote"))
    quotation_id = read(ack)["id"]
    # Somebody else's quotation does not exist for them, and stays its owner's.
    code, fault = await srv.call(submit_quoted(quotation_id), user="bob", password="bob-password")
    assert (code, *code_of(fault)) == (400, "InvalidParameterValue", "quotationId")
    code, fault = await srv.call(monitor(quotation_id), user="bob", password="bob-password")
    assert (code, *code_of(fault)) == (400, "InvalidParameterValue", "quotationId")

    code, submitted = await srv.call(submit_quoted(quotation_id))
    assert code == 200
    order_id = order_id_of(submitted)
    assert submitted.findtext("o:orderReference", namespaces=NS) == "from a quote"
    await srv.parts.engine.drain()
    code, status = await srv.call(get_status(order_id))
    items = status.findall(".//o:orderItem", NS)
    assert [i.findtext("o:itemId", namespaces=NS) for i in items] == ["a", "b"]
    assert [i.findtext("o:productId/o:collectionId", namespaces=NS) for i in items] == ["urn:x:priced"] * 2
    assert status.findtext(".//{urn:x:options}format") == "NetCDF"

    # Used up: neither ordered nor read again.
    for payload in (submit_quoted(quotation_id), monitor(quotation_id)):
        code, fault = await srv.call(payload)
        assert (code, *code_of(fault)) == (400, "InvalidParameterValue", "quotationId")
    code, fault = await srv.call(submit_quoted("urn:oseod:quotation:no-such-thing"))
    assert (code, *code_of(fault)) == (400, "InvalidParameterValue", "quotationId")
    assert "no-such-thing" in "".join(fault.itertext())


@requires_schemas
@pytest_twisted.ensureDeferred
async def test_a_refused_submit_leaves_the_quotation_to_order_later(server: Any) -> None:
    srv = await server(config())
    code, ack = await srv.call(get_quotation("a"))
    quotation_id = read(ack)["id"]
    code, fault = await srv.call(submit_quoted(quotation_id, notification="All"))  # no wsa:ReplyTo
    assert (code, *code_of(fault)) == (400, "InvalidNotificationValue", "ws-address")
    code, submitted = await srv.call(submit_quoted(quotation_id))
    assert code == 200 and order_id_of(submitted)


# ---------------------------------------------------------------- monitoring and off


@requires_schemas
@pytest_twisted.ensureDeferred
async def test_monitoring_answers_an_id_then_the_quotation_asked_for_by_it(server: Any) -> None:
    srv = await server(config("monitoring"))
    assert await quotation_flags(srv) == {"supported": "true", "synchronous": "false", "asynchronous": "false",
                                          "monitoring": "true", "off-line": "false", "advertised": "true"}
    code, ack = await srv.call(get_quotation("m1", "m2:NetCDF"))
    quotation_id = quotation_id_of(ack)
    code, ready = await srv.call(monitor(quotation_id))
    assert code == 200 and ready.tag == f"{{{OSEO}}}GetQuotationAck"
    quotation = read(ready)
    assert quotation["id"] == quotation_id and quotation["total"] == Decimal("5.75")
    code, fault = await srv.call(monitor("urn:oseod:quotation:unknown"))
    assert (code, *code_of(fault)) == (400, "InvalidParameterValue", "quotationId")
    code, submitted = await srv.call(submit_quoted(quotation_id))
    assert code == 200 and order_id_of(submitted)


@requires_schemas
@pytest_twisted.ensureDeferred
async def test_off_offers_no_quotation(server: Any) -> None:
    srv = await server(config("off"))
    assert await quotation_flags(srv) == {"supported": "false", "synchronous": "false", "asynchronous": "false",
                                          "monitoring": "false", "off-line": "false", "advertised": "false"}
    code, fault = await srv.call(get_quotation("a"))
    assert (code, *code_of(fault)) == (400, "OperationNotSupported", "GetQuotation")
    code, fault = await srv.call(submit_quoted("urn:oseod:quotation:x"))
    assert (code, *code_of(fault)) == (400, "InvalidParameterValue", "quotationId")


# ---------------------------------------------------------------- asynchronous


@requires_schemas
@pytest_twisted.ensureDeferred
async def test_asynchronous_sends_the_quotation_to_the_reply_to(server: Any, redis: Redis) -> None:
    srv = await server(config("asynchronous", notifications=LOOPBACK))
    assert await quotation_flags(srv) == {"supported": "true", "synchronous": "false", "asynchronous": "true",
                                          "monitoring": "false", "off-line": "false", "advertised": "true"}
    code, fault = await srv.call(get_quotation("a"))  # nowhere to send it
    assert (code, *code_of(fault)) == (400, "InvalidNotificationValue", "ws-address")
    with receiver() as client:
        code, fault, _ = await srv.post(envelope(get_quotation("a"), token("alice", "alice-password")
                                                 + addressing(client.url).split("</wsa:MessageID>")[1]))
        assert (code, *code_of(fault)) == (400, "InvalidNotificationValue", "ws-address")  # no MessageID

        code, ack, _ = await srv.post(envelope(get_quotation("a", "b:NetCDF"),
                                               token("alice", "alice-password") + addressing(client.url)))
        assert code == 200
        quotation_id = quotation_id_of(ack)
        # Stored and queued in one step: the call-back waits in the outbox.
        assert await OutboxStore(redis).pending() == {QUOTATION: 1}
        assert await redis.conn.exists(keys.quotation(quotation_id))

        srv.parts.outbox.start()
        try:
            async def delivered() -> bool:
                return (await OutboxStore(redis).counters()).get(f"{QUOTATION}:sent") == 1

            await eventually(delivered, 30, "the GetQuotationResponse acknowledged")
        finally:
            await srv.parts.outbox.stop()
        (headers, body), = client.received
        response = assert_valid(body)
        assert response.tag == f"{{{OSEO}}}GetQuotationResponse"
        assert response.findtext("o:status", namespaces=NS) == "success"
        quotation = read(response)
        assert quotation["id"] == quotation_id and quotation["total"] == Decimal("5.75")
        wsa = {etree.QName(e).localname: (e.text or "").strip() for e in etree.fromstring(body).iter(f"{{{WSA}}}*")}
        assert (wsa["To"], wsa["RelatesTo"], wsa["Action"]) == (client.url, "urn:uuid:quote-1", "GetQuotationResponse")
        assert wsa["MessageID"] == message_id(quotation_id, 1)
        assert headers["content-type"].startswith("application/soap+xml")
    assert await OutboxStore(redis).pending() == {}

    code, submitted = await srv.call(submit_quoted(quotation_id))
    assert code == 200 and order_id_of(submitted)


@requires_schemas
@pytest_twisted.ensureDeferred
async def test_asynchronous_refuses_a_reply_to_in_the_providers_network(server: Any) -> None:
    srv = await server(config("asynchronous"))  # no allowed_networks
    code, fault, _ = await srv.post(envelope(get_quotation("a"), token("alice", "alice-password")
                                             + addressing("http://127.0.0.1:9/callbacks")))
    assert (code, *code_of(fault)) == (400, "InvalidNotificationValue", "ws-address")
    assert "127.0.0.1" in "".join(fault.itertext())


# ---------------------------------------------------------------- time (a Clock)


def service(redis: Redis, clock: task.Clock, mode: str = "synchronous", **sections: Any) -> QuotationService:
    cfg = config(mode, **sections)
    return QuotationService(QuotationStore(redis), OrderingService(OrderStore(redis), cfg, clock), cfg, clock)


SPEC = OrderSpec(OrderType.PRODUCT_ORDER, (ItemSpec("i1", product_id="p1", collection_id="urn:x:priced",
                                                    options=(OptionValue("format", "NetCDF"),)),))


@pytest_twisted.ensureDeferred
async def test_a_quotation_holds_for_validity_hours(redis: Redis) -> None:
    clock = task.Clock()
    clock.advance(1_800_000_000)
    quotations = service(redis, clock)
    quotation = await quotations.quote(ALICE, SPEC)
    assert quotation.valid_until == datetime.fromtimestamp(1_800_000_000 + HOURS * 3600, timezone.utc)
    assert quotation.total == Decimal(4)
    assert await quotations.find(ALICE, quotation.quotation_id) == quotation
    clock.advance(HOURS * 3600 - 1)
    assert await quotations.find(ALICE, quotation.quotation_id) == quotation
    clock.advance(1)
    for refused in (quotations.find(ALICE, quotation.quotation_id),
                    quotations.order(ALICE, quotation.quotation_id, Notification())):
        with pytest.raises(RequestRejected) as info:
            await refused
        assert (info.value.code, info.value.locator) == ("InvalidParameterValue", "quotationId")


@pytest_twisted.ensureDeferred
async def test_redis_forgets_a_quotation_when_it_expires(redis: Redis) -> None:
    clock = task.Clock()
    store = QuotationStore(redis)
    quotation = await service(redis, clock).quote(ALICE, SPEC)
    key = keys.quotation(quotation.quotation_id)
    assert 0 < int(await redis.conn.execute_command("PTTL", key)) <= HOURS * 3600 * 1000
    await redis.conn.execute_command("PEXPIREAT", key, 1)  # what the TTL does, HOURS hours later
    assert not await redis.conn.exists(key)
    assert await store.get("alice", quotation.quotation_id) is None
    assert await store.take("alice", quotation.quotation_id) is None
    assert await store.get("alice", "x" * 1000) is None  # not even asked


@pytest_twisted.ensureDeferred
async def test_a_processor_price_that_is_no_amount_is_an_error(redis: Redis) -> None:
    clock = task.Clock()
    cfg = config()

    async def negative(collection: Any, item: ItemSpec) -> int:
        return -1

    quotations = QuotationService(QuotationStore(redis), OrderingService(OrderStore(redis), cfg, clock), cfg, clock,
                                  quote_item=negative)
    with pytest.raises(ValueError, match="urn:x:priced priced item i1 at -1"):
        await quotations.quote(ALICE, SPEC)


@requires_schemas
@pytest_twisted.ensureDeferred
async def test_the_call_back_follows_the_soap_version_and_an_expired_one_is_given_up(redis: Redis) -> None:
    clock = task.Clock()
    clock.advance(1_800_000_000)
    quotations = service(redis, clock, "asynchronous", notifications=LOOPBACK)
    channel = QuotationCallbacks(reactor, clock, timeout=10.0, allowed_networks=("127.0.0.0/8",), threads=POOLS)
    verifyObject(IOutboxChannel, channel)
    out = OutboxSender(OutboxStore(redis), {QUOTATION: channel}, clock, max_attempts=5, retry_delay=10.0, timeout=10.0)
    with receiver() as client:
        soap11 = await quotations.quote(ALICE, SPEC, reply=Notification(reply_to=client.url,
                                                                        message_id="urn:uuid:q11", soap_version="1.1"))
        out.wake()
        await out.drain()
        (headers, body), = client.received
        assert headers["soapaction"] == '"GetQuotationResponse"'
        assert read(assert_valid(body))["id"] == soap11.quotation_id

        late = await quotations.quote(ALICE, SPEC, reply=Notification(reply_to=client.url, message_id="urn:uuid:q2"))
        clock.advance(HOURS * 3600)
        out.wake()
        await out.drain()
        assert len(client.received) == 1
    (failure, *_) = await OutboxStore(redis).failures()
    assert (failure.channel, failure.name, failure.attempts) == (QUOTATION, late.quotation_id, 1)
    assert "expired" in failure.error


def test_quotation_ids_are_unguessable_uris() -> None:
    ids = {new_quotation_id() for _ in range(100)}
    assert len(ids) == 100 and all(i.startswith("urn:oseod:quotation:") and len(i) > 40 for i in ids)


# ---------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("collection", "key", "fragment"),
    [
        ({"prices": {"format": 1}}, "collection[0].prices.format", "OPTION=CHOICE"),
        ({"prices": {"colour=red": 1}}, "collection[0].prices.colour=red", 'no option "colour"'),
        ({"prices": {"format=TIFF": 1}}, "collection[0].prices.format=TIFF", 'not a choice of option "format"'),
        ({"prices": {"format=NetCDF": -1}}, "collection[0].prices.format=NetCDF", "at least 0"),
        ({"prices": {"format=NetCDF": "2"}}, "collection[0].prices.format=NetCDF", "number"),
        ({"currency": "DOUBLOONS-OF-GOLD"}, "collection[0].currency", "at most 10"),
    ],
)
def test_bad_prices_name_the_key(collection: dict[str, Any], key: str, fragment: str) -> None:
    base = {"id": "urn:x:c", "option": [{"name": "format", "choices": ["NetCDF"]}]}
    with pytest.raises(ConfigError) as info:
        parse_config({"collection": [{**base, **collection}]})
    assert info.value.key == key and fragment in info.value.problem
