"""oseod.oseo.status: GetStatus requests (by id, by search) and the order
monitor specifications of GetStatusResponse and the call-backs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from oseod.model.orders import (
    DeliveryChoice,
    DeliveryMethod,
    Fragment,
    Item,
    ItemSpec,
    OnlineAddress,
    OptionValue,
    Order,
    OrderSpec,
    OrderStatus,
    OrderType,
    Priority,
    StatusInfo,
)
from oseod.oseo import common
from oseod.oseo.common import parse_date_time
from oseod.oseo.errors import ExceptionCode, OseoError
from oseod.oseo.namespaces import OSEO
from oseod.oseo.soap import Encoding, unwrap, wrap
from oseod.oseo.status import (
    GetStatusRequest,
    SearchCriteria,
    parse_get_status,
    render_get_status_response,
    serialise_order_monitor,
    render_order_monitor_specification,
)
from oseod.oseo.submit import parse_submit
from tests.oseo_schema import SCHEMAS_DIR, assert_valid, requires_schemas
from tests.test_oseo_submit import FULL, SOAPUI_PROPERTIES

SAMPLES = SCHEMAS_DIR / "oseo" / "1.0" / "SampleMessages"
EXAMPLES = SCHEMAS_DIR / "examples"
DERIVED = SCHEMAS_DIR.parent / "samples" / "pyoseo" / "derived"
SOAPUI = DERIVED / "soapui-requests"
NS = {"oseo": OSEO}
E = ExceptionCode


def request(inner: str, attributes: str = 'service="OS" version="1.0.0"') -> etree._Element:
    return etree.fromstring(f'<GetStatus xmlns="{OSEO}" {attributes}>{inner}</GetStatus>')


def search(criteria: str, presentation: str = "brief") -> GetStatusRequest:
    return parse_get_status(request(f"<filteringCriteria>{criteria}</filteringCriteria>"
                                    f"<presentation>{presentation}</presentation>"))


def error_of(call: Callable[..., object], *args: object) -> OseoError:
    with pytest.raises(OseoError) as info:
        call(*args)
    assert info.value.sender
    return info.value


def refused(inner: str, code: ExceptionCode, locator: str, phrase: str = "") -> OseoError:
    error = error_of(parse_get_status, request(inner))
    assert (error.code, error.locator) == (code, locator), error
    assert phrase in error.text
    return error


def payload(path: Path, properties: bool = False) -> etree._Element:
    text = path.read_text()
    if properties:
        for key, value in SOAPUI_PROPERTIES.items():
            text = text.replace("${#TestSuite#%s}" % key, value)
    return unwrap(text.encode(), None).payload


# -------------------------------------------------------------------- parsing


def test_official_sample() -> None:
    parsed = parse_get_status(payload(SAMPLES / "GetStatus.xml"))
    assert parsed == GetStatusRequest("urn:ESA:EECF:order_id_0001", None, True)


def test_pyoseo_samples() -> None:
    assert parse_get_status(payload(EXAMPLES / "pyoseo-samples" / "requests_GetStatus.xml")) == GetStatusRequest(
        "1", None, False)
    assert parse_get_status(payload(EXAMPLES / "pyoseo-samples" / "GetStatusSoap.xml")).order_id == "1"
    assert parse_get_status(payload(EXAMPLES / "pyoseo-samples" / "soap_ui_get_status_user.xml")).order_id == "1"
    assert parse_get_status(payload(DERIVED / "docs" / "getstatus_example_1.xml")).full
    assert parse_get_status(payload(EXAMPLES / "handwritten" / "getstatus-full-by-id.xml")) == GetStatusRequest(
        "urn:example:order:42", None, True)
    filtered = parse_get_status(payload(EXAMPLES / "pyoseo-samples" / "GetStatusFilter.xml"))
    assert filtered == GetStatusRequest(None, SearchCriteria(
        datetime(2014, 2, 25, 3, 50, tzinfo=UTC), datetime(2014, 2, 25, 6, 0, tzinfo=UTC),
        frozenset({OrderStatus.Submitted, OrderStatus.Accepted}), "testing reference"), False)


def test_deliberately_invalid_samples() -> None:
    error = error_of(parse_get_status, payload(EXAMPLES / "handwritten" / "invalid-getstatus-missing-presentation.xml"))
    assert (error.code, error.locator) == (E.MissingParameterValue, "presentation")
    # The pre-OGC HMA namespace: not an OSEO 1.0 GetStatus.
    error = error_of(parse_get_status, payload(EXAMPLES / "pyoseo-samples" / "soap_ui_get_status.xml"))
    assert error.code is E.OperationNotSupported
    template = SOAPUI / "interface__OSEO_V100_ServicePortBinding__GetStatus__Request_1.xml"
    error = error_of(parse_get_status, payload(template))
    assert (error.code, error.locator) == (E.InvalidParameterValue, "version")


@pytest.mark.parametrize("name", sorted(p.name for p in SOAPUI.glob("*GetStatus*.xml")))
def test_soapui_requests(name: str) -> None:
    element = payload(SOAPUI / name)
    if "${#TestSuite#getStatusPresentation}" in etree.tostring(element, encoding="unicode"):
        error = error_of(parse_get_status, element)
        assert (error.code, error.locator) == (E.InvalidParameterValue, "presentation")
    elif name.startswith("interface"):
        error_of(parse_get_status, element)
    else:
        parse_get_status(element)
    if not name.startswith("interface"):
        assert isinstance(parse_get_status(payload(SOAPUI / name, properties=True)), GetStatusRequest)


def test_soapui_search_criteria() -> None:
    def parsed(name: str) -> SearchCriteria:
        criteria = parse_get_status(payload(SOAPUI / f"testsuite__IpmaTestSuite__GetStatus__{name}.xml")).criteria
        assert criteria is not None
        return criteria

    assert parsed("03_filteringCriteria_status_full").statuses == {OrderStatus.Submitted, OrderStatus.Failed}
    dates = parsed("04_filteringCriteria_lastUpdate_lastUpdateEnd")
    assert (dates.last_update, dates.last_update_end) == (datetime(2015, 1, 20, 11, tzinfo=UTC),
                                                          datetime(2016, 10, 20, 12, tzinfo=UTC))
    assert parsed("05_filteringCriteria_orderReference") == SearchCriteria(reference="Some random reference")


def test_empty_criteria_restrict_nothing() -> None:
    assert search("", "full") == GetStatusRequest(None, SearchCriteria(None, None, frozenset(), None), True)


def test_dates_of_criteria() -> None:
    criteria = search("<lastUpdate>2016-10-20</lastUpdate><lastUpdateEnd>2016-10-20</lastUpdateEnd>"
                      "<orderReference> ref </orderReference><extension>x</extension>").criteria
    assert criteria is not None
    assert criteria.last_update == datetime(2016, 10, 20, tzinfo=UTC)
    assert criteria.last_update_end == datetime(2016, 10, 20, 23, 59, 59, 999999, tzinfo=UTC)
    assert criteria.reference == "ref"
    criteria = search("<lastUpdateEnd> 2016-10-20T12:00:00+02:00 </lastUpdateEnd>").criteria
    assert criteria is not None and criteria.last_update_end == datetime(2016, 10, 20, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "end_of_day", "expected"),
    [
        ("2014-02-25T03:50:00Z", False, datetime(2014, 2, 25, 3, 50, tzinfo=UTC)),
        ("2014-02-25T03:50:00", False, datetime(2014, 2, 25, 3, 50, tzinfo=UTC)),
        ("2014-02-25T03:50:00+02:00", False, datetime(2014, 2, 25, 1, 50, tzinfo=UTC)),
        ("2014-02-25T03:50:00-14:00", False, datetime(2014, 2, 25, 17, 50, tzinfo=UTC)),
        ("2014-02-25T03:50:00.123456789Z", False, datetime(2014, 2, 25, 3, 50, 0, 123456, tzinfo=UTC)),
        ("2014-02-25T03:50:00.5Z", False, datetime(2014, 2, 25, 3, 50, 0, 500000, tzinfo=UTC)),
        ("2014-02-25T24:00:00Z", False, datetime(2014, 2, 26, tzinfo=UTC)),
        ("2014-02-25", False, datetime(2014, 2, 25, tzinfo=UTC)),
        ("2014-02-25", True, datetime(2014, 2, 25, 23, 59, 59, 999999, tzinfo=UTC)),
        ("2014-02-25-05:00", True, datetime(2014, 2, 26, 4, 59, 59, 999999, tzinfo=UTC)),
        ("2014-02-25Z", False, datetime(2014, 2, 25, tzinfo=UTC)),
        ("2014-02-25T03:50:00Z", True, datetime(2014, 2, 25, 3, 50, tzinfo=UTC)),
    ],
)
def test_parse_date_time(value: str, end_of_day: bool, expected: datetime) -> None:
    parsed = parse_date_time(value, end_of_day=end_of_day)
    assert parsed == expected
    assert parsed is not None and parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "value",
    ["yesterday", "2014-13-01", "2014-02-30", "2014-02-30T00:00:00Z", "2014-02-25T03:50Z", "2014-02-25 03:50:00",
     "2014-02-25T24:00:01Z", "2014-02-25T03:50:00+15:00", "2014-02-25T03:50:00+02", "14-02-25", "2014-2-25",
     "2014-02-25T25:00:00Z", "2014-02-25T03:60:00Z", "0000-01-01", "2014-02-25T03:50:00.Z", "20140225"],
)
def test_parse_date_time_refuses(value: str) -> None:
    assert parse_date_time(value) is None


@pytest.mark.parametrize(
    ("inner", "code", "locator"),
    [
        ("<filteringCriteria><lastUpdate>yesterday</lastUpdate></filteringCriteria><presentation>brief</presentation>",
         E.InvalidParameterValue, "lastUpdate"),
        ("<filteringCriteria><lastUpdateEnd>2016-02-30</lastUpdateEnd></filteringCriteria>"
         "<presentation>brief</presentation>", E.InvalidParameterValue, "lastUpdateEnd"),
        ("<filteringCriteria><lastUpdateEnd><d>2016-01-01</d></lastUpdateEnd></filteringCriteria>"
         "<presentation>brief</presentation>", E.InvalidParameterValue, "lastUpdateEnd"),
        ("<filteringCriteria><lastUpdate/></filteringCriteria><presentation>brief</presentation>",
         E.MissingParameterValue, "lastUpdate"),
        ("<filteringCriteria><orderStatus>Done</orderStatus></filteringCriteria><presentation>brief</presentation>",
         E.InvalidParameterValue, "orderStatus"),
        ("<filteringCriteria><orderReference>" + "r" * 31 + "</orderReference></filteringCriteria>"
         "<presentation>brief</presentation>", E.InvalidParameterValue, "orderReference"),
        ("<filteringCriteria><orderReference/></filteringCriteria><presentation>brief</presentation>",
         E.InvalidParameterValue, "orderReference"),
        ("<filteringCriteria><orderStatus>Failed</orderStatus><lastUpdate>2016-01-01</lastUpdate>"
         "</filteringCriteria><presentation>brief</presentation>", E.InvalidParameterValue, "lastUpdate"),
        ("<filteringCriteria><owner>me</owner></filteringCriteria><presentation>brief</presentation>",
         E.InvalidParameterValue, "owner"),
        ("<filteringCriteria><extension><x/></extension></filteringCriteria><presentation>brief</presentation>",
         E.InvalidParameterValue, "extension"),
        ("<orderId>1</orderId>", E.MissingParameterValue, "presentation"),
        ("<orderId>1</orderId><presentation>summary</presentation>", E.InvalidParameterValue, "presentation"),
        ("<orderId>1</orderId><presentation/>", E.MissingParameterValue, "presentation"),
        ("<presentation>full</presentation>", E.MissingParameterValue, "orderId"),
        ("<orderId> </orderId><presentation>full</presentation>", E.MissingParameterValue, "orderId"),
        ("<orderId>1</orderId><filteringCriteria/><presentation>full</presentation>", E.InvalidParameterValue,
         "filteringCriteria"),
        ("<orderId>1</orderId><orderId>2</orderId><presentation>full</presentation>", E.InvalidParameterValue,
         "orderId"),
        ("<timeStamp>now</timeStamp><orderId>1</orderId><presentation>full</presentation>",
         E.InvalidParameterValue, "timeStamp"),
        ("<orderId>1</orderId><presentation>full</presentation><more/>", E.InvalidParameterValue, "more"),
    ],
)
def test_invalid_requests(inner: str, code: ExceptionCode, locator: str) -> None:
    refused(inner, code, locator)


def test_errors_name_the_value() -> None:
    refused("<filteringCriteria><lastUpdateEnd>last week</lastUpdateEnd></filteringCriteria>"
            "<presentation>brief</presentation>", E.InvalidParameterValue, "lastUpdateEnd", '"last week"')


@pytest.mark.parametrize(
    ("attributes", "code", "locator"),
    [('version="1.0.0"', E.MissingParameterValue, "service"), ('service="OS"', E.MissingParameterValue, "version"),
     ('service="OS" version="0.9.4"', E.InvalidParameterValue, "version")],
)
def test_request_base(attributes: str, code: ExceptionCode, locator: str) -> None:
    error = error_of(parse_get_status, request("<orderId>1</orderId><presentation>brief</presentation>", attributes))
    assert (error.code, error.locator) == (code, locator)


# ------------------------------------------------------------------ rendering

CREATED = datetime(2024, 5, 1, 12, 30, 15, 250000, tzinfo=UTC).timestamp()


def order_of(spec: OrderSpec, order_id: str = "urn:oseod:order:1", status: OrderStatus = OrderStatus.InProduction,
             **kwargs: Any) -> Order:
    items = tuple(
        Item(item, StatusInfo(OrderStatus.Completed if n % 2 else OrderStatus.InProduction,
                              f"item {n}" if n % 2 else None, "mission" if n == 0 else None))
        for n, item in enumerate(spec.items)
    )
    return Order(order_id, "alice", spec, StatusInfo(status, "working on it", None), CREATED, items=items, **kwargs)


def status_document(orders: list[Order], full: bool) -> etree._Element:
    """A GetStatusResponse as the server assembles it: monitors serialised one by one."""
    return etree.fromstring(render_get_status_response(serialise_order_monitor(o, full) for o in orders))


def elements(parent: etree._Element) -> list[etree._Element]:
    return [child for child in parent if isinstance(child.tag, str)]


def shape(element: etree._Element) -> tuple[Any, ...]:
    """What a client sent, regardless of prefixes and indentation."""
    return (element.tag, sorted(element.attrib.items()), (element.text or "").strip(),
            tuple(shape(child) for child in elements(element)))


SERVER_FIELDS = {f"{{{OSEO}}}{name}" for name in ("orderId", "orderStatusInfo", "orderDateTime", "orderItem")}


def assert_echoes(submitted: etree._Element, monitor: etree._Element) -> None:
    """Every element of the orderSpecification comes back, in its place."""
    specification = submitted.find("oseo:orderSpecification", NS)
    assert specification is not None
    sent = [shape(e) for e in elements(specification) if e.tag != f"{{{OSEO}}}orderItem"]
    echoed = [shape(e) for e in elements(monitor) if e.tag not in SERVER_FIELDS]
    assert echoed == sent
    sent_items = specification.findall("oseo:orderItem", NS)
    echoed_items = monitor.findall("oseo:orderItem", NS)
    assert len(sent_items) == len(echoed_items)
    for sent_item, echoed_item in zip(sent_items, echoed_items, strict=True):
        kept = [shape(e) for e in elements(echoed_item) if e.tag != f"{{{OSEO}}}orderItemStatusInfo"]
        assert kept == [shape(e) for e in elements(sent_item)]


SUBMITS = [
    SAMPLES / "Submit.xml",
    SAMPLES / "Submit2.xml",
    EXAMPLES / "pyoseo-samples" / "Submit.xml",
    EXAMPLES / "pyoseo-samples" / "Submit_with_options.xml",
    EXAMPLES / "handwritten" / "soap12-submit-async-wsa-wsse.xml",
    DERIVED / "docs" / "submit_example_1.xml",
    *sorted(SOAPUI.glob("testsuite__*Submit*.xml")),
]


@requires_schemas
@pytest.mark.parametrize("path", SUBMITS, ids=lambda p: p.name)
def test_round_trip_of_sample_submits(path: Path) -> None:
    submitted = payload(path, properties=True)
    try:
        spec = parse_submit(submitted).spec
    except OseoError:
        assert "illegal" in path.name or "Invalid" in path.name  # the deliberately invalid ones
        return
    assert spec is not None
    order = order_of(spec)
    document = status_document([order], full=True)
    assert_valid(document)
    assert_valid(wrap(Encoding.SOAP11, document))
    (monitor,) = document.findall("oseo:orderMonitorSpecification", NS)
    assert_echoes(submitted, monitor)


@requires_schemas
def test_round_trip_of_every_field() -> None:
    submitted = etree.fromstring(FULL.replace("<itemId>item-2</itemId>",
                                              "<itemId>item-2</itemId><orderItemRemark/>").encode())
    spec = parse_submit(submitted).spec
    assert spec is not None
    document = status_document([order_of(spec)], full=True)
    assert_valid(document)
    (monitor,) = document.findall("oseo:orderMonitorSpecification", NS)
    assert_echoes(submitted, monitor)
    # extension, scene selection and invoiceAddress among them:
    assert monitor.xpath("oseo:extension/text()", namespaces=NS) == ["order-ext-1", "order-ext-2"]
    assert monitor.findtext("oseo:invoiceAddress/oseo:lastName", namespaces=NS) == "Payer"
    assert monitor.findtext("oseo:orderItem/oseo:sceneSelection//{urn:dataset}sceneType",
                            namespaces=NS) == "FloatingScene"


@requires_schemas
def test_server_fields() -> None:
    spec = parse_submit(etree.fromstring(FULL.encode())).spec
    assert spec is not None
    document = status_document([order_of(spec)], full=True)
    monitor = document.find("oseo:orderMonitorSpecification", NS)
    assert monitor is not None
    assert [etree.QName(e).localname for e in elements(monitor)][-6:] == [
        "extension", "orderId", "orderStatusInfo", "orderDateTime", "orderItem", "orderItem"]
    assert monitor.findtext("oseo:orderId", namespaces=NS) == "urn:oseod:order:1"
    assert monitor.findtext("oseo:orderDateTime", namespaces=NS) == "2024-05-01T12:30:15.250Z"
    assert monitor.findtext("oseo:orderStatusInfo/oseo:status", namespaces=NS) == "InProduction"
    assert monitor.findtext("oseo:orderStatusInfo/oseo:additionalStatusInfo", namespaces=NS) == "working on it"
    assert [[e.text for e in elements(info)] for info in monitor.iterfind("oseo:orderItem/oseo:orderItemStatusInfo",
                                                                          NS)] == [
        ["InProduction", "mission"], ["Completed", "item 1"]]


@requires_schemas
def test_brief_presentation_has_no_items() -> None:
    spec = parse_submit(etree.fromstring(FULL.encode())).spec
    assert spec is not None
    document = status_document([order_of(spec), order_of(spec, "urn:oseod:order:2")], full=False)
    assert_valid(document)
    assert document.findtext("oseo:status", namespaces=NS) == "success"
    assert document.xpath("oseo:orderMonitorSpecification/oseo:orderId/text()", namespaces=NS) == [
        "urn:oseod:order:1", "urn:oseod:order:2"]
    assert document.find(".//oseo:orderItem", NS) is None


@requires_schemas
def test_no_orders() -> None:
    document = status_document([], full=True)
    assert_valid(document)
    assert [etree.QName(e).localname for e in elements(document)] == ["status"]


@requires_schemas
def test_massive_orders_are_product_orders_on_the_wire() -> None:
    spec = OrderSpec(OrderType.MASSIVE_ORDER, (ItemSpec("i1", product_id="p1"),), reference="Massive order")
    monitor = render_order_monitor_specification(order_of(spec))
    assert monitor.findtext("oseo:orderType", namespaces=NS) == "PRODUCT_ORDER"
    assert monitor.findtext("oseo:orderReference", namespaces=NS) == "Massive order"


@requires_schemas
def test_orders_built_without_client_xml() -> None:
    """Specs the core made itself (no fragments): the values are rendered."""
    spec = OrderSpec(
        OrderType.PRODUCT_ORDER,
        (
            ItemSpec("p", product_id="urn:p:1", collection_id="urn:c:1", product_order_options_id="PRODUCT_ORDER",
                     remark="r", options=(OptionValue("format", "GeoTIFF"), OptionValue("bad name", "x")),
                     delivery=DeliveryChoice(DeliveryMethod.MEDIA_DELIVERY, package_medium="DVD"),
                     payment_method="quota"),
            ItemSpec("q", product_id="urn:p:2",
                     delivery=DeliveryChoice(DeliveryMethod.ONLINE_DATA_DELIVERY, protocol="sftp")),
            # Unrenderable delivery choices are left out rather than made invalid.
            ItemSpec("r", product_id="urn:p:3", delivery=DeliveryChoice(DeliveryMethod.ONLINE_DATA_ACCESS)),
            ItemSpec("s", product_id="urn:p:4", delivery=DeliveryChoice(DeliveryMethod.MEDIA_DELIVERY)),
        ),
        reference="ref", remark="remark", packaging="tgz", priority=Priority.STANDARD,
        options=(OptionValue("format", "NetCDF"),),
        delivery=DeliveryChoice(DeliveryMethod.ONLINE_DATA_ACCESS, protocol="http"),
        online_addresses=(OnlineAddress("ftp", "ftp.example", "u", "p", "/x"), OnlineAddress("sftp", "h")),
    )
    document = status_document([order_of(spec)], full=True)
    assert_valid(document)
    monitor = document.find("oseo:orderMonitorSpecification", NS)
    assert monitor is not None
    assert [etree.QName(e).localname for e in elements(monitor)][:9] == [
        "orderReference", "orderRemark", "deliveryInformation", "packaging", "option", "deliveryOptions", "priority",
        "orderType", "orderId"]
    assert monitor.xpath("oseo:deliveryInformation/oseo:onlineAddress/oseo:serverAddress/text()",
                         namespaces=NS) == ["ftp.example", "h"]
    assert monitor.findtext("oseo:option/oseo:ParameterData/oseo:values/format", namespaces=NS) == "NetCDF"
    assert monitor.findtext("oseo:deliveryOptions/oseo:onlineDataAccess/oseo:protocol", namespaces=NS) == "http"
    first, second, third, fourth = monitor.findall("oseo:orderItem", NS)
    assert [etree.QName(e).localname for e in elements(first)] == [
        "itemId", "productOrderOptionsId", "orderItemRemark", "option", "deliveryOptions", "payment", "productId",
        "orderItemStatusInfo"]
    assert first.xpath("oseo:option//oseo:values/*/text()", namespaces=NS) == ["GeoTIFF"]
    assert first.findtext("oseo:productId/oseo:collectionId", namespaces=NS) == "urn:c:1"
    assert second.findtext("oseo:deliveryOptions/oseo:onlineDataDelivery/oseo:protocol", namespaces=NS) == "sftp"
    assert third.find("oseo:deliveryOptions", NS) is None and fourth.find("oseo:deliveryOptions", NS) is None


@requires_schemas
def test_subscription_and_tasking_items() -> None:
    subscription = OrderSpec(OrderType.SUBSCRIPTION_ORDER, (ItemSpec("s", collection_id="urn:c", subscription=True),))
    tasking = OrderSpec(OrderType.TASKING_ORDER, (ItemSpec("t", tasking_request_id="urn:sps:1"),))
    document = status_document([order_of(subscription), order_of(tasking, "o2")], full=True)
    assert_valid(document)
    assert document.xpath(".//oseo:subscriptionId/oseo:collectionId/text()", namespaces=NS) == ["urn:c"]
    assert document.xpath(".//oseo:taskingRequestId/oseo:ID/text()", namespaces=NS) == ["urn:sps:1"]
    assert document.xpath(".//oseo:orderType/text()", namespaces=NS) == ["SUBSCRIPTION_ORDER", "TASKING_ORDER"]


@requires_schemas
def test_status_texts_are_made_safe() -> None:
    spec = OrderSpec(OrderType.PRODUCT_ORDER, (ItemSpec("i", product_id="p"),))
    order = Order("o", "alice", spec, StatusInfo(OrderStatus.Failed, "bad\x00byte " + "x" * 5000, "m" * 5000), 0.0,
                  items=(Item(spec.items[0], StatusInfo(OrderStatus.Failed, "")),))
    document = status_document([order], full=True)
    assert_valid(document)
    info = document.find(".//oseo:orderStatusInfo", NS)
    assert info is not None
    assert len(info.findtext("oseo:additionalStatusInfo", namespaces=NS) or "") == 4000
    assert "\x00" not in (info.findtext("oseo:additionalStatusInfo", namespaces=NS) or "")
    assert document.findtext(".//oseo:orderDateTime", namespaces=NS) == "1970-01-01T00:00:00.000Z"
    item_info = document.find(".//oseo:orderItemStatusInfo", NS)
    assert item_info is not None and len(item_info) == 1


@requires_schemas
def test_monitor_specification_for_callbacks() -> None:
    spec = parse_submit(etree.fromstring(FULL.encode())).spec
    assert spec is not None
    for local in ("SubmitResponse", "CancelResponse"):
        callback = etree.Element(f"{{{OSEO}}}{local}", nsmap={"oseo": OSEO})
        callback.set("service", "OS")
        callback.set("version", "1.0.0")
        callback.append(render_order_monitor_specification(order_of(spec)))
        assert_valid(callback)
        assert_valid(wrap(Encoding.SOAP12, callback))
    brief = render_order_monitor_specification(order_of(spec), full=False)
    assert brief.find("oseo:orderItem", NS) is None


def test_rendered_fragments_are_independent_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common._FragmentCache, "LIMIT", 2)
    spec = parse_submit(etree.fromstring(FULL.encode())).spec
    assert spec is not None
    order = order_of(spec)
    first = status_document([order], full=True)
    text = etree.tostring(first)
    for extension in first.iter(f"{{{OSEO}}}extension"):
        extension.text = "changed"
    again = status_document([order], full=True)
    assert etree.tostring(again) == text
    huge = Fragment("extension", f'<extension xmlns="{OSEO}">{"x" * 10000}</extension>')
    big = OrderSpec(OrderType.PRODUCT_ORDER, (ItemSpec("i", product_id="p"),), fragments=(huge,))
    rendered = render_order_monitor_specification(order_of(big))
    assert rendered.findtext("oseo:extension", namespaces=NS) == "x" * 10000


def test_naive_and_aware_times_render_in_utc() -> None:
    assert common.format_date_time(datetime(2024, 1, 1, 12, 0)) == "2024-01-01T12:00:00.000Z"
    assert common.format_date_time(datetime(2024, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))) == (
        "2024-01-01T10:00:00.000Z")
