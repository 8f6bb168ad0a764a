"""oseod.oseo.wsn: WS-Notification subscriptions to order events, the Notify
messages and the Notifications section of Capabilities."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import attrs
import pytest
from lxml import etree

from oseod.model.orders import Fragment, OrderStatus, StatusInfo
from oseod.oseo.addressing import IS_REFERENCE_PARAMETER
from oseod.oseo.capabilities import render_capabilities
from oseod.oseo.errors import ExceptionCode, OseoError
from oseod.oseo.namespaces import OSEO, OSEOD, SWES, WSA, WSNT, WSTOP
from oseod.oseo.soap import Encoding, unwrap, wrap
from oseod.oseo.wsn import (
    ALL_TOPICS,
    CONCRETE_DIALECT,
    DIALECTS,
    EVENT_CODE_SPACE,
    SIMPLE_DIALECT,
    Duration,
    EndpointReference,
    EventCode,
    OrderEvent,
    SubscribeRequest,
    SubscriptionReference,
    Topic,
    UnsubscribeRequest,
    parse_duration,
    parse_subscribe,
    parse_unsubscribe,
    render_notifications,
    render_notify,
    render_subscribe_response,
    render_unsubscribe_response,
)
from tests.oseo_schema import SCHEMAS_DIR, assert_valid, requires_schemas
from tests.test_oseo_callbacks import sample_order
from tests.test_oseo_capabilities import CAPS

SAMPLES = SCHEMAS_DIR / "oseo" / "1.0" / "SampleMessages"
NS = {"wsnt": WSNT, "wsa": WSA, "oseo": OSEO, "swes": SWES, "wstop": WSTOP, "oseod": OSEOD}
E = ExceptionCode
CONSUMER = "http://client.example/consumer"
NOW = datetime(2024, 1, 31, 12, 0, tzinfo=UTC)
REFERENCE = SubscriptionReference("http://oseod.example/oseo/subscriptions/s-1", "s-1")


def subscribe(inner: str = "", consumer: str = f"<wsa:Address>{CONSUMER}</wsa:Address>") -> etree._Element:
    return etree.fromstring(
        f'<wsnt:Subscribe xmlns:wsnt="{WSNT}" xmlns:wsa="{WSA}" xmlns:os="{OSEO}">'
        f"<wsnt:ConsumerReference>{consumer}</wsnt:ConsumerReference>{inner}</wsnt:Subscribe>"
    )


def topic_filter(text: str, dialect: str = SIMPLE_DIALECT, declarations: str = "") -> str:
    return (f'<wsnt:Filter><wsnt:TopicExpression Dialect="{dialect}"{declarations}>{text}'
            f"</wsnt:TopicExpression></wsnt:Filter>")


def error_of(call: Callable[..., object], *args: object) -> OseoError:
    with pytest.raises(OseoError) as info:
        call(*args)
    assert info.value.sender
    return info.value


def refused(inner: str, code: ExceptionCode, locator: str, phrase: str = "", **kwargs: str) -> None:
    error = error_of(parse_subscribe, subscribe(inner, **kwargs))
    assert (error.code, error.locator) == (code, locator), error
    assert phrase in error.text, error.text


# ------------------------------------------------------------------- Subscribe


@requires_schemas
def test_official_sample() -> None:
    element = etree.parse(str(SAMPLES / "Subscribe.xml")).getroot()
    assert_valid(element)
    assert parse_subscribe(element) == SubscribeRequest(
        EndpointReference("http://www.opengis.net/oseo/1.0/OrderingConsumer"),
        frozenset({Topic.ORDER_FAILURE}),
        "http://docs.oasis-open.org/wsn/2004/06/TopicExpression/Simple",
    )


def test_in_a_soap_envelope() -> None:
    body = wrap(Encoding.SOAP11, (SAMPLES / "Subscribe.xml").read_bytes())
    assert parse_subscribe(unwrap(body, "text/xml").payload).topics == {Topic.ORDER_FAILURE}


def test_without_a_filter_every_topic() -> None:
    assert parse_subscribe(subscribe()) == SubscribeRequest(EndpointReference(CONSUMER), ALL_TOPICS, SIMPLE_DIALECT)
    assert parse_subscribe(subscribe("<wsnt:Filter/>")).topics == ALL_TOPICS


@pytest.mark.parametrize("dialect", DIALECTS)
def test_dialects(dialect: str) -> None:
    parsed = parse_subscribe(subscribe(topic_filter(" os:OrderCompletion ", dialect)))
    assert (parsed.topics, parsed.dialect) == ({Topic.ORDER_COMPLETION}, dialect)


@pytest.mark.parametrize(("text", "declarations"), [
    ("OrderFailure", ""),  # unqualified: this producer has no other topics
    ("OrderFailure", f' xmlns="{OSEO}"'),
    ("t:OrderFailure", f' xmlns:t="{OSEO}"'),
])
def test_topic_names(text: str, declarations: str) -> None:
    assert parse_subscribe(subscribe(topic_filter(text, declarations=declarations))).topics == {Topic.ORDER_FAILURE}


def test_the_same_topic_twice() -> None:
    expression = f'<wsnt:TopicExpression Dialect="{SIMPLE_DIALECT}">os:OrderFailure</wsnt:TopicExpression>'
    assert parse_subscribe(subscribe(f"<wsnt:Filter>{expression * 2}</wsnt:Filter>")).topics == {Topic.ORDER_FAILURE}


@pytest.mark.parametrize(("inner", "locator", "phrase"), [
    (topic_filter("os:OrderFailure", "http://docs.oasis-open.org/wsn/t-1/TopicExpression/Full"), "TopicExpression",
     "Dialect"),
    (topic_filter("os:OrderFailure", ""), "TopicExpression", "Dialect"),
    (topic_filter("os:OrderDelivered"), "TopicExpression", "OrderCompletion, OrderFailure"),
    (topic_filter("x:OrderFailure", declarations=' xmlns:x="urn:other"'), "TopicExpression", OSEO),
    (topic_filter("nope:OrderFailure"), "TopicExpression", "not declared"),
    (topic_filter("os:OrderFailure|os:OrderCompletion"), "TopicExpression", "name one topic"),
    (topic_filter("os:*"), "TopicExpression", "name one topic"),
    (topic_filter(""), "TopicExpression", "name one topic"),
    (topic_filter("<os:OrderFailure/>"), "TopicExpression", "text only"),
    (f'<wsnt:Filter><wsnt:MessageContent Dialect="{SIMPLE_DIALECT}">x</wsnt:MessageContent></wsnt:Filter>',
     "Filter", "MessageContent"),
    (f'<wsnt:Filter><wsnt:TopicExpression Dialect="{SIMPLE_DIALECT}">os:OrderFailure</wsnt:TopicExpression>'
     f'<wsnt:TopicExpression Dialect="{SIMPLE_DIALECT}">os:OrderCompletion</wsnt:TopicExpression></wsnt:Filter>',
     "Filter", "exclude each other"),
    ("<wsnt:Filter>os:OrderFailure</wsnt:Filter>", "Filter", "elements only"),
])
def test_unsupported_filters(inner: str, locator: str, phrase: str) -> None:
    refused(inner, E.InvalidParameterValue, locator, phrase)


@pytest.mark.parametrize(("consumer", "code", "phrase"), [
    ("", E.MissingParameterValue, "no wsa:Address"),
    ("<wsa:Address> </wsa:Address>", E.MissingParameterValue, "empty"),
    ("<wsa:ReferenceParameters/><wsa:Address>http://x</wsa:Address>", E.MissingParameterValue, "no wsa:Address"),
    ("<wsa:Address>http://www.w3.org/2005/08/addressing/anonymous</wsa:Address>", E.InvalidParameterValue,
     "anonymous"),
    ("<wsa:Address>http://www.w3.org/2005/08/addressing/none</wsa:Address>", E.InvalidParameterValue, "none"),
    ("<wsa:Address><b>http://x</b></wsa:Address>", E.InvalidParameterValue, "text only"),
])
def test_bad_consumer_references(consumer: str, code: ExceptionCode, phrase: str) -> None:
    error = error_of(parse_subscribe, subscribe(consumer=consumer))
    assert error.code is code and error.locator in ("ConsumerReference", "Address"), error
    assert phrase in error.text


def test_reference_parameters_are_kept() -> None:
    parsed = parse_subscribe(subscribe(consumer=(
        f'<wsa:Address>{CONSUMER}</wsa:Address><wsa:ReferenceParameters xmlns:c="urn:client">'
        '<c:listener>7</c:listener><c:key type="c:k">abc</c:key></wsa:ReferenceParameters>'
        "<wsa:Metadata/>")))
    assert parsed.consumer.address == CONSUMER
    assert parsed.consumer.reference_parameters == (
        Fragment("listener", '<c:listener xmlns:c="urn:client">7</c:listener>'),
        Fragment("key", '<c:key xmlns:c="urn:client" type="c:k">abc</c:key>'),
    )


@pytest.mark.parametrize(("inner", "code", "locator"), [
    ("<wsnt:Filter/><wsnt:Filter/>", E.InvalidParameterValue, "Filter"),
    ("<wsnt:InitialTerminationTime>P1D</wsnt:InitialTerminationTime><wsnt:Filter/>", E.InvalidParameterValue,
     "Filter"),
    ("<wsnt:Renew/>", E.InvalidParameterValue, "Renew"),
    ('<x:extension xmlns:x="urn:x"/><wsnt:Filter/>', E.InvalidParameterValue, "Filter"),
    ("text", E.InvalidParameterValue, "Subscribe"),
])
def test_out_of_place(inner: str, code: ExceptionCode, locator: str) -> None:
    refused(inner, code, locator)


def test_missing_consumer_and_wrong_root() -> None:
    element = etree.fromstring(f'<wsnt:Subscribe xmlns:wsnt="{WSNT}"><wsnt:Filter/></wsnt:Subscribe>')
    error = error_of(parse_subscribe, element)
    assert (error.code, error.locator) == (E.MissingParameterValue, "ConsumerReference")
    error = error_of(parse_subscribe, etree.fromstring(f'<Subscribe xmlns="{OSEO}"/>'))
    assert error.code is E.OperationNotSupported
    assert error_of(parse_unsubscribe, subscribe()).code is E.OperationNotSupported


def test_extensions_after_the_sequence_are_ignored() -> None:
    parsed = parse_subscribe(subscribe('<wsnt:Filter/><x:hint xmlns:x="urn:x">fast</x:hint>'))
    assert parsed.topics == ALL_TOPICS


def test_subscription_policies() -> None:
    assert parse_subscribe(subscribe(
        "<wsnt:SubscriptionPolicy><wsnt:FixedTopicSet>true</wsnt:FixedTopicSet></wsnt:SubscriptionPolicy>"
    )).topics == ALL_TOPICS
    refused("<wsnt:SubscriptionPolicy><wsnt:UseRaw/></wsnt:SubscriptionPolicy>", E.InvalidParameterValue, "UseRaw",
            "raw")
    refused('<wsnt:SubscriptionPolicy><x:batch xmlns:x="urn:x"/></wsnt:SubscriptionPolicy>',
            E.InvalidParameterValue, "batch", "unsupported subscription policy")


# ------------------------------------------------------ InitialTerminationTime


def termination(value: str, attributes: str = "") -> datetime | None:
    request = parse_subscribe(subscribe(
        f"<wsnt:InitialTerminationTime{attributes}>{value}</wsnt:InitialTerminationTime>"))
    return request.termination_time(NOW)


@pytest.mark.parametrize(("value", "expected"), [
    ("2024-02-01T00:00:00Z", datetime(2024, 2, 1, tzinfo=UTC)),
    ("2024-02-01T01:00:00+01:00", datetime(2024, 2, 1, tzinfo=UTC)),
    ("P1D", NOW + timedelta(days=1)),
    ("PT30M", NOW + timedelta(minutes=30)),
    ("PT0.5S", NOW + timedelta(seconds=0.5)),
    ("P1M", datetime(2024, 2, 29, 12, 0, tzinfo=UTC)),  # pinned to the end of February (leap year)
    ("P1Y1M1DT1H1M1S", datetime(2025, 3, 1, 13, 1, 1, tzinfo=UTC)),  # 2025-02-28, then a day
    (" P14D ", NOW + timedelta(days=14)),
])
def test_termination_times(value: str, expected: datetime) -> None:
    assert termination(value) == expected


def test_no_termination() -> None:
    assert parse_subscribe(subscribe()).termination_time(NOW) is None
    nil = ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:nil="true"'
    assert termination("", nil) is None


@pytest.mark.parametrize(("value", "phrase"), [
    ("tomorrow", "expected an xs:dateTime or an xs:duration"),
    ("", "expected"),
    ("2024-02-01", "expected"),
    ("P", "expected"),
    ("PT", "expected"),
    ("P1DT", "expected"),
    ("P1H", "expected"),
    ("-P1D", "not in the future"),
    ("PT0S", "not in the future"),
    ("2024-01-01T00:00:00Z", "not in the future"),
    ("P999999999Y", "too far"),
    ("P999999999D", "too far"),
])
def test_bad_termination_times(value: str, phrase: str) -> None:
    error = error_of(termination, value)
    assert (error.code, error.locator) == (E.InvalidParameterValue, "InitialTerminationTime")
    assert phrase in error.text, error.text


def test_durations() -> None:
    assert parse_duration("P1Y2M3DT4H5M6.25S") == Duration(14, timedelta(days=3, hours=4, minutes=5, seconds=6.25))
    assert parse_duration("-PT1M") == Duration(0, -timedelta(minutes=1))
    assert parse_duration("P0D") == Duration(0, timedelta())
    for text in ("1D", "P1.5D", "PT1.S", "P-1D", "p1d", "P1D ", "P١D"):
        assert parse_duration(text) is None, text
    assert Duration(1, timedelta()).after(datetime(2023, 1, 31, tzinfo=UTC)) == datetime(2023, 2, 28, tzinfo=UTC)
    assert Duration(-2, timedelta()).after(datetime(2024, 1, 15, tzinfo=UTC)) == datetime(2023, 11, 15, tzinfo=UTC)


# ----------------------------------------------------------------- Unsubscribe


@requires_schemas
def test_unsubscribe_with_the_reference_parameter() -> None:
    """The client sends back, as headers, the reference parameters of the
    SubscriptionReference it received."""
    response = render_subscribe_response(REFERENCE, NOW, None)
    parameters = response.find("wsnt:SubscriptionReference/wsa:ReferenceParameters", NS)
    assert parameters is not None
    headers = []
    for parameter in parameters:
        header = etree.fromstring(etree.tostring(parameter))
        header.set(IS_REFERENCE_PARAMETER, "true")
        headers.append(header)
    body = wrap(Encoding.SOAP12, etree.Element(f"{{{WSNT}}}Unsubscribe", nsmap={"wsnt": WSNT}), headers)
    message = unwrap(body, "application/soap+xml")
    assert parse_unsubscribe(message.payload, message.headers) == UnsubscribeRequest("s-1")


def test_unsubscribe_without_a_reference_parameter() -> None:
    element = etree.fromstring(f'<wsnt:Unsubscribe xmlns:wsnt="{WSNT}"><x:why xmlns:x="urn:x"/></wsnt:Unsubscribe>')
    assert parse_unsubscribe(element) == UnsubscribeRequest(None)


def test_bad_unsubscribes() -> None:
    element = etree.fromstring(f'<wsnt:Unsubscribe xmlns:wsnt="{WSNT}"/>')
    header = etree.fromstring(f'<i:SubscriptionId xmlns:i="{OSEOD}">s-1</i:SubscriptionId>')
    error = error_of(parse_unsubscribe, element, [header, header])
    assert (error.code, error.locator) == (E.InvalidParameterValue, "SubscriptionId")
    empty = etree.fromstring(f'<i:SubscriptionId xmlns:i="{OSEOD}"> </i:SubscriptionId>')
    assert error_of(parse_unsubscribe, element, [empty]).code is E.MissingParameterValue
    with_child = etree.fromstring(f'<wsnt:Unsubscribe xmlns:wsnt="{WSNT}"><wsnt:Filter/></wsnt:Unsubscribe>')
    assert error_of(parse_unsubscribe, with_child).locator == "Filter"


# ------------------------------------------------------------------- responses


@requires_schemas
def test_subscribe_response() -> None:
    end = NOW + timedelta(days=30)
    response = render_subscribe_response(REFERENCE, NOW, end)
    assert_valid(response)
    assert_valid(wrap(Encoding.SOAP11, response))
    assert response.findtext("wsnt:SubscriptionReference/wsa:Address", namespaces=NS) == REFERENCE.address
    assert response.findtext("wsnt:SubscriptionReference/wsa:ReferenceParameters/oseod:SubscriptionId",
                             namespaces=NS) == "s-1"
    assert response.findtext("wsnt:CurrentTime", namespaces=NS) == "2024-01-31T12:00:00.000Z"
    assert response.findtext("wsnt:TerminationTime", namespaces=NS) == "2024-03-01T12:00:00.000Z"
    # The official sample's shape, which only has the address.
    sample = etree.parse(str(SAMPLES / "SubscribeResponse.xml")).getroot()
    assert sample.find("wsnt:SubscriptionReference/wsa:Address", NS) is not None


@requires_schemas
def test_subscribe_response_without_an_end() -> None:
    response = render_subscribe_response(REFERENCE, NOW.timestamp(), None)
    assert_valid(response)
    end = response.find("wsnt:TerminationTime", NS)
    assert end is not None and end.get("{http://www.w3.org/2001/XMLSchema-instance}nil") == "true"


@requires_schemas
def test_unsubscribe_response() -> None:
    response = render_unsubscribe_response()
    assert_valid(response)
    assert_valid(wrap(Encoding.SOAP12, response))
    assert response.tag == f"{{{WSNT}}}UnsubscribeResponse" and len(response) == 0


# ---------------------------------------------------------------------- Notify


@pytest.mark.parametrize(("status", "topic", "code"), [
    (OrderStatus.Completed, Topic.ORDER_COMPLETION, EventCode.ORDERING_COMPLETED),
    (OrderStatus.Downloaded, Topic.ORDER_COMPLETION, EventCode.ORDERING_COMPLETED),
    (OrderStatus.Terminated, Topic.ORDER_COMPLETION, EventCode.ORDERING_COMPLETED),
    (OrderStatus.Cancelled, Topic.ORDER_COMPLETION, EventCode.ORDERING_DELETED),
    (OrderStatus.Failed, Topic.ORDER_FAILURE, EventCode.ORDERING_FAILED),
])
def test_events_of_final_statuses(status: OrderStatus, topic: Topic, code: EventCode) -> None:
    order = sample_order(status)
    assert OrderEvent.of_order(order) == OrderEvent(topic, code, order.order_id, order.status)


@pytest.mark.parametrize("status", [s for s in OrderStatus if not s.is_final])
def test_no_event_before_the_end(status: OrderStatus) -> None:
    assert OrderEvent.of_order(sample_order(status)) is None


def test_event_codes_are_those_of_the_official_list() -> None:
    dictionary = etree.parse(str(SCHEMAS_DIR / "oseo" / "1.0" / "EventCode.xml")).getroot()
    names = dictionary.xpath("//gml:Definition/gml:name/text()", namespaces={"gml": "http://www.opengis.net/gml/3.2"})
    assert sorted(names) == sorted(code.value for code in EventCode)


@requires_schemas
def test_notify_as_the_official_sample() -> None:
    event = OrderEvent(Topic.ORDER_FAILURE, EventCode.ORDERING_FAILED, "urn:ESA:EECF:order_id_0001",
                       StatusInfo(OrderStatus.Failed, "processor crashed"))
    notify = render_notify(event, dialect="http://docs.oasis-open.org/wsn/2004/06/TopicExpression/Simple",
                           producer="http://www.opengis.net/oseo/1.0")
    assert_valid(notify)
    sample = etree.parse(str(SAMPLES / "Notify.xml")).getroot()

    def read(root: etree._Element) -> tuple[object, ...]:
        holder = root.find("wsnt:NotificationMessage", NS)
        assert holder is not None
        topic = holder.find("wsnt:Topic", NS)
        assert topic is not None
        prefix, _, local = (topic.text or "").strip().partition(":")
        return (topic.get("Dialect"), topic.nsmap[prefix], local,
                holder.findtext("wsnt:ProducerReference/wsa:Address", namespaces=NS),
                holder.find("wsnt:Message/oseo:OrderFailure/oseo:code", NS).get("codeSpace"),  # type: ignore[union-attr]
                holder.findtext("wsnt:Message/oseo:OrderFailure/oseo:code", namespaces=NS),
                holder.findtext("wsnt:Message/oseo:OrderFailure/oseo:orderId", namespaces=NS))

    ours, theirs = read(notify), read(sample)
    # The sample's topic says "OrderFailed", where its Subscribe and
    # Capabilities say OrderFailure: the topic is the one subscribed to.
    assert ours[2] == "OrderFailure" and theirs[2] == "OrderFailed"
    assert ours[:2] + ours[3:] == theirs[:2] + theirs[3:]
    assert ours[4] == EVENT_CODE_SPACE
    assert notify.findtext("wsnt:NotificationMessage/wsnt:Message/oseo:OrderFailure/oseo:orderStatusInfo/"
                           "oseo:additionalStatusInfo", namespaces=NS) == "processor crashed"


@requires_schemas
def test_notify_with_the_subscription() -> None:
    event = OrderEvent.of_order(sample_order(OrderStatus.Completed))
    assert event is not None
    notify = render_notify(event, dialect=CONCRETE_DIALECT, subscription=REFERENCE)
    assert_valid(notify)
    holder = notify.find("wsnt:NotificationMessage", NS)
    assert holder is not None
    assert [etree.QName(child).localname for child in holder] == ["SubscriptionReference", "Topic", "Message"]
    assert holder.findtext("wsnt:Topic", namespaces=NS) == "oseo:OrderCompletion"
    assert holder.find("wsnt:Topic", NS).get("Dialect") == CONCRETE_DIALECT  # type: ignore[union-attr]
    message = holder.find("wsnt:Message/oseo:OrderCompletion", NS)
    assert message is not None
    assert [etree.QName(child).localname for child in message] == ["code", "orderId", "orderStatusInfo"]
    assert message.findtext("oseo:orderStatusInfo/oseo:status", namespaces=NS) == "Completed"


# ---------------------------------------------------------------- capabilities


@requires_schemas
def test_notifications_section() -> None:
    caps = attrs.evolve(CAPS, notification_producer="http://oseod.example/oseo")
    document = render_capabilities(caps)
    assert_valid(document)
    assert [etree.QName(child).localname for child in document][-2:] == ["Contents", "Notifications"]
    only = render_capabilities(caps, frozenset({"Notifications"}))
    assert_valid(only)
    assert [etree.QName(child).localname for child in only] == ["Notifications"]
    # Without a producer, no section, even when asked for.
    assert render_capabilities(CAPS, frozenset({"Notifications"})).find("oseo:Notifications", NS) is None


@requires_schemas
def test_notifications_as_the_official_sample() -> None:
    ours = render_notifications("http://oseod.example/oseo")
    capabilities = etree.parse(str(SAMPLES / "Capabilities_withNotifications.xml")).getroot()
    sample = capabilities.find("oseo:Notifications", NS)
    assert sample is not None
    metadata = "swes:NotificationProducerMetadata"
    topics = f"{metadata}/swes:servedTopics/wstop:TopicSet/wstop:documentation/wstop:TopicNamespace"
    for element in (ours, sample):
        assert element.find(f"{metadata}/swes:producerEndpoint/wsa:EndpointReference/wsa:Address", NS) is not None
        assert element.findtext(f"{metadata}/swes:fixedTopicSet", namespaces=NS) == "true"
        assert element.find(topics, NS).get("targetNamespace") == OSEO  # type: ignore[union-attr]
        assert sorted(element.xpath(f"{topics}/wstop:Topic/@name", namespaces=NS)) == [
            "OrderCompletion", "OrderFailure"]
    assert ours.xpath(f"{metadata}/swes:supportedDialects/swes:FilterDialectMetadata/"
                      "swes:topicExpressionDialect/text()", namespaces=NS) == [SIMPLE_DIALECT, CONCRETE_DIALECT]
    # WS-Topics' own form of the topic set, for WS-N clients.
    marked = ours.xpath(f"{metadata}/swes:servedTopics/wstop:TopicSet/oseo:*[@wstop:topic='true']", namespaces=NS)
    assert [etree.QName(element).localname for element in marked] == ["OrderCompletion", "OrderFailure"]
