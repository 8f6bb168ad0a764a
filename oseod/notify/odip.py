"""The ODIP completion notification, sent by the status call-back channel
(:mod:`oseod.notify.callbacks`) for an order placed over OData with a
NotificationEndpoint.

Such an order has statusNotification Final and no wsa:ReplyTo: the outbox
queues its final change like any call-back (same queue, retries, per-host
limits, console log). Here that change becomes, when the order completed,
the ODIP JSON (:mod:`oseod.odata.notification`), one per product, POSTed
to the endpoint with HTTP Basic from NotificationEpUsername and the
password unsealed (it is stored sealed, :mod:`oseod.auth.secrets`); an
answer 200, 201, 202 or 204 is delivered, anything else a failed attempt.
The endpoint's host is checked again before each attempt, as a call-back's
is. A ``mailto:`` endpoint gets an e-mail through the daemon's mail sender
instead. A failed or cancelled order gets nothing (ODIP has no message for
it): its change is done at once.

With several products (a batch order), a retry sends them all again: the
receiver tells them apart by ProductId.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from ..auth.secrets import SecretBox
from ..model.orders import Order, OrderStatus, StatusInfo
from ..odata.notification import (
    CONTENT_TYPE,
    DELIVERED,
    CompletedProduct,
    completion_body,
    completion_mail,
    mail_recipient,
    sealed_name,
)
from .mail import IMailSender
from .mails import send_outbox_mail
from .posting import CallbackPoster
from .sender import Undeliverable

WITH_RESULT = frozenset({OrderStatus.Completed, OrderStatus.Downloaded})
# (owner, order id, item ids) -> the items' result files by item id (Deliverables.listings).
Listings = Callable[[str, str, Sequence[str]], Awaitable[dict[str, list[Any]]]]


class OdipNotifier:
    log = Logger()

    def __init__(self, poster: CallbackPoster, clock: IReactorTime, *, secrets: SecretBox | None = None,
                 listings: Listings | None = None, mailer: IMailSender | None = None, mail_from: str = "",
                 service: str = "") -> None:
        self._poster = poster
        self._clock = clock
        self._secrets = secrets
        self._listings = listings
        self._mailer = mailer
        self._mail_from = mail_from
        self._service = service

    async def deliver(self, order: Order, status: StatusInfo, seq: int) -> None:
        """Tell ``order``'s NotificationEndpoint of its change to ``status``
        (the message ``seq`` of its queue); raise as IOutboxChannel.deliver."""
        endpoint = order.notification.endpoint or ""
        if status.status is not OrderStatus.Completed:
            self.log.info("order {order_id} is {status}: ODIP sends no notification of it to {endpoint}",
                          order_id=order.order_id, status=status.status.value, endpoint=endpoint)
            return
        products = await self._products(order)
        if not products:
            self.log.warn("order {order_id} completed without a product to notify {endpoint} of",
                          order_id=order.order_id, endpoint=endpoint)
            return
        recipient = mail_recipient(endpoint)
        if recipient is not None:
            await self._mail(order, status, seq, recipient, products)
            return
        headers = {"Content-Type": CONTENT_TYPE, **self._authorization(order)}
        # Dated when the order completed: every attempt sends the same bytes.
        notified_at = status.changed_at or self._clock.seconds()
        for product in products:
            # A connection each: a notification is one per order, and a simple
            # receiver (HTTP/1.0, no "Connection: close") closes the connection
            # after its answer, which a kept one would run into at the next post.
            code, _ = await self._poster.exchange(endpoint, completion_body(product, notified_at), headers,
                                                  what="NotificationEndpoint", keep=False)
            if code not in DELIVERED:
                raise ConnectionError(f"{endpoint} answered HTTP {code}")

    async def _products(self, order: Order) -> list[CompletedProduct]:
        done = [i for i in order.items if i.status.status in WITH_RESULT]
        files: dict[str, list[Any]] = {}
        if self._listings is not None and done:
            try:
                files = await self._listings(order.owner, order.order_id, [i.spec.item_id for i in done])
            except OSError as e:  # the results' disk: the identifiers name the products well enough
                self.log.warn("cannot list the results of order {order_id}: {error}", order_id=order.order_id,
                              error=str(e))
        products = []
        for item in done:
            found = sorted(str(f.name) for f in files.get(item.spec.item_id, ()))
            name = found[0] if found else item.spec.product_id or item.spec.item_id
            products.append(CompletedProduct(order.order_id, item.spec.item_id, name))
        return products

    def _authorization(self, order: Order) -> dict[str, str]:
        notification = order.notification
        if not notification.endpoint_user:
            return {}
        password = b""
        if notification.endpoint_password:
            opened = (None if self._secrets is None else
                      self._secrets.unseal(sealed_name(order.owner), notification.endpoint or "",
                                           notification.endpoint_password))
            if opened is None:
                raise Undeliverable("the NotificationEpPassword cannot be unsealed (the data directory's "
                                    "secret.key is not the one it was sealed with)")
            password = opened
        credentials = notification.endpoint_user.encode("utf-8") + b":" + password
        return {"Authorization": f"Basic {base64.b64encode(credentials).decode('ascii')}"}

    async def _mail(self, order: Order, status: StatusInfo, seq: int, recipient: str,
                    products: list[CompletedProduct]) -> None:
        if self._mailer is None:
            raise Undeliverable(f"cannot send to {order.notification.endpoint}: e-mail is off ([email] smtp_host)")
        text = completion_mail(products, status.changed_at or self._clock.seconds(), service=self._service)
        await send_outbox_mail(self._mailer, sender=self._mail_from, recipients=(recipient,), subject=text.subject,
                               body=text.body, date=status.changed_at or self._clock.seconds(),
                               key=f"oseod:odip-mail:{order.order_id}:{order.created_at!r}:{seq}",
                               what="NotificationEndpoint mail")
