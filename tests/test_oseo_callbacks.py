"""oseod.oseo.callbacks: the SubmitResponse, CancelResponse,
GetQuotationResponse and Notify requests oseod sends to its clients, with
their envelope, WS-Addressing headers and HTTP headers."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import attrs
import pytest
from lxml import etree

from oseod.model.orders import (
    Item,
    Notification,
    Order,
    OrderSpec,
    OrderStatus,
    StatusInfo,
    StatusNotification,
)
from oseod.oseo.addressing import IS_REFERENCE_PARAMETER
from oseod.oseo.callbacks import (
    Callback,
    CallbackKind,
    CallbackTarget,
    cancel_response_callback,
    encoding_of,
    get_quotation_response_callback,
    notify_callback,
    render_callback,
    render_status_notice,
    submit_response_callback,
)
from oseod.oseo.namespaces import OSEO, SOAP11, SOAP12, WSNT
from oseod.oseo.quotation import ItemPrice, Provider, Quotation
from oseod.oseo.security import Addressing, parse_addressing
from oseod.oseo.soap import Encoding, serialise, unwrap
from oseod.oseo.status import render_order_monitor_specification
from oseod.oseo.submit import parse_submit
from oseod.oseo.wsn import OrderEvent, SubscriptionReference, parse_subscribe
from tests.oseo_schema import SCHEMAS_DIR, assert_valid, requires_schemas
from tests.test_oseo_submit import FULL

SAMPLES = SCHEMAS_DIR / "oseo" / "1.0" / "SampleMessages"
WSDL = SCHEMAS_DIR / "oseo" / "1.0" / "oseo.wsdl"
NS = {"oseo": OSEO, "wsnt": WSNT}
CLIENT = "http://client.example/oseo-callbacks"
WHEN = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)


def spec_of(path: Path) -> OrderSpec:
    spec = parse_submit(etree.parse(str(path)).getroot()).spec
    assert spec is not None
    return spec


def make_order(spec: OrderSpec, status: OrderStatus = OrderStatus.Completed, *,
               notification: Notification | None = None) -> Order:
    """An order of ``spec`` whose items all stand at ``status``."""
    items = tuple(Item(item, StatusInfo(status, f"item {item.item_id}")) for item in spec.items)
    return Order("urn:oseod:order:42", "ana", spec, StatusInfo(status, "all done"), WHEN.timestamp(),
                 notification or Notification(StatusNotification.ALL, CLIENT, "urn:uuid:submit-1", "1.2"), items)


def sample_order(status: OrderStatus = OrderStatus.Completed, **kwargs: object) -> Order:
    return make_order(spec_of(SAMPLES / "Submit.xml"), status, **kwargs)  # type: ignore[arg-type]


def full_order() -> Order:
    spec = parse_submit(etree.fromstring(FULL)).spec
    assert spec is not None
    return make_order(spec)


def quotation_of(order: Order) -> Quotation:
    return Quotation("urn:oseod:quotation:7", order.spec, "EUR", Provider("oseod", "Example Org"),
                     [ItemPrice(item.spec.item_id, "2.5") for item in order.items])


def envelope_parts(callback: Callback) -> tuple[Addressing, etree._Element, Encoding]:
    """What a client's SOAP stack sees: the headers it reads and the body."""
    message = unwrap(callback.body, callback.content_type, callback.soap_action)
    assert message.soap_action == callback.kind.action
    return parse_addressing(message.headers), message.payload, message.encoding


# ------------------------------------------------------------------- targets


def test_target_of_an_order() -> None:
    order = sample_order()
    assert CallbackTarget.of_order(order) == CallbackTarget(CLIENT, "urn:uuid:submit-1", Encoding.SOAP12)
    soap11 = attrs.evolve(order, notification=attrs.evolve(order.notification, soap_version="1.1"))
    assert CallbackTarget.of_order(soap11) == CallbackTarget(CLIENT, "urn:uuid:submit-1", Encoding.SOAP11)
    no_id = attrs.evolve(order, notification=attrs.evolve(order.notification, message_id=None))
    assert CallbackTarget.of_order(no_id) == CallbackTarget(CLIENT, None, Encoding.SOAP12)


@pytest.mark.parametrize("notification", [
    Notification(),
    Notification(StatusNotification.NONE, CLIENT, "urn:uuid:1", "1.2"),
    Notification(StatusNotification.FINAL, None, "urn:uuid:1", "1.2"),
    Notification(StatusNotification.ALL, "", None, None),
])
def test_no_target_without_a_notification(notification: Notification) -> None:
    assert CallbackTarget.of_order(sample_order(notification=notification)) is None


def test_target_of_a_request() -> None:
    addressing = Addressing(reply_to=CLIENT, message_id="urn:uuid:cancel")
    assert CallbackTarget.of_request(addressing, Encoding.SOAP11) == CallbackTarget(CLIENT, "urn:uuid:cancel",
                                                                                     Encoding.SOAP11)
    # A client that posted bare XML hears back in OSEO's own SOAP 1.2.
    assert CallbackTarget.of_request(addressing, Encoding.BARE) == CallbackTarget(CLIENT, "urn:uuid:cancel")
    assert CallbackTarget.of_request(Addressing(message_id="urn:uuid:x"), Encoding.SOAP12) is None


@pytest.mark.parametrize(("version", "encoding"), [("1.2", Encoding.SOAP12), ("1.1", Encoding.SOAP11),
                                                   (None, Encoding.SOAP12)])
def test_encoding_of(version: str | None, encoding: Encoding) -> None:
    assert encoding_of(version) is encoding


def test_a_callback_is_never_bare() -> None:
    with pytest.raises(ValueError):
        CallbackTarget(CLIENT, encoding=Encoding.BARE)


# ------------------------------------------------------------------- actions


def test_actions_are_the_wsdl_soap_actions() -> None:
    """The OSEO call-backs carry the soapAction of the official WSDL's
    OSEO_V100_AsyncClientPortBinding; Notify the WS-BaseNotification one."""
    wsdl = etree.parse(str(WSDL)).getroot()
    ns = {"wsdl": "http://schemas.xmlsoap.org/wsdl/", "soap": "http://schemas.xmlsoap.org/wsdl/soap/"}
    binding = wsdl.find("wsdl:binding[@name='OSEO_V100_AsyncClientPortBinding']", ns)
    assert binding is not None
    actions = {operation.get("name"): operation.find("soap:operation", ns).get("soapAction")  # type: ignore[union-attr]
               for operation in binding.findall("wsdl:operation", ns)}
    assert actions == {kind.value: kind.action for kind in CallbackKind if kind is not CallbackKind.NOTIFY}
    assert CallbackKind.NOTIFY.action == "http://docs.oasis-open.org/wsn/bw-2/NotificationConsumer/Notify"
    assert [kind.ack for kind in CallbackKind] == [
        "SubmitResponseAck", "CancelResponseAck", "GetQuotationResponseAck", None]


# ------------------------------------------------------------- the envelope


@requires_schemas
@pytest.mark.parametrize("encoding", [Encoding.SOAP12, Encoding.SOAP11])
def test_submit_response(encoding: Encoding) -> None:
    order = sample_order()
    target = CallbackTarget(CLIENT, "urn:uuid:submit-1", encoding)
    callback = submit_response_callback(order, target, "urn:uuid:cb-1", WHEN)
    assert (callback.kind, callback.address, callback.message_id) == (CallbackKind.SUBMIT_RESPONSE, CLIENT,
                                                                       "urn:uuid:cb-1")
    payload = assert_valid(callback.body)
    assert payload.tag == f"{{{OSEO}}}SubmitResponse"
    root = etree.fromstring(callback.body)
    assert root.tag == f"{{{SOAP12 if encoding is Encoding.SOAP12 else SOAP11}}}Envelope"

    addressing, body, received = envelope_parts(callback)
    assert received is encoding
    assert addressing == Addressing(to=CLIENT, action="SubmitResponse", message_id="urn:uuid:cb-1",
                                    relates_to="urn:uuid:submit-1")
    assert (body.get("service"), body.get("version")) == ("OS", "1.0.0")
    assert body.findtext("oseo:timeStamp", namespaces=NS) == "2024-03-01T10:00:00.000Z"
    monitor = body.find("oseo:orderMonitorSpecification", NS)
    assert monitor is not None
    # Exactly what GetStatus with full presentation shows of the order.
    expected = etree.fromstring(serialise(render_order_monitor_specification(order, full=True)))
    assert (etree.tostring(monitor, method="c14n", exclusive=True)
            == etree.tostring(expected, method="c14n", exclusive=True))
    assert monitor.findtext("oseo:orderId", namespaces=NS) == order.order_id
    assert monitor.xpath("oseo:orderItem/oseo:orderItemStatusInfo/oseo:status/text()", namespaces=NS) == [
        "Completed"]


def test_http_headers() -> None:
    order = sample_order()
    soap12 = submit_response_callback(order, CallbackTarget(CLIENT, None, Encoding.SOAP12), "urn:uuid:1")
    assert soap12.headers == {"Content-Type": 'application/soap+xml; charset=utf-8; action="SubmitResponse"'}
    soap11 = submit_response_callback(order, CallbackTarget(CLIENT, None, Encoding.SOAP11), "urn:uuid:1")
    assert soap11.headers == {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '"SubmitResponse"'}


@requires_schemas
def test_no_relates_to_without_the_clients_message_id() -> None:
    callback = submit_response_callback(sample_order(), CallbackTarget(CLIENT), "urn:uuid:cb-2")
    assert_valid(callback.body)
    addressing, body, _ = envelope_parts(callback)
    assert addressing.relates_to is None and addressing.message_id == "urn:uuid:cb-2"
    assert body.find("oseo:timeStamp", NS) is None


@requires_schemas
def test_submit_response_echoes_every_fragment() -> None:
    order = full_order()
    callback = submit_response_callback(order, CallbackTarget(CLIENT, "urn:uuid:m"), "urn:uuid:cb", WHEN)
    payload = assert_valid(callback.body)
    monitor = payload.find("oseo:orderMonitorSpecification", NS)
    assert monitor is not None
    assert monitor.find("oseo:deliveryInformation/oseo:onlineAddress", NS) is not None
    assert len(monitor.findall("oseo:orderItem", NS)) == len(order.items)


@requires_schemas
@pytest.mark.parametrize("encoding", [Encoding.SOAP12, Encoding.SOAP11])
def test_cancel_response(encoding: Encoding) -> None:
    order = sample_order(OrderStatus.Cancelled)
    target = CallbackTarget.of_request(Addressing(reply_to=CLIENT, message_id="urn:uuid:cancel-9"), encoding)
    assert target is not None
    callback = cancel_response_callback(order, target, "urn:uuid:cb-3", WHEN.timestamp())
    payload = assert_valid(callback.body)
    assert payload.tag == f"{{{OSEO}}}CancelResponse"
    assert payload.findtext("oseo:orderMonitorSpecification/oseo:orderStatusInfo/oseo:status",
                            namespaces=NS) == "Cancelled"
    addressing, _, _ = envelope_parts(callback)
    assert (addressing.action, addressing.relates_to) == ("CancelResponse", "urn:uuid:cancel-9")


@requires_schemas
def test_status_notice_matches_the_official_samples() -> None:
    """Same element paths as SubmitResponse.xml / CancelResponse.xml."""
    def paths(root: etree._Element) -> set[str]:
        """The local-name paths below ``root`` of its OSEO elements."""
        found = set()
        for element in root.iterdescendants():
            if isinstance(element.tag, str) and etree.QName(element).namespace == OSEO:
                names = [str(etree.QName(e).localname) for e in (element, *element.iterancestors()) if e is not root]
                found.add("/".join(reversed(names)))
        return found

    for kind, status in ((CallbackKind.SUBMIT_RESPONSE, OrderStatus.Completed),
                         (CallbackKind.CANCEL_RESPONSE, OrderStatus.Cancelled)):
        notice = etree.fromstring(serialise(render_status_notice(kind, sample_order(status), WHEN)))
        assert_valid(notice)
        sample = etree.parse(str(SAMPLES / f"{kind.value}.xml")).getroot()
        assert paths(sample) - paths(notice) == set()


def test_status_notice_kinds() -> None:
    for kind in (CallbackKind.GET_QUOTATION_RESPONSE, CallbackKind.NOTIFY):
        with pytest.raises(ValueError):
            render_status_notice(kind, sample_order())


def test_a_message_id_is_required() -> None:
    with pytest.raises(ValueError):
        submit_response_callback(sample_order(), CallbackTarget(CLIENT), " ")


def test_the_same_message_id_gives_the_same_bytes() -> None:
    """The outbox may render a call-back again for a retry: same id, same message."""
    order, target = sample_order(), CallbackTarget(CLIENT, "urn:uuid:m")
    assert (submit_response_callback(order, target, "urn:uuid:1", WHEN)
            == submit_response_callback(order, target, "urn:uuid:1", WHEN))


@requires_schemas
@pytest.mark.parametrize("encoding", [Encoding.SOAP12, Encoding.SOAP11])
def test_get_quotation_response(encoding: Encoding) -> None:
    quotation = quotation_of(sample_order())
    target = CallbackTarget(CLIENT, "urn:uuid:quote-1", encoding)
    callback = get_quotation_response_callback(quotation, target, "urn:uuid:cb-4")
    payload = assert_valid(callback.body)
    assert payload.tag == f"{{{OSEO}}}GetQuotationResponse"
    assert payload.findtext("oseo:status", namespaces=NS) == "success"
    assert payload.findtext("oseo:quotation/oseo:quotationId", namespaces=NS) == "urn:oseod:quotation:7"
    addressing, _, _ = envelope_parts(callback)
    assert (addressing.action, addressing.relates_to) == ("GetQuotationResponse", "urn:uuid:quote-1")

    partial = get_quotation_response_callback(quotation, target, "urn:uuid:cb-5", "one item is priced later")
    payload = assert_valid(partial.body)
    assert payload.findtext("oseo:status", namespaces=NS) == "partial"
    assert payload.findtext("oseo:errorMessage", namespaces=NS) == "one item is priced later"


@requires_schemas
@pytest.mark.parametrize("encoding", [Encoding.SOAP12, Encoding.SOAP11])
def test_notify(encoding: Encoding) -> None:
    subscribe = parse_subscribe(etree.fromstring(
        b'<wsnt:Subscribe xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2"'
        b' xmlns:wsa="http://www.w3.org/2005/08/addressing" xmlns:c="urn:client">'
        b"<wsnt:ConsumerReference><wsa:Address>http://client.example/wsn</wsa:Address>"
        b"<wsa:ReferenceParameters><c:listener>7</c:listener></wsa:ReferenceParameters>"
        b"</wsnt:ConsumerReference></wsnt:Subscribe>"))
    event = OrderEvent.of_order(sample_order(OrderStatus.Failed))
    assert event is not None
    target = CallbackTarget.of_consumer(subscribe.consumer, encoding)
    callback = notify_callback(event, target, "urn:uuid:cb-6", dialect=subscribe.dialect,
                               producer="http://oseod.example/oseo",
                               subscription=SubscriptionReference("http://oseod.example/oseo", "s-1"))
    assert callback.address == "http://client.example/wsn"
    payload = assert_valid(callback.body)
    assert payload.tag == f"{{{WSNT}}}Notify"
    assert payload.findtext("wsnt:NotificationMessage/wsnt:Message/oseo:OrderFailure/oseo:orderId",
                            namespaces=NS) == "urn:oseod:order:42"
    message = unwrap(callback.body, callback.content_type, callback.soap_action)
    addressing = parse_addressing(message.headers)
    assert addressing == Addressing(to="http://client.example/wsn", action=callback.kind.action,
                                    message_id="urn:uuid:cb-6")
    # The consumer's reference parameter comes back to it as a header.
    listener = message.headers[-1]
    assert (listener.tag, listener.text, listener.get(IS_REFERENCE_PARAMETER)) == ("{urn:client}listener", "7",
                                                                                     "true")


def test_render_callback_envelopes_the_payload_as_it_is() -> None:
    body = etree.Element(f"{{{OSEO}}}SubmitResponse", nsmap={"oseo": OSEO})
    callback = render_callback(CallbackKind.SUBMIT_RESPONSE, CallbackTarget(CLIENT), "urn:uuid:1", body)
    assert callback.body.endswith(b'<soap:Body><oseo:SubmitResponse xmlns:oseo="http://www.opengis.net/oseo/1.0"/>'
                                  b"</soap:Body></soap:Envelope>")
    assert "body=" not in repr(callback)  # bodies are long: logs of the value leave them out
