"""The status call-back channel of the outbox: a SubmitResponse POSTed to
the order's ``wsa:ReplyTo`` for each change the outbox queued.

The message holds the order's status as it changed (the queue keeps every
change, in order); the rest of the monitor specification (the items) is the
order as it stands when the message goes out. The ``wsa:MessageID`` is
derived from the order and the message's place in its queue, so a message
sent again after a failure or a crash reads the same, and the client can
drop the duplicate. Only an answer that acknowledges the call-back
(``SubmitResponseAck``) counts as delivered; anything else (no answer, a
Fault, an error status, a timeout) is a failed attempt.

The target was checked at Submit; a host name is checked again, resolved,
right before each attempt, so that a name pointing into the provider's own
network (now, or after a change of its DNS) is refused.
"""

from __future__ import annotations

import socket
import uuid
from typing import Any
from urllib.parse import urlsplit

import attrs
import treq
from twisted.internet import defer
from twisted.web.http_headers import Headers
from twisted.web.iweb import IResponse
from zope.interface import implementer

from ..core.destinations import network_refusal
from ..core.ordering import OrderingService
from ..model import codec
from ..model.errors import RequestRejected
from ..model.orders import StatusInfo
from ..oseo.acks import parse_ack
from ..oseo.callbacks import CallbackKind, CallbackTarget, submit_response_callback
from ..store.outbox import OutboxMessage
from .sender import IOutboxChannel, Undeliverable

# A client's answer is an acknowledgement of a few hundred bytes; more than
# this is not read.
MAX_ANSWER_BYTES = 256 * 1024


def message_id(order_id: str, created_at: float, seq: int) -> str:
    """The call-back's wsa:MessageID: the same for every attempt of one message."""
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'oseod:order:{order_id}:{created_at!r}:{seq}')}"


class _TooLong(Exception):
    pass


@implementer(IOutboxChannel)
class StatusCallbacks:
    def __init__(self, ordering: OrderingService, reactor: Any, *, timeout: float,
                 allowed_networks: tuple[str, ...] = ()) -> None:
        self._ordering = ordering
        self._reactor = reactor
        self._timeout = timeout
        self._allowed = allowed_networks

    def destination(self, message: OutboxMessage) -> str:
        return urlsplit(str(message.data.get("to", ""))).hostname or "?"

    async def deliver(self, message: OutboxMessage) -> None:
        try:
            order = await self._ordering.order(message.name)
        except RequestRejected:
            raise Undeliverable(f"order {message.name} no longer exists") from None
        target = CallbackTarget.of_order(order)
        if target is None:
            raise Undeliverable(f"order {message.name} asks for no call-backs")
        status = codec.loads(StatusInfo, str(message.data["info"]))
        callback = submit_response_callback(attrs.evolve(order, status=status), target,
                                            message_id(order.order_id, order.created_at, message.seq),
                                            time_stamp=status.changed_at or None)
        await self._check_host(target.address)
        try:
            # No redirects: they would take the request where Submit never looked.
            response: IResponse = await treq.post(
                target.address, data=callback.body, headers=Headers({k: [v] for k, v in callback.headers.items()}),
                timeout=self._timeout, reactor=self._reactor, persistent=False, allow_redirects=False)
        except defer.CancelledError:
            raise ConnectionError(f"no answer from {target.address} within {self._timeout:g} s") from None
        except Exception as e:
            raise ConnectionError(f"{target.address}: {_reason(e)}") from None
        body = await self._read(response)
        if not 200 <= response.code < 300:
            raise ConnectionError(f"{target.address} answered HTTP {response.code}: "
                                  f"{parse_ack(CallbackKind.SUBMIT_RESPONSE, body, callback.message_id)}")
        outcome = parse_ack(CallbackKind.SUBMIT_RESPONSE, body, callback.message_id)
        if not outcome.acknowledged:
            raise ConnectionError(f"{target.address}: {outcome}")

    async def _check_host(self, address: str) -> None:
        host = urlsplit(address).hostname or ""
        try:
            found = await _resolve(self._reactor, host)
        except OSError as e:
            raise ConnectionError(f"cannot resolve {host}: {e.strerror or e}") from None
        for ip in found:
            refusal = network_refusal(ip, self._allowed)
            if refusal is not None:
                raise Undeliverable(f"wsa:ReplyTo {address}: {refusal}")

    async def _read(self, response: IResponse) -> bytes:
        parts: list[bytes] = []
        size = 0

        def collect(data: bytes) -> None:
            nonlocal size
            size += len(data)
            if size > MAX_ANSWER_BYTES:
                raise _TooLong()
            parts.append(data)

        try:
            await treq.collect(response, collect)
        except _TooLong:
            raise ConnectionError(f"the answer is longer than {MAX_ANSWER_BYTES} bytes") from None
        except Exception as e:
            raise ConnectionError(f"the answer broke off: {_reason(e)}") from None
        return b"".join(parts)


async def _resolve(reactor: Any, host: str) -> list[str]:
    from twisted.internet import threads

    infos = await threads.deferToThreadPool(reactor, reactor.getThreadPool(), socket.getaddrinfo, host, None,
                                            0, socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def _reason(error: BaseException) -> str:
    reasons = getattr(error, "reasons", None)  # twisted.web's ResponseFailed and friends
    if reasons:
        return "; ".join(str(r.value) or type(r.value).__name__ for r in reasons)
    return str(error) or type(error).__name__
