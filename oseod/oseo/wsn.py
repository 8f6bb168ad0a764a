"""The WS-Notification channel of OSEO: subscriptions to order events, the
notifications sent for them, and what Capabilities says about them.

OGC 06-141r6 lets a server be a WS-BaseNotification 1.3 producer besides the
WS-Addressing call-backs: clients ``wsnt:Subscribe`` to the topics
``OrderCompletion`` and ``OrderFailure`` (namespace of OSEO), and receive a
``wsnt:Notify`` whose message names the order and carries an event code of
``oseo/1.0/EventCode.xml`` (SampleMessages Subscribe.xml, Notify.xml,
Capabilities_withNotifications.xml). OSEO gives the message no schema; it
follows Notify.xml: ``oseo:<topic>`` holding ``oseo:code`` and
``oseo:orderId``, plus the order's status.

A subscription is named, in the SubscriptionReference of the
SubscribeResponse, by an address chosen by the caller and a reference
parameter ``oseod:SubscriptionId`` that a WS-Addressing client sends back as a
header with its Unsubscribe. Clients that ignore reference parameters only have
the address: callers should make it name the subscription too.
"""

from __future__ import annotations

import calendar
import enum
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

import attrs
from lxml import etree

from oseod.model.orders import Fragment, Order, OrderStatus, StatusInfo
from oseod.oseo.common import format_date_time, local_name, parse_date_time, verbatim
from oseod.oseo.errors import ExceptionCode, OseoError, quote, xml_safe
from oseod.oseo.namespaces import OSEO, OSEOD, SWES, WSA, WSNT, WSTOP, qname
from oseod.oseo.security import ANONYMOUS, NONE_ADDRESS

# ------------------------------------------------------------------ vocabulary

# WS-BaseNotification 1.3 §3.2, §4.2, §6.1: the wsa:Action of each message.
NOTIFY_ACTION: Final = "http://docs.oasis-open.org/wsn/bw-2/NotificationConsumer/Notify"
SUBSCRIBE_ACTION: Final = "http://docs.oasis-open.org/wsn/bw-2/NotificationProducer/SubscribeRequest"
SUBSCRIBE_RESPONSE_ACTION: Final = "http://docs.oasis-open.org/wsn/bw-2/NotificationProducer/SubscribeResponse"
UNSUBSCRIBE_ACTION: Final = "http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/UnsubscribeRequest"
UNSUBSCRIBE_RESPONSE_ACTION: Final = "http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/UnsubscribeResponse"

# Topic expression dialects (WS-Topics 1.3 §7). A topic of ours is a root
# topic, which the Simple and the Concrete dialects write the same way. The
# OSEO samples use the URIs of the 2004/06 drafts; they are accepted as well.
SIMPLE_DIALECT: Final = "http://docs.oasis-open.org/wsn/t-1/TopicExpression/Simple"
CONCRETE_DIALECT: Final = "http://docs.oasis-open.org/wsn/t-1/TopicExpression/Concrete"
DIALECTS: Final = (
    SIMPLE_DIALECT,
    CONCRETE_DIALECT,
    "http://docs.oasis-open.org/wsn/2004/06/TopicExpression/Simple",
    "http://docs.oasis-open.org/wsn/2004/06/TopicExpression/Concrete",
)

# The codeSpace of the event codes, as Notify.xml writes it.
EVENT_CODE_SPACE: Final = "http://www.opengis.net/oseo/1.0#EventCode"


class Topic(enum.Enum):
    """The topics of Capabilities_withNotifications.xml, in the OSEO namespace."""

    ORDER_COMPLETION = "OrderCompletion"
    ORDER_FAILURE = "OrderFailure"


ALL_TOPICS: Final = frozenset(Topic)


class EventCode(enum.Enum):
    """The entries of oseo/1.0/EventCode.xml."""

    ORDERING_COMPLETED = "ORDERING_COMPLETED"
    ORDERING_DELETED = "ORDERING_DELETED"
    ORDERING_FAILED = "ORDERING_FAILED"


# Which final status is which event. Cancelled is no failure: the order ended
# as the client asked, on the completion topic, with the "deleted" code.
_EVENTS: Final = {
    OrderStatus.Completed: (Topic.ORDER_COMPLETION, EventCode.ORDERING_COMPLETED),
    OrderStatus.Downloaded: (Topic.ORDER_COMPLETION, EventCode.ORDERING_COMPLETED),
    OrderStatus.Terminated: (Topic.ORDER_COMPLETION, EventCode.ORDERING_COMPLETED),
    OrderStatus.Cancelled: (Topic.ORDER_COMPLETION, EventCode.ORDERING_DELETED),
    OrderStatus.Failed: (Topic.ORDER_FAILURE, EventCode.ORDERING_FAILED),
}


@attrs.frozen
class OrderEvent:
    """What a Notify reports: an order that reached a final status."""

    topic: Topic
    code: EventCode
    order_id: str
    status: StatusInfo

    @classmethod
    def of_order(cls, order: Order) -> OrderEvent | None:
        """The event of ``order``'s current status; None while it is not final."""
        return cls.of_status(order.order_id, order.status)

    @classmethod
    def of_status(cls, order_id: str, status: StatusInfo) -> OrderEvent | None:
        """The event of an order reaching ``status``; None if it is not final."""
        event = _EVENTS.get(status.status)
        if event is None:
            return None
        return cls(event[0], event[1], order_id, status)


@attrs.frozen
class EndpointReference:
    """A WS-Addressing endpoint reference: an address, and the reference
    parameters (kept verbatim) to send back as headers to it."""

    address: str
    reference_parameters: tuple[Fragment, ...] = ()


@attrs.frozen
class SubscriptionReference:
    """How a subscription is named in the messages oseod writes."""

    address: str
    subscription_id: str


# ------------------------------------------------------------------- durations

_DURATION: Final = re.compile(
    r"(-)?P(?:(\d{1,9})Y)?(?:(\d{1,9})M)?(?:(\d{1,9})D)?"
    r"(?:T(?:(\d{1,9})H)?(?:(\d{1,9})M)?(?:(\d{1,9})(?:\.(\d+))?S)?)?",
    re.ASCII,
)


@attrs.frozen
class Duration:
    """An xs:duration: months (years included) and the rest, which XML Schema
    adds separately (a month is not a fixed number of days)."""

    months: int
    rest: timedelta

    def after(self, moment: datetime) -> datetime:
        """``moment`` + this duration (XML Schema 1.0 Appendix E: months
        first, the day pinned to the end of a shorter month)."""
        month_index = moment.year * 12 + moment.month - 1 + self.months
        year, month = divmod(month_index, 12)
        month += 1
        day = min(moment.day, calendar.monthrange(year, month)[1])
        return moment.replace(year=year, month=month, day=day) + self.rest


def parse_duration(value: str) -> Duration | None:
    """An xs:duration ("P1DT12H", "-PT5M"); None when ``value`` is not one."""
    match = _DURATION.fullmatch(value)
    if match is None or value.endswith(("P", "T")):  # "P" and "PT" name no component
        return None
    sign, years, months, days, hours, minutes, seconds, fraction = match.groups()
    number = [int(part) if part else 0 for part in (years, months, days, hours, minutes, seconds)]
    try:
        rest = timedelta(days=number[2], hours=number[3], minutes=number[4], seconds=number[5],
                         microseconds=int((fraction or "0")[:6].ljust(6, "0")))
    except OverflowError:
        return None
    months_total = number[0] * 12 + number[1]
    if sign:
        return Duration(-months_total, -rest)
    return Duration(months_total, rest)


# --------------------------------------------------------------------- parsing


@attrs.frozen
class SubscribeRequest:
    """A ``wsnt:Subscribe``. ``topics``: those the filter selects (all when
    there is none); ``dialect``: the topic dialect the client wrote, for the
    Notify messages; ``initial_termination``: as given, absolute or relative
    (None: no end asked for)."""

    consumer: EndpointReference
    topics: frozenset[Topic] = ALL_TOPICS
    dialect: str = SIMPLE_DIALECT
    initial_termination: datetime | Duration | None = None

    def termination_time(self, now: datetime) -> datetime | None:
        """When the subscription ends, ``now`` being the aware time the
        request arrived; an end that is not in the future is
        InvalidParameterValue (WS-N's UnacceptableInitialTerminationTime)."""
        asked = self.initial_termination
        if asked is None:
            return None
        try:
            end = asked.after(now) if isinstance(asked, Duration) else asked
        except (OverflowError, ValueError):
            raise OseoError.invalid("InitialTerminationTime",
                                    "the InitialTerminationTime is too far in the future") from None
        if end <= now:
            raise OseoError.invalid(
                "InitialTerminationTime",
                f"the InitialTerminationTime {format_date_time(end)} is not in the future "
                f"(now: {format_date_time(now)})",
            )
        return end


@attrs.frozen
class UnsubscribeRequest:
    """A ``wsnt:Unsubscribe``; ``subscription_id`` is the reference parameter
    of the SubscriptionReference, None when the client sent none (then the
    address it was sent to names the subscription)."""

    subscription_id: str | None


def _wsnt(local: str) -> str:
    return qname(WSNT, local)


_SUBSCRIBE: Final = _wsnt("Subscribe")
_UNSUBSCRIBE: Final = _wsnt("Unsubscribe")
_SUBSCRIPTION_ID: Final = qname(OSEOD, "SubscriptionId")
_ADDRESS: Final = qname(WSA, "Address")
_REFERENCE_PARAMETERS: Final = qname(WSA, "ReferenceParameters")
_XSI_NIL: Final = "{http://www.w3.org/2001/XMLSchema-instance}nil"


def _check_root(payload: etree._Element, tag: str) -> None:
    if payload.tag != tag:
        raise OseoError(ExceptionCode.OperationNotSupported, local_name(payload),
                        f"expected wsnt:{etree.QName(tag).localname}, not {quote(str(payload.tag))}")


def _elements(parent: etree._Element) -> list[etree._Element]:
    where = local_name(parent)
    texts = [parent.text, *(child.tail for child in parent)]
    if any(text and not text.isspace() for text in texts):
        raise OseoError.invalid(where, f"{where} holds elements only, not text")
    return [child for child in parent if isinstance(child.tag, str)]


def _sequence(parent: etree._Element, names: Sequence[str]) -> dict[str, etree._Element]:
    """The wsnt children of ``parent``, at most one of each of ``names`` and
    in that order; elements of other namespaces may follow them (the
    ``xs:any namespace="##other"`` that ends every WS-N message)."""
    found: dict[str, etree._Element] = {}
    position = 0
    extensions = False
    where = local_name(parent)
    for child in _elements(parent):
        name = etree.QName(child)
        if name.namespace != WSNT:
            extensions = True
            continue
        local = name.localname
        if local not in names:
            raise OseoError.invalid(local, f"unexpected element wsnt:{local} in {where}")
        if extensions or names.index(local) < position or local in found:
            raise OseoError.invalid(local, f"element wsnt:{local} is repeated or out of place in {where}")
        position = names.index(local)
        found[local] = child
    return found


def _text(element: etree._Element) -> str:
    if any(isinstance(child.tag, str) for child in element):
        local = local_name(element)
        raise OseoError.invalid(local, f"{local} must hold text only")
    return (element.text or "").strip()


def _endpoint_reference(element: etree._Element) -> EndpointReference:
    """An EndpointReferenceType: Address, ReferenceParameters?, Metadata?, any."""
    where = local_name(element)
    children = _elements(element)
    if not children or children[0].tag != _ADDRESS:
        raise OseoError.missing(where, f"{where} has no wsa:Address")
    address = _text(children[0])
    if not address:
        raise OseoError.missing(where, f"the wsa:Address of {where} is empty")
    if address in (ANONYMOUS, NONE_ADDRESS):
        raise OseoError.invalid(where, f"{where} must give an address notifications can be sent to, "
                                       f"not {quote(address)}")
    parameters: tuple[Fragment, ...] = ()
    if len(children) > 1 and children[1].tag == _REFERENCE_PARAMETERS:
        parameters = tuple(verbatim(parameter) for parameter in _elements(children[1]))
    return EndpointReference(address, parameters)


# A QName: the one form a root topic takes in the Simple and Concrete dialects.
_TOPIC_NAME: Final = re.compile(r"(?:[^\W\d][\w.-]*:)?[^\W\d][\w.-]*")


def _topic(expression: etree._Element) -> tuple[Topic, str]:
    """The topic a TopicExpression names, and its dialect."""
    dialect = (expression.get("Dialect") or "").strip()
    if dialect not in DIALECTS:
        raise OseoError.invalid(
            "TopicExpression",
            f"unsupported topic expression Dialect {quote(dialect)}: use {SIMPLE_DIALECT} or {CONCRETE_DIALECT}",
        )
    text = _text(expression)
    if not _TOPIC_NAME.fullmatch(text):
        raise OseoError.invalid(
            "TopicExpression", f"unsupported topic expression {quote(text)}: name one topic (e.g. oseo:OrderFailure)"
        )
    prefix, _, local = text.rpartition(":")
    namespace = expression.nsmap.get(prefix or None)
    if prefix and namespace is None:
        raise OseoError.invalid("TopicExpression", f"the prefix of the topic {quote(text)} is not declared")
    # An unqualified name can only mean one of our topics: this producer
    # serves no other.
    topic = next((topic for topic in Topic if topic.value == local), None)
    if topic is None or namespace not in (OSEO, None):
        known = ", ".join(served.value for served in Topic)
        raise OseoError.invalid(
            "TopicExpression",
            f"unsupported topic {quote(text)}: the topics are {known} in the namespace {OSEO}",
        )
    return topic, dialect


def _filter(element: etree._Element) -> tuple[frozenset[Topic], str | None]:
    """The topics a Filter lets through (every expression must match) and
    the dialect its expressions use."""
    topics = set(ALL_TOPICS)
    dialect = None
    for child in _elements(element):
        if child.tag != _wsnt("TopicExpression"):
            raise OseoError.invalid(
                "Filter", f"unsupported filter {quote(local_name(child))}: only wsnt:TopicExpression is supported"
            )
        topic, dialect = _topic(child)
        topics &= {topic}
    if not topics:
        raise OseoError.invalid("Filter", "the topic expressions of the Filter exclude each other: "
                                          "subscribe once per topic")
    return frozenset(topics), dialect


def _initial_termination(element: etree._Element) -> datetime | Duration | None:
    if element.get(_XSI_NIL, "").strip() in ("true", "1"):
        return None
    value = _text(element)
    if value.lstrip("-").startswith("P"):
        duration = parse_duration(value)
        if duration is not None:
            return duration
    elif "T" in value and (moment := parse_date_time(value)) is not None:
        return moment
    raise OseoError.invalid(
        "InitialTerminationTime",
        f"invalid InitialTerminationTime {quote(value)}: expected an xs:dateTime or an xs:duration (e.g. P30D)",
    )


def _subscription_policy(element: etree._Element) -> None:
    """Policies are refused unless understood (WS-BaseNotification 1.3
    §4.2). FixedTopicSet, which Subscribe.xml puts here, is a producer
    property, true of this producer; it asks for nothing."""
    for child in _elements(element):
        if child.tag == _wsnt("FixedTopicSet"):
            continue
        if child.tag == _wsnt("UseRaw"):
            raise OseoError.invalid("UseRaw", "raw notifications are not supported: they come in wsnt:Notify")
        raise OseoError.invalid(local_name(child), f"unsupported subscription policy {quote(str(child.tag))}")


_SUBSCRIBE_CONTENT: Final = ("ConsumerReference", "Filter", "InitialTerminationTime", "SubscriptionPolicy")


def parse_subscribe(payload: etree._Element) -> SubscribeRequest:
    """The request carried by a ``wsnt:Subscribe`` element."""
    _check_root(payload, _SUBSCRIBE)
    children = _sequence(payload, _SUBSCRIBE_CONTENT)
    if "ConsumerReference" not in children:
        raise OseoError.missing("ConsumerReference", "missing ConsumerReference in Subscribe")
    consumer = _endpoint_reference(children["ConsumerReference"])
    topics, dialect = ALL_TOPICS, None
    if "Filter" in children:
        topics, dialect = _filter(children["Filter"])
    termination = None
    if "InitialTerminationTime" in children:
        termination = _initial_termination(children["InitialTerminationTime"])
    if "SubscriptionPolicy" in children:
        _subscription_policy(children["SubscriptionPolicy"])
    return SubscribeRequest(consumer, topics, dialect or SIMPLE_DIALECT, termination)


def parse_unsubscribe(payload: etree._Element, headers: Sequence[etree._Element] = ()) -> UnsubscribeRequest:
    """The request carried by a ``wsnt:Unsubscribe`` element, with the
    subscription named by the ``oseod:SubscriptionId`` among the SOAP
    ``headers`` (a reference parameter of the SubscribeResponse)."""
    _check_root(payload, _UNSUBSCRIBE)
    _sequence(payload, ())
    subscription_id = None
    for header in headers:
        if header.tag != _SUBSCRIPTION_ID:
            continue
        if subscription_id is not None:
            raise OseoError.invalid("SubscriptionId", "the SubscriptionId header is given twice")
        subscription_id = _text(header)
        if not subscription_id:
            raise OseoError.missing("SubscriptionId", "the SubscriptionId header is empty")
    return UnsubscribeRequest(subscription_id)


# ------------------------------------------------------------------- rendering

_NSMAP: Final = {"wsnt": WSNT, "wsa": WSA}


def _sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, tag)
    if text is not None:
        element.text = text
    return element


def _subscription_reference(parent: etree._Element, reference: SubscriptionReference) -> None:
    element = _sub(parent, _wsnt("SubscriptionReference"))
    _sub(element, _ADDRESS, reference.address)
    parameters = _sub(element, _REFERENCE_PARAMETERS)
    identifier = etree.SubElement(parameters, _SUBSCRIPTION_ID, nsmap={"oseod": OSEOD})
    identifier.text = reference.subscription_id


def render_subscribe_response(reference: SubscriptionReference, current_time: datetime | float,
                              termination_time: datetime | None) -> etree._Element:
    """The ``wsnt:SubscribeResponse``: the subscription's reference, the
    producer's clock and the end of the subscription (nil: none)."""
    root = etree.Element(_wsnt("SubscribeResponse"), nsmap=_NSMAP)
    _subscription_reference(root, reference)
    _sub(root, _wsnt("CurrentTime"), format_date_time(current_time))
    end = _sub(root, _wsnt("TerminationTime"))
    if termination_time is None:
        end.set(_XSI_NIL, "true")
    else:
        end.text = format_date_time(termination_time)
    return root


def render_unsubscribe_response() -> etree._Element:
    """The ``wsnt:UnsubscribeResponse`` (empty)."""
    return etree.Element(_wsnt("UnsubscribeResponse"), nsmap={"wsnt": WSNT})


def _oseo(local: str) -> str:
    return qname(OSEO, local)


def _message(parent: etree._Element, event: OrderEvent) -> None:
    message = _sub(parent, _oseo(event.topic.value))
    _sub(message, _oseo("code"), event.code.value).set("codeSpace", EVENT_CODE_SPACE)
    _sub(message, _oseo("orderId"), event.order_id)
    info = _sub(message, _oseo("orderStatusInfo"))
    _sub(info, _oseo("status"), event.status.status.value)
    if event.status.additional_info:
        _sub(info, _oseo("additionalStatusInfo"), xml_safe(event.status.additional_info, 4000))


def render_notify(event: OrderEvent, *, dialect: str = SIMPLE_DIALECT, producer: str | None = None,
                  subscription: SubscriptionReference | None = None) -> etree._Element:
    """The ``wsnt:Notify`` reporting ``event``: its topic in ``dialect`` (the
    subscriber's own), the subscription and producer when given, and the
    message of Notify.xml."""
    root = etree.Element(_wsnt("Notify"), nsmap={**_NSMAP, "oseo": OSEO})
    holder = _sub(root, _wsnt("NotificationMessage"))
    if subscription is not None:
        _subscription_reference(holder, subscription)
    # The topic is a QName in text: the oseo prefix is declared on the root.
    _sub(holder, _wsnt("Topic"), f"oseo:{event.topic.value}").set("Dialect", dialect)
    if producer is not None:
        _sub(_sub(holder, _wsnt("ProducerReference")), _ADDRESS, producer)
    _message(_sub(holder, _wsnt("Message")), event)
    return root


def render_notifications(producer: str) -> etree._Element:
    """The ``oseo:Notifications`` section of Capabilities: a SWES
    NotificationProducerMetadata naming ``producer`` (where to send Subscribe),
    the dialects understood and the two topics.

    The topics are listed as in Capabilities_withNotifications.xml (a
    wstop:TopicNamespace inside the TopicSet's documentation, which OSEO
    clients read) and as WS-Topics defines a topic set (an element per topic
    marked wstop:topic), for WS-N clients."""
    root = etree.Element(_oseo("Notifications"),
                         nsmap={"oseo": OSEO, "swes": SWES, "wsa": WSA, "wstop": WSTOP})
    metadata = _sub(root, qname(SWES, "NotificationProducerMetadata"))
    endpoint = _sub(_sub(metadata, qname(SWES, "producerEndpoint")), qname(WSA, "EndpointReference"))
    _sub(endpoint, _ADDRESS, producer)
    dialects = _sub(_sub(metadata, qname(SWES, "supportedDialects")), qname(SWES, "FilterDialectMetadata"))
    for dialect in (SIMPLE_DIALECT, CONCRETE_DIALECT):
        _sub(dialects, qname(SWES, "topicExpressionDialect"), dialect)
    _sub(metadata, qname(SWES, "fixedTopicSet"), "true")
    topic_set = _sub(_sub(metadata, qname(SWES, "servedTopics")), qname(WSTOP, "TopicSet"))
    namespace = _sub(_sub(topic_set, qname(WSTOP, "documentation")), qname(WSTOP, "TopicNamespace"))
    namespace.set("targetNamespace", OSEO)
    for topic in Topic:
        declaration = _sub(namespace, qname(WSTOP, "Topic"))
        declaration.set("name", topic.value)
        declaration.set("messageTypes", f"oseo:{topic.value}")
    for topic in Topic:
        _sub(topic_set, _oseo(topic.value)).set(qname(WSTOP, "topic"), "true")
    return root
