"""oseod.oseo.quotation: GetQuotation requests, quotations, the
GetQuotationAck and the GetQuotationResponse body."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import attrs
import pytest
from lxml import etree

from oseod.model.orders import ItemSpec, OrderSpec, OrderType
from oseod.oseo.errors import ExceptionCode, OseoError
from oseod.oseo.namespaces import OSEO
from oseod.oseo.quotation import (
    QUOTA,
    GetQuotationRequest,
    ItemPrice,
    Provider,
    Quotation,
    amount,
    format_amount,
    parse_get_quotation,
    render_get_quotation_ack,
    render_get_quotation_response,
)
from oseod.oseo.soap import Encoding, unwrap, wrap
from oseod.oseo.submit import parse_order_specification
from tests.oseo_schema import SCHEMAS_DIR, assert_valid, requires_schemas

SAMPLES = SCHEMAS_DIR / "oseo" / "1.0" / "SampleMessages"
NS = {"oseo": OSEO}
E = ExceptionCode
PROVIDER = Provider("ESA_ORDER_SERVICE", "ESA")
SPEC = OrderSpec(OrderType.PRODUCT_ORDER, (
    ItemSpec("item-1", product_id="urn:p:1", collection_id="urn:c:1"),
    ItemSpec("item-2", product_id="urn:p:2"),
))


def request(inner: str, attributes: str = 'service="OS" version="1.0.0"') -> etree._Element:
    return etree.fromstring(f'<GetQuotation xmlns="{OSEO}" {attributes}>{inner}</GetQuotation>')


def error_of(call: Callable[..., object], *args: object) -> OseoError:
    with pytest.raises(OseoError) as info:
        call(*args)
    assert info.value.sender
    return info.value


def quotation(**changes: object) -> Quotation:
    base = Quotation("urn:oseod:q:1", SPEC, "EUR", PROVIDER, [ItemPrice("item-1", "0.1"), ItemPrice("item-2", 0.2)],
                     valid_until=datetime(2030, 5, 1, tzinfo=UTC))
    return attrs.evolve(base, **changes)


def read_quotation(element: etree._Element) -> dict[str, object]:
    """What a client reads back from a rendered quotation."""
    q = element.find("oseo:quotation", NS)
    assert q is not None
    return {
        "id": q.findtext("oseo:quotationId", namespaces=NS),
        "valid": q.findtext("oseo:validityTime", namespaces=NS),
        "total": (q.findtext("oseo:price/oseo:value", namespaces=NS),
                  q.findtext("oseo:price/oseo:currency", namespaces=NS)),
        "group": q.findtext("oseo:orderItemGroupPrice/oseo:price/oseo:value", namespaces=NS),
        "items": [(entry.findtext("oseo:itemId", namespaces=NS), entry.findtext("oseo:price/oseo:value",
                                                                                namespaces=NS))
                  for entry in q.iterfind("oseo:orderItemGroupPrice/oseo:orderItemPrice", NS)],
    }


# --------------------------------------------------------------------- parsing


def test_official_sample() -> None:
    element = etree.parse(str(SAMPLES / "GetQuotation.xml")).getroot()
    parsed = parse_get_quotation(element)
    spec = element.find("oseo:orderSpecification", NS)
    assert spec is not None
    assert parsed == GetQuotationRequest(parse_order_specification(spec), None)
    assert parsed.spec is not None and parsed.spec.reference == "example_0001"
    assert [item.item_id for item in parsed.spec.items] == ["item_0001"]


def test_in_a_soap_envelope() -> None:
    sample = (SAMPLES / "GetQuotation.xml").read_bytes()
    message = unwrap(wrap(Encoding.SOAP12, sample), "application/soap+xml")
    assert parse_get_quotation(message.payload) == parse_get_quotation(etree.fromstring(sample))


def test_monitoring_by_quotation_id() -> None:
    parsed = parse_get_quotation(request("<timeStamp>2024-01-01T00:00:00Z</timeStamp>"
                                         "<quotationId> urn:oseod:q:1 </quotationId>"))
    assert parsed == GetQuotationRequest(None, "urn:oseod:q:1")


SPEC_XML = ("<orderSpecification><orderType>PRODUCT_ORDER</orderType><orderItem><itemId>1</itemId>"
            "<productId><identifier>p</identifier></productId></orderItem></orderSpecification>")


@pytest.mark.parametrize(("inner", "attributes", "code", "locator"), [
    ("<quotationId>q</quotationId>", 'version="1.0.0"', E.MissingParameterValue, "service"),
    ("<quotationId>q</quotationId>", 'service="OS" version="2.0.0"', E.InvalidParameterValue, "version"),
    ("", 'service="OS" version="1.0.0"', E.MissingParameterValue, "orderSpecification"),
    ("<quotationId></quotationId>", 'service="OS" version="1.0.0"', E.MissingParameterValue, "quotationId"),
    ("<quotationId>q</quotationId><quotationId>r</quotationId>", 'service="OS" version="1.0.0"',
     E.InvalidParameterValue, "quotationId"),
    (SPEC_XML + "<quotationId>q</quotationId>", 'service="OS" version="1.0.0"', E.InvalidParameterValue,
     "quotationId"),
    ("<quotationId>q</quotationId><statusNotification>All</statusNotification>", 'service="OS" version="1.0.0"',
     E.InvalidParameterValue, "statusNotification"),
    ("<timeStamp>yesterday</timeStamp><quotationId>q</quotationId>", 'service="OS" version="1.0.0"',
     E.InvalidParameterValue, "timeStamp"),
    (SPEC_XML.replace("PRODUCT_ORDER", "SOME_ORDER"), 'service="OS" version="1.0.0"', E.InvalidParameterValue,
     "orderType"),
])
def test_invalid_requests(inner: str, attributes: str, code: ExceptionCode, locator: str) -> None:
    error = error_of(parse_get_quotation, request(inner, attributes))
    assert (error.code, error.locator) == (code, locator), error


def test_wrong_operation() -> None:
    element = etree.fromstring(f'<Submit xmlns="{OSEO}" service="OS" version="1.0.0"/>')
    assert error_of(parse_get_quotation, element).code is E.OperationNotSupported


# -------------------------------------------------------------------- amounts


@pytest.mark.parametrize(("value", "text"), [
    (15, "15"), (0.1, "0.1"), ("2.50", "2.5"), (Decimal("1E+3"), "1000"), (Decimal("-0"), "0"), (0, "0"),
    ("0.000001", "0.000001"),
])
def test_amounts(value: object, text: str) -> None:
    assert format_amount(amount(value)) == text


@pytest.mark.parametrize("value", ["NaN", "Infinity", "ten", float("inf")])
def test_not_amounts(value: object) -> None:
    with pytest.raises(ValueError):
        amount(value)


def test_the_total_has_no_binary_rounding() -> None:
    assert quotation().total == Decimal("0.3")
    assert quotation(item_prices=(ItemPrice("item-1", 1), ItemPrice("item-2", 2))).total == 3
    assert read_quotation(render_get_quotation_ack(quotation=quotation()))["total"] == ("0.3", "EUR")


# ------------------------------------------------------------------ rendering


@requires_schemas
def test_synchronous_ack() -> None:
    ack = render_get_quotation_ack(quotation=quotation())
    assert_valid(ack)
    assert_valid(wrap(Encoding.SOAP12, ack))
    assert ack.findtext("oseo:status", namespaces=NS) == "success"
    assert read_quotation(ack) == {
        "id": "urn:oseod:q:1", "valid": "2030-05-01T00:00:00.000Z", "total": ("0.3", "EUR"), "group": "0.3",
        "items": [("item-1", "0.1"), ("item-2", "0.2")],
    }
    group = ack.find("oseo:quotation/oseo:orderItemGroupPrice", NS)
    assert group is not None
    assert group.findtext("oseo:provider/oseo:serviceName", namespaces=NS) == "ESA_ORDER_SERVICE"
    assert group.findtext("oseo:orderItemPrice/oseo:productId/oseo:collectionId", namespaces=NS) == "urn:c:1"


@requires_schemas
def test_asynchronous_and_monitoring_acks() -> None:
    pending = render_get_quotation_ack(quotation_id="urn:oseod:q:9")
    assert_valid(pending)
    assert [etree.QName(child).localname for child in pending] == ["status", "quotationId"]
    assert pending.findtext("oseo:quotationId", namespaces=NS) == "urn:oseod:q:9"
    bare = render_get_quotation_ack()
    assert_valid(bare)
    assert [etree.QName(child).localname for child in bare] == ["status"]
    with pytest.raises(ValueError):
        render_get_quotation_ack(quotation=quotation(), quotation_id="urn:oseod:q:1")


@requires_schemas
def test_response_body() -> None:
    response = render_get_quotation_response(quotation())
    assert_valid(response)
    assert (response.get("service"), response.get("version")) == ("OS", "1.0.0")
    assert [etree.QName(child).localname for child in response] == ["status", "quotation"]
    partial = render_get_quotation_response(quotation(), "x" * 300)
    assert_valid(partial)
    assert partial.findtext("oseo:status", namespaces=NS) == "partial"
    assert len(partial.findtext("oseo:errorMessage", namespaces=NS) or "") == 255


@requires_schemas
def test_quota_balance_information_and_contract() -> None:
    q = quotation(currency=QUOTA, balance=20, contract_information="framework contract 12",
                  item_prices=(ItemPrice("item-1", 15, "level 1 product"), ItemPrice("item-2")))
    assert q.total == 15
    ack = render_get_quotation_ack(quotation=q)
    assert_valid(ack)
    group = ack.find("oseo:quotation/oseo:orderItemGroupPrice", NS)
    assert group is not None
    assert group.findtext("oseo:balance/oseo:value", namespaces=NS) == "20"
    assert group.findtext("oseo:balance/oseo:currency", namespaces=NS) == "QUOTA"
    assert read_quotation(ack)["items"] == [("item-1", "15"), ("item-2", None)]
    assert group.findtext("oseo:orderItemPrice/oseo:priceInformation", namespaces=NS) == "level 1 product"
    assert ack.findtext("oseo:quotation/oseo:contractInformation", namespaces=NS) == "framework contract 12"


@requires_schemas
def test_a_discounted_total() -> None:
    ack = render_get_quotation_ack(quotation=quotation(order_price="0.25"))
    assert_valid(ack)
    assert read_quotation(ack)["total"] == ("0.25", "EUR")


@requires_schemas
def test_subscription_and_tasking_items() -> None:
    for spec in (
        OrderSpec(OrderType.SUBSCRIPTION_ORDER, (ItemSpec("s", collection_id="urn:c:1", subscription=True),)),
        OrderSpec(OrderType.TASKING_ORDER, (ItemSpec("t", tasking_request_id="urn:sps:task:1"),)),
    ):
        q = Quotation("urn:q", spec, "EUR", PROVIDER, [ItemPrice(spec.items[0].item_id, 1)])
        ack = render_get_quotation_ack(quotation=q)
        assert_valid(ack)
        entry = ack.find("oseo:quotation/oseo:orderItemGroupPrice/oseo:orderItemPrice", NS)
        assert entry is not None
        identity = [etree.QName(child).localname for child in entry][1]
        assert identity == ("subscriptionId" if spec.order_type is OrderType.SUBSCRIPTION_ORDER
                            else "taskingRequestId")


@requires_schemas
def test_round_trip_of_the_official_sample() -> None:
    """Quote the order of GetQuotation.xml as GetQuotationAck.xml does: the
    same structure comes out."""
    request_spec = parse_get_quotation(etree.parse(str(SAMPLES / "GetQuotation.xml")).getroot()).spec
    assert request_spec is not None
    q = Quotation("urn:ESA:EECF:quotationId_0001", request_spec, QUOTA, PROVIDER, [ItemPrice("item_0001")],
                  valid_until=datetime(2007, 5, 1, tzinfo=UTC), balance=20, order_price=15)
    ours = render_get_quotation_ack(quotation=q)
    assert_valid(ours)
    sample = etree.parse(str(SAMPLES / "GetQuotationAck.xml")).getroot()

    def shape(element: etree._Element) -> list[tuple[str, str]]:
        return [(str(etree.QName(e).localname), (e.text or "").strip()) for e in element.iter()
                if isinstance(e.tag, str) and e is not element and not len(e) and etree.QName(e).localname
                != "validityTime"]

    assert shape(ours) == shape(sample)


@pytest.mark.parametrize("changes", [
    {"item_prices": (ItemPrice("item-1", 1),)},
    {"item_prices": (ItemPrice("item-1", 1), ItemPrice("item-1", 1))},
    {"item_prices": (ItemPrice("item-1", 1), ItemPrice("item-2", 1), ItemPrice("item-3", 1))},
    {"currency": "EURO-DOLLARS"},
    {"currency": ""},
    {"quotation_id": ""},
    {"order_price": -1},
    {"contract_information": "c" * 1025},
])
def test_invalid_quotations(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        quotation(**changes)


def test_invalid_parts() -> None:
    for make in (lambda: ItemPrice("i", -0.5), lambda: ItemPrice("i", "NaN"), lambda: ItemPrice("i", 1, "x" * 256),
                 lambda: Provider("s" * 41, "o"), lambda: Provider("s", "o" * 41)):
        with pytest.raises(ValueError):
            make()
