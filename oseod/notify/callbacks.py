"""The status call-back channel of the outbox: a SubmitResponse POSTed to
the order's ``wsa:ReplyTo`` for each change the outbox queued (a
CancelResponse to the Cancel's, once a Cancel that asked for notification
has taken the order's call-backs over).

The message holds the order's status as it changed (the queue keeps every
change, in order); the rest of the monitor specification (the items) is the
order as it stands when the message goes out. The ``wsa:MessageID`` is
derived from the order and the message's place in its queue, so a message
sent again after a failure or a crash reads the same, and the client can
drop the duplicate. Only an answer that acknowledges the call-back
(``SubmitResponseAck``) counts as delivered; anything else (no answer, a
Fault, an error status, a timeout) is a failed attempt.

An order placed over OData with a NotificationEndpoint has no wsa:ReplyTo:
its final change goes out as the ODIP completion notification instead
(:mod:`oseod.notify.odip`), through the same queue.

The target was checked at Submit; how it is posted to, and checked again
right before each attempt, is :mod:`oseod.notify.posting`.
"""

from __future__ import annotations

import uuid

import attrs
from zope.interface import implementer

from ..auth.secrets import SecretBox
from ..core.ordering import OrderingService
from ..model import codec
from ..model.errors import RequestRejected
from ..model.orders import StatusInfo
from ..model.outbox import OutboxMessage
from ..oseo.callbacks import CallbackTarget, cancel_response_callback, submit_response_callback
from ..reactors import IDaemonReactor
from ..threads import ThreadPools
from .mail import IMailSender
from .odip import Listings, OdipNotifier
from .posting import PostingChannel, host_of
from .sender import IOutboxChannel, Undeliverable

# The destination of the notifications that go out as e-mails (mailto:
# NotificationEndpoints): they share the mail server, as the mail channel's do.
MAIL_DESTINATION = "mail"


def message_id(order_id: str, created_at: float, seq: int) -> str:
    """The call-back's wsa:MessageID: the same for every attempt of one message."""
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'oseod:order:{order_id}:{created_at!r}:{seq}')}"


@implementer(IOutboxChannel)
class StatusCallbacks(PostingChannel):
    def __init__(self, ordering: OrderingService, reactor: IDaemonReactor, *, threads: ThreadPools, timeout: float,
                 allowed_networks: tuple[str, ...] = (), secrets: SecretBox | None = None,
                 listings: Listings | None = None, mailer: IMailSender | None = None, mail_from: str = "",
                 service: str = "") -> None:
        """``secrets`` opens the NotificationEpPasswords; ``listings`` names
        the products by their files; ``mailer`` sends to mailto: endpoints
        (None: e-mail is off), from ``mail_from``."""
        super().__init__(reactor, threads=threads, timeout=timeout, allowed_networks=allowed_networks)
        self._ordering = ordering
        self._odip = OdipNotifier(self._poster, reactor, secrets=secrets, listings=listings, mailer=mailer,
                                  mail_from=mail_from, service=service)

    def destination(self, message: OutboxMessage) -> str:
        to = str(message.data.get("to") or "")
        return MAIL_DESTINATION if to.lower().startswith("mailto:") else host_of(to)

    async def deliver(self, message: OutboxMessage) -> None:
        try:
            order = await self._ordering.order(message.name)
        except RequestRejected:
            raise Undeliverable(f"order {message.name} no longer exists") from None
        if order.notification.endpoint and not order.notification.reply_to:
            status = codec.loads(StatusInfo, str(message.data["info"]))
            await self._odip.deliver(order, status, message.seq)
            return
        target = CallbackTarget.of_order(order)
        if target is None:
            raise Undeliverable(f"order {message.name} asks for no call-backs")
        status = codec.loads(StatusInfo, str(message.data["info"]))
        respond = cancel_response_callback if order.notification.cancel else submit_response_callback
        callback = respond(attrs.evolve(order, status=status), target,
                           message_id(order.order_id, order.created_at, message.seq),
                           time_stamp=status.changed_at or None)
        await self._poster.post(callback)
