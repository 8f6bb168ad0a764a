"""The WS-Notification channel of the outbox: a wsnt:Notify to a subscriber
when one of their orders ends.

Each subscription has its own queue (see :mod:`oseod.store.wsn`), filled
with the change that ended the order. A message whose topic the
subscription did not ask for, or whose subscription has ended since, is
done without sending; the consumer's address is checked again, resolved,
before each attempt, as a call-back's is. The Notify's wsa:MessageID is
derived from the subscription and the message's place, the same on
every retry.
"""

from __future__ import annotations

import uuid
from typing import Any

from zope.interface import implementer

from ..model import codec
from ..model.orders import StatusInfo
from ..model.outbox import OutboxMessage
from ..oseo.callbacks import CallbackTarget, encoding_of, notify_callback
from ..oseo.wsn import EndpointReference, OrderEvent, SubscriptionReference
from ..reactors import IDaemonReactor
from ..store.wsn import SubscriptionStore
from ..threads import ThreadPools
from .posting import PostingChannel
from .sender import IOutboxChannel


@implementer(IOutboxChannel)
class Notifications(PostingChannel):
    def __init__(self, subscriptions: SubscriptionStore, reactor: IDaemonReactor, *, threads: ThreadPools, timeout: float,
                 allowed_networks: tuple[str, ...], producer: Any) -> None:
        super().__init__(reactor, threads=threads, timeout=timeout, allowed_networks=allowed_networks)
        self._subscriptions = subscriptions
        self._producer = producer  # () -> the endpoint's URL, where subscriptions are managed

    def destination(self, message: OutboxMessage) -> str:
        # Known only once the subscription is read: one place per subscription.
        return f"wsn:{message.name}"

    async def deliver(self, message: OutboxMessage) -> None:
        subscription = await self._subscriptions.get(message.name)
        if subscription is None:
            return  # unsubscribed or ended since: nobody to tell
        status = codec.loads(StatusInfo, str(message.data["info"]))
        event = OrderEvent.of_status(str(message.data["order"]), status)
        if event is None or event.topic.value not in subscription.topics:
            return
        target = CallbackTarget.of_consumer(EndpointReference(subscription.consumer, subscription.reference_parameters),
                                            encoding_of(subscription.soap_version))
        identity = uuid.uuid5(uuid.NAMESPACE_URL, f"oseod:wsn:{message.name}:{message.seq}")
        producer = self._producer()
        await self._poster.post(notify_callback(event, target, f"urn:uuid:{identity}", dialect=subscription.dialect,
                                                producer=producer,
                                                subscription=SubscriptionReference(producer, message.name)))
