"""oseod.oseo.options: GetOptions requests and the GetOptionsResponse."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from lxml import etree

from oseod.oseo.errors import ExceptionCode, OseoError
from oseod.oseo.namespaces import OSEO, SWE
from oseod.oseo.options import (
    GetOptionsRequest,
    OptionDescription,
    OrderOptionSet,
    parse_get_options,
    render_get_options_response,
)
from oseod.oseo.soap import Encoding, unwrap, wrap
from tests.oseo_schema import SCHEMAS_DIR, assert_valid, requires_schemas

SAMPLES = SCHEMAS_DIR / "oseo" / "1.0" / "SampleMessages"
EXAMPLES = SCHEMAS_DIR / "examples"
SOAPUI = SCHEMAS_DIR.parent / "samples" / "pyoseo" / "derived" / "soapui-requests"
NS = {"oseo": OSEO, "swe": SWE}


def request(inner: str, attributes: str = 'service="OS" version="1.0.0"') -> etree._Element:
    return etree.fromstring(f'<GetOptions xmlns="{OSEO}" {attributes}>{inner}</GetOptions>')


def error_of(call: Callable[..., object], *args: object) -> OseoError:
    with pytest.raises(OseoError) as info:
        call(*args)
    assert info.value.sender
    return info.value


def check_error(inner: str, code: ExceptionCode, locator: str, attributes: str = 'service="OS" version="1.0.0"',
                phrase: str = "") -> OseoError:
    error = error_of(parse_get_options, request(inner, attributes))
    assert (error.code, error.locator) == (code, locator), error
    assert phrase in error.text
    return error


# -------------------------------------------------------------------- parsing


def test_official_samples() -> None:
    sample = parse_get_options(etree.parse(str(SAMPLES / "GetOptions.xml")).getroot())
    assert sample == GetOptionsRequest("http://www.opengis.net/def/EOP/ESA/0/ESA.EECF.ENVISAT_ASA_IMx_xS", (), None)
    path = SAMPLES / "GetOptions_subscription_with_restriction.xml"
    subscription = parse_get_options(etree.parse(str(path)).getroot())
    assert subscription.collection_id == "http://www.opengis.net/def/EOP/ESA/0/TEST.DLR.TSX.SUBSCRIPTION"


def test_pyoseo_sample() -> None:
    sample = parse_get_options(etree.parse(str(EXAMPLES / "pyoseo-samples" / "GetOptions.xml")).getroot())
    assert sample.collection_id == "364a3048-d012-11e1-9678-0019995d2a56"


def test_soapui_template_is_refused() -> None:
    # SoapUI's generated request: version "?" and every branch of the choice.
    message = unwrap((SOAPUI / "interface__OSEO_V100_ServicePortBinding__GetOptions__Request_1.xml").read_bytes(), None)
    error = error_of(parse_get_options, message.payload)
    assert (error.code, error.locator) == (ExceptionCode.InvalidParameterValue, "version")
    fixed = etree.fromstring(etree.tostring(message.payload).replace(b'version="?"', b'version="1.0.0"'))
    error = error_of(parse_get_options, fixed)
    assert (error.code, error.locator) == (ExceptionCode.InvalidParameterValue, "timeStamp")


def test_identifiers_and_tasking_request() -> None:
    parsed = parse_get_options(request(
        "<timeStamp>2024-01-01T00:00:00Z</timeStamp><identifier> urn:p:1 </identifier><identifier>urn:p:2</identifier>"
    ))
    assert parsed == GetOptionsRequest(None, ("urn:p:1", "urn:p:2"), None)
    parsed = parse_get_options(request("<taskingRequestId><ID>urn:sps:task:7</ID></taskingRequestId>"))
    assert parsed == GetOptionsRequest(None, (), "urn:sps:task:7")


def test_collection_id_at_the_limit() -> None:
    assert parse_get_options(request(f"<collectionId>{'c' * 255}</collectionId>")).collection_id == "c" * 255


@pytest.mark.parametrize(
    ("inner", "attributes", "code", "locator"),
    [
        ("<collectionId>c</collectionId>", 'version="1.0.0"', ExceptionCode.MissingParameterValue, "service"),
        ("<collectionId>c</collectionId>", 'service="WMS" version="1.0.0"', ExceptionCode.InvalidParameterValue,
         "service"),
        ("<collectionId>c</collectionId>", 'service="OS"', ExceptionCode.MissingParameterValue, "version"),
        ("<collectionId>c</collectionId>", 'service="OS" version="2.0.0"', ExceptionCode.InvalidParameterValue,
         "version"),
        ("", 'service="OS" version="1.0.0"', ExceptionCode.MissingParameterValue, "collectionId"),
        ("<timeStamp>2024-01-01T00:00:00Z</timeStamp>", 'service="OS" version="1.0.0"',
         ExceptionCode.MissingParameterValue, "collectionId"),
        ("<timeStamp>yesterday</timeStamp><collectionId>c</collectionId>", 'service="OS" version="1.0.0"',
         ExceptionCode.InvalidParameterValue, "timeStamp"),
        ("<collectionId/>", 'service="OS" version="1.0.0"', ExceptionCode.MissingParameterValue, "collectionId"),
        (f"<collectionId>{'c' * 256}</collectionId>", 'service="OS" version="1.0.0"',
         ExceptionCode.InvalidParameterValue, "collectionId"),
        ("<collectionId>a</collectionId><collectionId>b</collectionId>", 'service="OS" version="1.0.0"',
         ExceptionCode.InvalidParameterValue, "collectionId"),
        ("<collectionId>a</collectionId><identifier>b</identifier>", 'service="OS" version="1.0.0"',
         ExceptionCode.InvalidParameterValue, "identifier"),
        ("<identifier></identifier>", 'service="OS" version="1.0.0"', ExceptionCode.MissingParameterValue,
         "identifier"),
        ("<taskingRequestId/>", 'service="OS" version="1.0.0"', ExceptionCode.MissingParameterValue, "ID"),
        ("<taskingRequestId><ID>a</ID><ID>b</ID></taskingRequestId>", 'service="OS" version="1.0.0"',
         ExceptionCode.InvalidParameterValue, "ID"),
        ("<collection>c</collection>", 'service="OS" version="1.0.0"', ExceptionCode.InvalidParameterValue,
         "collection"),
        ("<collectionId><x>c</x></collectionId>", 'service="OS" version="1.0.0"',
         ExceptionCode.InvalidParameterValue, "collectionId"),
    ],
)
def test_invalid_requests(inner: str, attributes: str, code: ExceptionCode, locator: str) -> None:
    check_error(inner, code, locator, attributes)


def test_error_names_the_offending_value() -> None:
    check_error(f"<collectionId>{'x' * 300}</collectionId>", ExceptionCode.InvalidParameterValue, "collectionId",
                phrase="300 characters")
    check_error("<collectionId>c</collectionId>", ExceptionCode.InvalidParameterValue, "version",
                'service="OS" version="0.9.4"', phrase='"0.9.4"')
    check_error("<foo:bar xmlns:foo='urn:foo'/>", ExceptionCode.InvalidParameterValue, "bar", phrase="urn:foo")


def test_wrong_operation() -> None:
    element = etree.fromstring(f'<GetStatus xmlns="{OSEO}" service="OS" version="1.0.0"/>')
    error = error_of(parse_get_options, element)
    assert error.code is ExceptionCode.OperationNotSupported


# ------------------------------------------------------------------ rendering

FORMAT = OptionDescription("format", ("GeoTIFF", "NetCDF"), "Output file format", "GeoTIFF", "Processing Option")
DEMO = OrderOptionSet(
    product_order_options_id="PRODUCT_ORDER",
    order_type="PRODUCT_ORDER",
    description="PRODUCT_ORDER options for the demo collection",
    options=(FORMAT, OptionDescription("roi", ())),
    online_access_protocols=("ftp", "http"),
    online_delivery_protocols=("sftp",),
    media=("DVD", "LTO4"),
    identifier="urn:p:1",
    payment_methods=("quota", "invoice"),
    scene_selection=(
        OptionDescription("sceneType", ("FloatingScene",), grouping="Floating scene (time)"),
        OptionDescription("sceneStartStopTime", (), "start and stop times", grouping="Floating scene (time)"),
        OptionDescription("frame", ()),
    ),
)
SUBSCRIPTION = OrderOptionSet("SUBSCRIPTION_ORDER", "SUBSCRIPTION_ORDER", "", (), ("http",), (), ())


def names(element: etree._Element) -> list[str]:
    return [str(etree.QName(child).localname) for child in element if isinstance(child.tag, str)]


@requires_schemas
def test_render_is_valid_and_complete() -> None:
    document = render_get_options_response([DEMO, SUBSCRIPTION])
    assert_valid(document)
    assert_valid(wrap(Encoding.SOAP12, document))
    assert_valid(wrap(Encoding.SOAP11, document))
    assert names(document) == ["status", "orderOptions", "orderOptions"]
    assert document.findtext("oseo:status", namespaces=NS) == "success"
    demo, subscription = document.findall("oseo:orderOptions", NS)
    assert names(demo) == [
        "productOrderOptionsId", "identifier", "description", "orderType", "option", "option",
        "productDeliveryOptions", "productDeliveryOptions", "productDeliveryOptions",
        "paymentOptions", "paymentOptions", "sceneSelectionOption", "sceneSelectionOption",
    ]  # fmt: skip
    assert demo.findtext("oseo:productOrderOptionsId", namespaces=NS) == "PRODUCT_ORDER"
    assert demo.findtext("oseo:identifier", namespaces=NS) == "urn:p:1"
    option = demo.find("oseo:option", NS)
    assert option is not None
    field = option.find("swe:DataRecord/swe:field", NS)
    assert field is not None and field.get("name") == "format"
    assert field.xpath("swe:Category/swe:constraint/swe:AllowedTokens/swe:value/text()", namespaces=NS) == [
        "GeoTIFF", "NetCDF"]
    assert field.findtext("swe:Category/swe:description", namespaces=NS) == "Output file format"
    assert field.findtext("swe:Category/swe:value", namespaces=NS) == "GeoTIFF"
    assert option.findtext("oseo:grouping", namespaces=NS) == "Processing Option"
    free = demo.findall("oseo:option", NS)[1]
    assert free.find(".//swe:constraint", NS) is None and free.find("oseo:grouping", NS) is None
    delivery = demo.findall("oseo:productDeliveryOptions", NS)
    assert [names(d) for d in delivery] == [["onlineDataAccess"], ["onlineDataDelivery"], ["mediaDelivery"]]
    assert delivery[0].xpath(".//oseo:protocol/text()", namespaces=NS) == ["ftp", "http"]
    assert delivery[2].xpath(".//oseo:packageMedium/text()", namespaces=NS) == ["DVD", "LTO4"]
    assert demo.xpath("oseo:paymentOptions/oseo:paymentMethod/text()", namespaces=NS) == ["quota", "invoice"]
    scenes = demo.findall("oseo:sceneSelectionOption", NS)
    assert scenes[0].findtext("oseo:name", namespaces=NS) == "Floating scene (time)"
    assert scenes[0].xpath("oseo:sceneSelectionParameter/swe:DataRecord/swe:field/@name", namespaces=NS) == [
        "sceneType", "sceneStartStopTime"]
    assert scenes[1].find("oseo:name", NS) is None
    assert names(subscription) == ["productOrderOptionsId", "orderType", "productDeliveryOptions"]


@requires_schemas
def test_render_nothing_and_long_texts() -> None:
    assert_valid(render_get_options_response([]))
    long = OrderOptionSet(
        "x" * 40, "TASKING_ORDER", "d" * 400,
        (OptionDescription("o", ("a\x00b",), "desc", grouping="g" * 50),), (), (), ("CD-ROM",),
        scene_selection=(OptionDescription("s", (), grouping="n" * 70),),
    )  # fmt: skip
    document = render_get_options_response([long])
    assert_valid(document)
    assert len(document.findtext(".//oseo:description", namespaces=NS) or "") == 255
    assert len(document.findtext(".//oseo:grouping", namespaces=NS) or "") == 40


@pytest.mark.parametrize(
    "build",
    [
        lambda: OrderOptionSet("", "PRODUCT_ORDER", "", (), ("ftp",), (), ()),
        lambda: OrderOptionSet("x" * 41, "PRODUCT_ORDER", "", (), ("ftp",), (), ()),
        lambda: OrderOptionSet("p", "MASSIVE_ORDER", "", (), ("ftp",), (), ()),
        lambda: OrderOptionSet("p", "PRODUCT_ORDER", "", (), ("gopher",), (), ()),
        lambda: OrderOptionSet("p", "PRODUCT_ORDER", "", (), (), ("ftp", "scp"), ()),
        lambda: OrderOptionSet("p", "PRODUCT_ORDER", "", (), (), (), ("floppy",)),
        lambda: OrderOptionSet("p", "PRODUCT_ORDER", "", (), (), (), ()),
        lambda: OrderOptionSet("p", "PRODUCT_ORDER", "", (), ("ftp",), (), (), payment_methods=("",)),
        lambda: OptionDescription("file format", ()),
        lambda: OptionDescription("1st", ()),
        lambda: OptionDescription("a:b", ()),
    ],
)
def test_values_that_cannot_be_rendered_validly_are_refused(build: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        build()
