"""Call-backs: the SOAP requests oseod sends to its clients' own services, as
complete HTTP request bodies and headers for the outbox to deliver.

OSEO's asynchronous operations answer later, by a request to the address the
client gave in ``wsa:ReplyTo``: SubmitResponse and CancelResponse carry the
order's monitor specification (as a full GetStatus shows it), and
GetQuotationResponse the quotation; each carries ``wsa:RelatesTo`` naming the
client's request (OGC 06-141r6 §7.4.3). A WS-Notification subscriber gets
``wsnt:Notify`` at its ConsumerReference. The envelope is the SOAP version the
client spoke (SOAP 1.2 for one that sent bare XML: OSEO's own binding).

The ``wsa:Action`` of the OSEO call-backs is the soapAction the official WSDL
binds them to (OSEO_V100_AsyncClientPortBinding: "SubmitResponse",
"CancelResponse", "GetQuotationResponse"). The WSDL declares no wsam:Action,
and WSDL-driven toolkits commonly take a non-empty soapAction as the
operation's action then, so a call-back receiver generated from the WSDL
dispatches on that value (rather than on the WS-Addressing Metadata default,
".../OSEO_V100_AsyncClient/SubmitResponseRequest", which nothing in OSEO
shows). The SOAP 1.1 SOAPAction header (or the SOAP 1.2 ``action`` media type
parameter) repeats it, as the WS-Addressing SOAP binding requires. ``Notify``
uses the action WS-BaseNotification 1.3 defines.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Final

import attrs
from lxml import etree

from oseod.model.orders import Fragment, Order, StatusNotification
from oseod.oseo.addressing import render_headers
from oseod.oseo.common import RESPONSE_NSMAP, SERVICE, VERSION, format_date_time, oseo, sub
from oseod.oseo.quotation import Quotation, render_get_quotation_response
from oseod.oseo.security import Addressing
from oseod.oseo.soap import Encoding, wrap
from oseod.oseo.status import render_order_monitor_specification
from oseod.oseo.wsn import (
    NOTIFY_ACTION,
    SIMPLE_DIALECT,
    EndpointReference,
    OrderEvent,
    SubscriptionReference,
    render_notify,
)


class CallbackKind(enum.Enum):
    """What a call-back is; its value is the local name of its body."""

    SUBMIT_RESPONSE = "SubmitResponse"
    CANCEL_RESPONSE = "CancelResponse"
    GET_QUOTATION_RESPONSE = "GetQuotationResponse"
    NOTIFY = "Notify"

    @property
    def action(self) -> str:
        """The wsa:Action (and SOAPAction) of the call-back."""
        return NOTIFY_ACTION if self is CallbackKind.NOTIFY else self.value

    @property
    def ack(self) -> str | None:
        """The local name of the oseo element that acknowledges it; None for
        Notify, a one-way message."""
        return None if self is CallbackKind.NOTIFY else self.value + "Ack"


def encoding_of(soap_version: str | None) -> Encoding:
    """The envelope for a client that spoke SOAP ``soap_version`` ("1.1",
    "1.2", or None for bare XML, as ``Notification.soap_version`` holds it)."""
    return Encoding.SOAP11 if soap_version == "1.1" else Encoding.SOAP12


def _enveloped(instance: object, attribute: object, value: Encoding) -> None:
    if value is Encoding.BARE:
        raise ValueError("a call-back travels in a SOAP 1.2 or SOAP 1.1 envelope")


@attrs.frozen
class CallbackTarget:
    """Where a call-back goes: the client's address (wsa:To), the MessageID
    of the request it answers (wsa:RelatesTo), the envelope to use and the
    reference parameters of the client's endpoint reference."""

    address: str
    relates_to: str | None = None
    encoding: Encoding = attrs.field(default=Encoding.SOAP12, validator=_enveloped)
    reference_parameters: tuple[Fragment, ...] = ()

    @classmethod
    def of_order(cls, order: Order) -> CallbackTarget | None:
        """Where the SubmitResponse call-backs of ``order`` go; None when the
        client asked for none (statusNotification None, or no ReplyTo)."""
        notification = order.notification
        if notification.mode is StatusNotification.NONE or not notification.reply_to:
            return None
        return cls(notification.reply_to, notification.message_id, encoding_of(notification.soap_version))

    @classmethod
    def of_request(cls, addressing: Addressing, encoding: Encoding) -> CallbackTarget | None:
        """Where the answer to a request (a Cancel, a GetQuotation) with these
        WS-Addressing headers, received in ``encoding``, goes; None without a
        ReplyTo."""
        if not addressing.reply_to:
            return None
        return cls(addressing.reply_to, addressing.message_id,
                   Encoding.SOAP12 if encoding is Encoding.BARE else encoding)

    @classmethod
    def of_consumer(cls, consumer: EndpointReference, encoding: Encoding) -> CallbackTarget:
        """Where the Notify messages of a WS-Notification subscription go."""
        return cls(consumer.address, None, Encoding.SOAP12 if encoding is Encoding.BARE else encoding,
                   consumer.reference_parameters)


@attrs.frozen
class Callback:
    """A call-back ready to POST to ``address``: ``body`` with the
    ``headers``. ``message_id`` names it (the same on every retry)."""

    kind: CallbackKind
    address: str
    message_id: str
    body: bytes = attrs.field(repr=False)
    content_type: str
    soap_action: str | None

    @property
    def headers(self) -> dict[str, str]:
        """The HTTP request headers: Content-Type, and SOAPAction for SOAP 1.1."""
        headers = {"Content-Type": self.content_type}
        if self.soap_action is not None:
            headers["SOAPAction"] = self.soap_action
        return headers


def render_callback(kind: CallbackKind, target: CallbackTarget, message_id: str,
                    payload: etree._Element) -> Callback:
    """``payload`` enveloped as the call-back ``kind`` to ``target``, with its
    WS-Addressing headers; ``message_id`` (wsa:MessageID) is the caller's, so
    that a retry is recognisably the same message."""
    if not message_id.strip():
        raise ValueError("a call-back needs a MessageID")
    headers = render_headers(action=kind.action, to=target.address, message_id=message_id,
                             relates_to=target.relates_to, reference_parameters=target.reference_parameters)
    body = wrap(target.encoding, payload, headers)
    # Media type parameters are quoted: an action URI holds ":" and "/".
    if target.encoding is Encoding.SOAP12:
        content_type, soap_action = f'application/soap+xml; charset=utf-8; action="{kind.action}"', None
    else:
        content_type, soap_action = "text/xml; charset=utf-8", f'"{kind.action}"'
    return Callback(kind, target.address, message_id, body, content_type, soap_action)


# ------------------------------------------------------------- status notices

_STATUS_NOTICES: Final = (CallbackKind.SUBMIT_RESPONSE, CallbackKind.CANCEL_RESPONSE)


def render_status_notice(kind: CallbackKind, order: Order,
                         time_stamp: datetime | float | None = None) -> etree._Element:
    """The body of a SubmitResponse or CancelResponse (StatusNotificationType):
    the order with all its items, as GetStatus full shows it."""
    if kind not in _STATUS_NOTICES:
        raise ValueError(f"{kind.value} is not a status notification")
    root = etree.Element(oseo(kind.value), nsmap=RESPONSE_NSMAP)
    root.set("service", SERVICE)
    root.set("version", VERSION)
    if time_stamp is not None:
        sub(root, "timeStamp", format_date_time(time_stamp))
    root.append(render_order_monitor_specification(order, full=True))
    return root


def submit_response_callback(order: Order, target: CallbackTarget, message_id: str,
                             time_stamp: datetime | float | None = None) -> Callback:
    """The SubmitResponse call-back reporting where ``order`` stands."""
    kind = CallbackKind.SUBMIT_RESPONSE
    return render_callback(kind, target, message_id, render_status_notice(kind, order, time_stamp))


def cancel_response_callback(order: Order, target: CallbackTarget, message_id: str,
                             time_stamp: datetime | float | None = None) -> Callback:
    """The CancelResponse call-back reporting the outcome of a Cancel."""
    kind = CallbackKind.CANCEL_RESPONSE
    return render_callback(kind, target, message_id, render_status_notice(kind, order, time_stamp))


def get_quotation_response_callback(quotation: Quotation, target: CallbackTarget, message_id: str,
                                    error_message: str | None = None) -> Callback:
    """The GetQuotationResponse call-back carrying ``quotation``."""
    return render_callback(CallbackKind.GET_QUOTATION_RESPONSE, target, message_id,
                           render_get_quotation_response(quotation, error_message))


def notify_callback(event: OrderEvent, target: CallbackTarget, message_id: str, *,
                    dialect: str = SIMPLE_DIALECT, producer: str | None = None,
                    subscription: SubscriptionReference | None = None) -> Callback:
    """The wsnt:Notify reporting ``event`` to a subscriber (see
    ``wsn.render_notify`` for the keywords)."""
    return render_callback(CallbackKind.NOTIFY, target, message_id,
                           render_notify(event, dialect=dialect, producer=producer, subscription=subscription))
