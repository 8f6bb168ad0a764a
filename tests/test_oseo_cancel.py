"""oseod.oseo.cancel: Cancel requests and the CancelAck."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from lxml import etree

from oseod.model.orders import StatusNotification
from oseod.oseo.cancel import CancelRequest, parse_cancel, render_cancel_ack
from oseod.oseo.errors import ExceptionCode, OseoError
from oseod.oseo.namespaces import OSEO
from oseod.oseo.soap import Encoding, unwrap, wrap
from tests.oseo_schema import SCHEMAS_DIR, assert_valid, requires_schemas

SAMPLES = SCHEMAS_DIR / "oseo" / "1.0" / "SampleMessages"
SOAPUI = SCHEMAS_DIR.parent / "samples" / "pyoseo" / "derived" / "soapui-requests"
E = ExceptionCode


def request(inner: str, attributes: str = 'service="OS" version="1.0.0"') -> etree._Element:
    return etree.fromstring(f'<Cancel xmlns="{OSEO}" {attributes}>{inner}</Cancel>')


def error_of(call: Callable[..., object], *args: object) -> OseoError:
    with pytest.raises(OseoError) as info:
        call(*args)
    assert info.value.sender
    return info.value


def test_official_sample() -> None:
    element = etree.parse(str(SAMPLES / "Cancel.xml")).getroot()
    assert parse_cancel(element) == CancelRequest("urn:ESA:EECF:order_id_0001", StatusNotification.FINAL)


@pytest.mark.parametrize("mode", list(StatusNotification))
def test_notification_modes(mode: StatusNotification) -> None:
    parsed = parse_cancel(request(f"<timeStamp>2024-01-01T00:00:00Z</timeStamp><orderId>o-1</orderId>"
                                  f"<statusNotification> {mode.value} </statusNotification>"))
    assert parsed == CancelRequest("o-1", mode)


def test_soapui_template() -> None:
    element = unwrap((SOAPUI / "interface__OSEO_V100_ServicePortBinding__Cancel__Request_1.xml").read_bytes(),
                     None).payload
    error = error_of(parse_cancel, element)
    assert (error.code, error.locator) == (E.InvalidParameterValue, "version")
    fixed = etree.fromstring(etree.tostring(element).replace(b'version="?"', b'version="1.0.0"'))
    error = error_of(parse_cancel, fixed)
    assert (error.code, error.locator) == (E.InvalidParameterValue, "timeStamp")
    fixed = etree.fromstring(etree.tostring(fixed).replace(b"<ns:timeStamp>?</ns:timeStamp>", b""))
    error = error_of(parse_cancel, fixed)
    assert (error.code, error.locator) == (E.InvalidParameterValue, "statusNotification")
    assert '"?"' in error.text


@pytest.mark.parametrize(
    ("inner", "attributes", "code", "locator"),
    [
        ("<orderId>1</orderId><statusNotification>None</statusNotification>", 'version="1.0.0"',
         E.MissingParameterValue, "service"),
        ("<orderId>1</orderId><statusNotification>None</statusNotification>", 'service="OSEO" version="1.0.0"',
         E.InvalidParameterValue, "service"),
        ("<orderId>1</orderId><statusNotification>None</statusNotification>", 'service="OS"',
         E.MissingParameterValue, "version"),
        ("<orderId>1</orderId><statusNotification>None</statusNotification>", 'service="OS" version="1.0.0.0"',
         E.InvalidParameterValue, "version"),
        ("<statusNotification>None</statusNotification>", 'service="OS" version="1.0.0"', E.MissingParameterValue,
         "orderId"),
        ("<orderId></orderId><statusNotification>None</statusNotification>", 'service="OS" version="1.0.0"',
         E.MissingParameterValue, "orderId"),
        ("<orderId>1</orderId>", 'service="OS" version="1.0.0"', E.MissingParameterValue, "statusNotification"),
        ("<orderId>1</orderId><statusNotification>Some</statusNotification>", 'service="OS" version="1.0.0"',
         E.InvalidParameterValue, "statusNotification"),
        ("<orderId>1</orderId><statusNotification>None</statusNotification><reason>x</reason>",
         'service="OS" version="1.0.0"', E.InvalidParameterValue, "reason"),
        ("<orderId>1</orderId><orderId>2</orderId><statusNotification>None</statusNotification>",
         'service="OS" version="1.0.0"', E.InvalidParameterValue, "orderId"),
        ("<orderId><id>1</id></orderId><statusNotification>None</statusNotification>",
         'service="OS" version="1.0.0"', E.InvalidParameterValue, "orderId"),
    ],
)
def test_invalid_requests(inner: str, attributes: str, code: ExceptionCode, locator: str) -> None:
    error = error_of(parse_cancel, request(inner, attributes))
    assert (error.code, error.locator) == (code, locator), error


def test_wrong_operation() -> None:
    element = etree.fromstring(f'<Submit xmlns="{OSEO}" service="OS" version="1.0.0"/>')
    assert error_of(parse_cancel, element).code is E.OperationNotSupported


@requires_schemas
def test_cancel_ack() -> None:
    ack = render_cancel_ack()
    assert_valid(ack)
    assert_valid(wrap(Encoding.SOAP12, ack))
    assert_valid(wrap(Encoding.BARE, ack))
    assert [(etree.QName(c).localname, c.text) for c in ack] == [("status", "success")]
    assert ack.get("service") is None and ack.get("version") is None
