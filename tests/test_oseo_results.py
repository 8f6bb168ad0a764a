"""oseod.oseo.results: DescribeResultAccess requests and responses."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from lxml import etree

from oseod.oseo.errors import ExceptionCode, OseoError
from oseod.oseo.namespaces import OSEO
from oseod.oseo.results import (
    DescribeResultAccessRequest,
    ItemURL,
    parse_describe_result_access,
    render_describe_result_access_response,
)
from oseod.oseo.soap import Encoding, unwrap, wrap
from tests.oseo_schema import SCHEMAS_DIR, assert_valid, requires_schemas

SAMPLES = SCHEMAS_DIR / "oseo" / "1.0" / "SampleMessages"
SOAPUI = SCHEMAS_DIR.parent / "samples" / "pyoseo" / "derived" / "soapui-requests"
NS = {"oseo": OSEO}
E = ExceptionCode


def request(inner: str, attributes: str = 'service="OS" version="1.0.0"') -> etree._Element:
    return etree.fromstring(f'<DescribeResultAccess xmlns="{OSEO}" {attributes}>{inner}</DescribeResultAccess>')


def error_of(call: Callable[..., object], *args: object) -> OseoError:
    with pytest.raises(OseoError) as info:
        call(*args)
    assert info.value.sender
    return info.value


def test_official_sample() -> None:
    element = etree.parse(str(SAMPLES / "DescribeResultAccess.xml")).getroot()
    assert parse_describe_result_access(element) == DescribeResultAccessRequest("urn:ESA:EECF:order_id_0001", False)


def test_next_ready_and_time_stamp() -> None:
    parsed = parse_describe_result_access(request(
        "<timeStamp>2024-01-01T00:00:00.5+01:00</timeStamp><orderId> 42 </orderId><subFunction> nextReady</subFunction>"
    ))
    assert parsed == DescribeResultAccessRequest("42", True, datetime(2023, 12, 31, 23, 0, 0, 500000, timezone.utc))
    untimed = parse_describe_result_access(request("<orderId>42</orderId><subFunction>allReady</subFunction>"))
    assert untimed == DescribeResultAccessRequest("42", False) and untimed.since is None


@pytest.mark.parametrize("name", sorted(p.name for p in SOAPUI.glob("*DescribeResultAccess*.xml")))
def test_soapui_requests(name: str) -> None:
    element = unwrap((SOAPUI / name).read_bytes(), None).payload
    if name.startswith("interface"):  # the generated template: version="?"
        error = error_of(parse_describe_result_access, element)
        assert (error.code, error.locator) == (E.InvalidParameterValue, "version")
    elif name.startswith("testsuite__product_order"):  # ${#TestSuite#describeResultAccessSubFunction}
        error = error_of(parse_describe_result_access, element)
        assert (error.code, error.locator) == (E.InvalidParameterValue, "subFunction")
    else:
        assert parse_describe_result_access(element).next_ready is ("nextReady" in name)


@pytest.mark.parametrize(
    ("inner", "attributes", "code", "locator"),
    [
        ("<orderId>1</orderId><subFunction>allReady</subFunction>", 'service="OS"', E.MissingParameterValue,
         "version"),
        ("<orderId>1</orderId><subFunction>allReady</subFunction>", 'version="1.0.0"', E.MissingParameterValue,
         "service"),
        ("<orderId>1</orderId><subFunction>allReady</subFunction>", 'service="OS" version="1.1.0"',
         E.InvalidParameterValue, "version"),
        ("<subFunction>allReady</subFunction>", 'service="OS" version="1.0.0"', E.MissingParameterValue, "orderId"),
        ("<orderId/><subFunction>allReady</subFunction>", 'service="OS" version="1.0.0"', E.MissingParameterValue,
         "orderId"),
        ("<orderId>1</orderId>", 'service="OS" version="1.0.0"', E.MissingParameterValue, "subFunction"),
        ("<orderId>1</orderId><subFunction>someReady</subFunction>", 'service="OS" version="1.0.0"',
         E.InvalidParameterValue, "subFunction"),
        ("<orderId>1</orderId><subFunction>allReady</subFunction><subFunction>allReady</subFunction>",
         'service="OS" version="1.0.0"', E.InvalidParameterValue, "subFunction"),
        # Out of order: orderId is missing where the sequence wants it.
        ("<subFunction>allReady</subFunction><orderId>1</orderId>", 'service="OS" version="1.0.0"',
         E.MissingParameterValue, "orderId"),
        ("<timeStamp>2024</timeStamp><orderId>1</orderId><subFunction>allReady</subFunction>",
         'service="OS" version="1.0.0"', E.InvalidParameterValue, "timeStamp"),
        ("<orderId>1</orderId><itemId>2</itemId><subFunction>allReady</subFunction>", 'service="OS" version="1.0.0"',
         E.InvalidParameterValue, "itemId"),
    ],
)
def test_invalid_requests(inner: str, attributes: str, code: ExceptionCode, locator: str) -> None:
    error = error_of(parse_describe_result_access, request(inner, attributes))
    assert (error.code, error.locator) == (code, locator), error


def test_wrong_operation() -> None:
    element = etree.fromstring(f'<GetStatus xmlns="{OSEO}" service="OS" version="1.0.0"/>')
    assert error_of(parse_describe_result_access, element).code is E.OperationNotSupported


@requires_schemas
def test_response() -> None:
    urls = [
        ItemURL("item-1", "ftp://127.0.0.1:2121/orders/1/item-1.tif"),
        ItemURL("item-2", "http://127.0.0.1:8080/results/1/item-2?x=1&y=2", product_id="urn:p:2",
                expiration=datetime(2024, 5, 11, 12, 0, tzinfo=UTC)),
        ItemURL("item-3", "http://h/3", expiration=datetime(2024, 5, 11, 14, 0, tzinfo=timezone(timedelta(hours=2)))),
    ]
    document = render_describe_result_access_response(urls)
    assert_valid(document)
    assert_valid(wrap(Encoding.SOAP12, document))
    assert_valid(wrap(Encoding.SOAP11, document))
    assert document.findtext("oseo:status", namespaces=NS) == "success"
    entries = document.findall("oseo:URLs", NS)
    assert [[etree.QName(c).localname for c in entry] for entry in entries] == [
        ["itemId", "itemAddress"], ["itemId", "productId", "itemAddress", "expirationDate"],
        ["itemId", "itemAddress", "expirationDate"]]
    assert entries[1].findtext("oseo:itemAddress/oseo:ResourceAddress/oseo:URL", namespaces=NS) == (
        "http://127.0.0.1:8080/results/1/item-2?x=1&y=2")
    assert entries[1].findtext("oseo:productId/oseo:identifier", namespaces=NS) == "urn:p:2"
    assert entries[1].findtext("oseo:expirationDate", namespaces=NS) == "2024-05-11T12:00:00.000Z"
    assert entries[2].findtext("oseo:expirationDate", namespaces=NS) == "2024-05-11T12:00:00.000Z"


@requires_schemas
def test_empty_response() -> None:
    document = render_describe_result_access_response([])
    assert_valid(document)
    assert len(document) == 1
