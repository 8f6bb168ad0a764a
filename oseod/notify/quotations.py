"""The quotation call-back channel of the outbox: an asynchronous
GetQuotation's quotation, POSTed as a GetQuotationResponse to the request's
``wsa:ReplyTo``, related to its ``wsa:MessageID``.

The message carries the whole quotation (see :mod:`oseod.store.quotations`),
so it goes out even if the client has ordered the quotation meanwhile; one
that has expired before it could be delivered is given up on. The call-back's
own ``wsa:MessageID`` is derived from the quotation, the same for every
attempt. Only a ``GetQuotationResponseAck`` counts as delivered; the posting
and the check of the target right before it are :mod:`oseod.notify.posting`'s.
"""

from __future__ import annotations

import uuid

from zope.interface import implementer
from twisted.internet.interfaces import IReactorTime

from ..model.outbox import OutboxMessage
from ..oseo.callbacks import CallbackTarget, encoding_of, get_quotation_response_callback
from ..reactors import IDaemonReactor
from ..store.quotations import quotation_message
from ..threads import ThreadPools
from .posting import PostingChannel
from .sender import IOutboxChannel, Undeliverable


def message_id(quotation_id: str, seq: int) -> str:
    """The call-back's wsa:MessageID: the same for every attempt."""
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'oseod:quotation:{quotation_id}:{seq}')}"


@implementer(IOutboxChannel)
class QuotationCallbacks(PostingChannel):
    def __init__(self, reactor: IDaemonReactor, clock: IReactorTime, *, threads: ThreadPools, timeout: float,
                 allowed_networks: tuple[str, ...] = ()) -> None:
        super().__init__(reactor, threads=threads, timeout=timeout, allowed_networks=allowed_networks)
        self._clock = clock

    async def deliver(self, message: OutboxMessage) -> None:
        try:
            quotation, reply = quotation_message(message)
        except ValueError as e:
            raise Undeliverable(str(e)) from None
        if quotation.expired(self._clock.seconds()):
            raise Undeliverable(f"quotation {quotation.quotation_id} expired before it could be delivered")
        assert reply.reply_to is not None  # quotation_message() makes sure
        target = CallbackTarget(reply.reply_to, reply.message_id, encoding_of(reply.soap_version))
        await self._poster.post(get_quotation_response_callback(quotation, target,
                                                                message_id(quotation.quotation_id, message.seq)))
