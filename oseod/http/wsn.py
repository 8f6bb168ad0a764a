"""WS-Notification on the OSEO endpoint: wsnt:Subscribe and wsnt:Unsubscribe
(glue: parse, call the core, render). The subscription manager is the
endpoint itself; the subscription id travels as the reference parameter
``oseod:SubscriptionId`` of the SubscriptionReference."""

from __future__ import annotations

import uuid
from typing import Any

from lxml import etree

from ..core.notifications import NotificationSubscriptions
from ..oseo import soap
from ..oseo.addressing import render_headers
from ..oseo.errors import OseoError
from ..oseo.security import parse_addressing
from ..oseo.wsn import (
    SUBSCRIBE_RESPONSE_ACTION,
    UNSUBSCRIBE_RESPONSE_ACTION,
    SubscribeRequest,
    SubscriptionReference,
    parse_subscribe,
    parse_unsubscribe,
    render_subscribe_response,
    render_unsubscribe_response,
)
from .operations import Handler, OseoCall



class WsnOperations:
    def __init__(self, subscriptions: NotificationSubscriptions) -> None:
        self._subscriptions = subscriptions

    def handlers(self) -> dict[str, tuple[Any, Handler]]:
        return {"Subscribe": (parse_subscribe, self.subscribe),
                # The subscription's id is in a header: parsed with the call.
                "Unsubscribe": (lambda payload: payload, self.unsubscribe)}

    async def subscribe(self, call: OseoCall, request: SubscribeRequest) -> bytes:
        now = self._subscriptions.now()
        ends = request.termination_time(now)
        encoding = call.message.encoding
        soap_version = "1.1" if encoding is soap.Encoding.SOAP11 else "1.2"
        made = await self._subscriptions.subscribe(
            call.user, request.consumer.address, request.consumer.reference_parameters,
            frozenset(topic.value for topic in request.topics), request.dialect, soap_version, ends)
        reference = SubscriptionReference(call.endpoint_url, made.subscription_id)
        return _reply(call, render_subscribe_response(reference, now, ends), SUBSCRIBE_RESPONSE_ACTION)

    async def unsubscribe(self, call: OseoCall, payload: etree._Element) -> bytes:
        request = parse_unsubscribe(payload, call.message.headers)
        if request.subscription_id is None:
            raise OseoError.missing("SubscriptionId", "Unsubscribe needs the oseod:SubscriptionId header of the "
                                                      "SubscriptionReference")
        await self._subscriptions.unsubscribe(call.user, request.subscription_id)
        return _reply(call, render_unsubscribe_response(), UNSUBSCRIBE_RESPONSE_ACTION)


def _reply(call: OseoCall, payload: etree._Element, action: str) -> bytes:
    relates_to = parse_addressing(call.message.headers).message_id
    headers = render_headers(action=action, message_id=f"urn:uuid:{uuid.uuid4()}", relates_to=relates_to)
    return soap.wrap(call.message.encoding, payload, headers)

