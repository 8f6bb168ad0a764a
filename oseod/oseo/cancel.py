"""Cancel: stop an order, or end a subscription (OGC 06-141r6 §16; oseo.xsd
CancelRequestType). The CancelAck only says the request was accepted; the
outcome follows in GetStatus or a CancelResponse call-back."""

from __future__ import annotations

from typing import Final

import attrs
from lxml import etree

from oseod.model.orders import StatusNotification
from oseod.oseo.common import content, request_children, response, string, token


@attrs.frozen
class CancelRequest:
    order_id: str
    status_notification: StatusNotification


_KNOWN: Final = content("timeStamp", "orderId", "statusNotification")
_NOTIFICATIONS: Final = tuple(mode.value for mode in StatusNotification)


def parse_cancel(payload: etree._Element) -> CancelRequest:
    """The request carried by an ``oseo:Cancel`` element."""
    children = request_children(payload, "Cancel", _KNOWN)
    order_id = string(children.required("orderId"), required=True)
    notification = StatusNotification(token(children.required("statusNotification"), _NOTIFICATIONS))
    children.finish()
    return CancelRequest(order_id, notification)


def render_cancel_ack() -> etree._Element:
    """The ``oseo:CancelAck``: status success."""
    return response("CancelAck")
