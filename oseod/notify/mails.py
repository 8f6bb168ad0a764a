"""The e-mail channel of the outbox: who hears of an order's change, and
the mail itself.

With e-mail on, every new order and change of an order's status is queued
(with the change, see :mod:`oseod.store.orders`); here each becomes the
mails it calls for (:func:`mail_events`): to the administrators when an
order awaits moderation or fails; to the owner when it is accepted,
rejected, ready, failed, cancelled, or its subscription ends. Each
collection chooses its events ([[collection]] email_events). A change that
calls for no mail, or for nobody, is done at once. The texts come from the
templates (:mod:`oseod.notify.mailtext`); a mail's Message-ID is derived
from the order and the change, so a mail sent again after a failure is
recognisably the same. A mail server that is down delays the mails, never
the orders.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timezone

from zope.interface import implementer

from ..config import Config
from ..core.ordering import REJECTED, OrderingService
from ..model import codec
from ..model.accounts import Account, account_of
from ..model.addresses import mail_address
from ..model.errors import RequestRejected
from ..model.mailevents import MailEvent
from ..model.orders import Order, OrderStatus, StatusInfo
from ..model.outbox import OutboxMessage
from ..store.users import UserStore
from .mail import IMailSender, MailError, MailMessage
from .mailtext import MailTemplates, console_url, order_values
from .recipients import mail_recipients
from .sender import IOutboxChannel, Undeliverable

S = OrderStatus


def mail_events(old: str, new: StatusInfo) -> list[MailEvent]:
    """The mails a change of an order's status from ``old`` ('' for a new
    order) to ``new`` calls for."""
    status = new.status
    if status is S.Submitted and not old:
        return [MailEvent.MODERATION]
    if status is S.Accepted:
        return [MailEvent.ACCEPTED]
    if status is S.Cancelled:
        rejected = old == S.Submitted.value and (new.additional_info or "").startswith(REJECTED)
        return [MailEvent.REJECTED if rejected else MailEvent.CANCELLED]
    if status is S.Completed:
        return [MailEvent.ORDER_READY]
    if status is S.Failed:
        return [MailEvent.FAILED, MailEvent.FAILED_ADMIN]
    if status is S.Terminated:
        return [MailEvent.SUBSCRIPTION_ENDED]
    return []


@implementer(IOutboxChannel)
class MailChannel:
    def __init__(self, config: Config, ordering: OrderingService, users: UserStore, mailer: IMailSender, *,
                 result_url: Callable[[str, str, str | None, str | None], str], console_base: Callable[[], str]) -> None:
        self._config = config
        self._ordering = ordering
        self._users = users
        self._templates: MailTemplates | None = None
        self._mailer = mailer
        self._result_url = result_url
        self._console_base = console_base

    def start(self) -> None:
        """Read the templates (an operator's override with a mistake stops
        the start, naming the file)."""
        self._templates = MailTemplates.load(self._config.email.templates_dir)

    def destination(self, message: OutboxMessage) -> str:
        return self._config.email.smtp_host

    async def deliver(self, message: OutboxMessage) -> None:
        change = codec.loads(StatusInfo, str(message.data["info"]))
        batch = message.data.get("batch")
        events = ([MailEvent.BATCH_READY] if message.data.get("event") == "batch_ready"
                  else mail_events(str(message.data.get("old", "")), change))
        if not events:
            return
        try:
            order = await self._ordering.order(message.name)
        except RequestRejected:
            raise Undeliverable(f"order {message.name} no longer exists") from None
        owner = await self._owner(order.owner)
        collections = sorted({i.spec.collection_id for i in order.items if i.spec.collection_id})
        for event in events:
            recipients = mail_recipients(event, owner, self._config, collections)
            if recipients:
                await self._send(event, order, change, recipients, message.seq, batch)

    async def _owner(self, name: str) -> Account:
        record = await self._users.get(name)
        # A directory's user with no local account: no address to write to.
        return account_of(record) if record is not None else Account(name=name)

    async def _send(self, event: MailEvent, order: Order, change: StatusInfo, recipients: list[str], seq: int,
                    batch: object = None) -> None:
        values: dict[str, object] = {**order_values(order, service=self._config.service.title),
                                     "status": change.status.value, "status_info": change.additional_info or "",
                                     "reason": change.additional_info or "", "item_count": str(len(order.items)),
                                     "console_url": console_url(self._console_base(), order.order_id)}
        if event in (MailEvent.ORDER_READY, MailEvent.BATCH_READY):
            ready = [r for r in self._ordering.ready_in(order) if batch is None or r.item.batch == batch]
            values["batch"] = "" if batch is None else str(batch)
            # With packaging, the batches' packages (once each); else each item's place.
            values["urls"] = list(dict.fromkeys(
                self._result_url(r.protocol, order.order_id, None, r.package) if r.package is not None
                else self._result_url(r.protocol, order.order_id, r.item.spec.item_id, None) for r in ready))
            values["expires"] = _iso(min((r.expires_at for r in ready), default=0.0))
        if self._templates is None:
            raise ConnectionError("the e-mail channel was not started")
        text = self._templates.render(event, values)
        await send_outbox_mail(self._mailer, sender=self._config.email.sender, recipients=tuple(recipients),
                               subject=text.subject, body=text.body, date=change.changed_at,
                               key=f"oseod:mail:{order.order_id}:{order.created_at!r}:{seq}:{event.value}",
                               what=f"{event.value} mail")


async def send_outbox_mail(mailer: IMailSender, *, sender: str, recipients: tuple[str, ...], subject: str, body: str,
                           date: float, key: str, what: str) -> None:
    """Send the mail of one outbox message. Its Message-ID is derived from
    ``key`` (the same for every attempt, so a mail sent again after a
    failure reads as the same one); a permanent refusal gives the message
    up (Undeliverable, naming ``what``), a passing one is raised to be retried."""
    try:
        domain = mail_address(sender, display_name=True).rpartition("@")[2] or "localhost"
    except ValueError:
        domain = "localhost"
    mail = MailMessage(sender=sender, recipients=recipients, subject=subject, body=body, date=date,
                       message_id=f"<{uuid.uuid5(uuid.NAMESPACE_URL, key)}@{domain}>")
    try:
        await mailer.send(mail)
    except MailError as e:
        if e.permanent:
            raise Undeliverable(f"{what}: {e}") from None
        raise


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else ""
