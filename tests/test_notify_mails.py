"""E-mail from the outbox, end to end: orders moderated, accepted, rejected,
completed and failed over the real HTTP stack, mails received by a real
SMTP server on loopback (Twisted's ESMTP), to the right people."""

from __future__ import annotations

from typing import Any

import attrs
import pytest_twisted

from oseod.config import DEMO_COLLECTION, Config, EmailConfig, OrdersConfig
from oseod.model.orders import StatusInfo
from oseod.model.mailevents import MailEvent
from oseod.notify.mails import mail_events
from oseod.model.orders import OrderStatus as S
from tests.polling import eventually
from tests.smtp_server import SmtpServer
from tests.test_http_ordering import order_id_of, server, submit  # noqa: F401 - server is a fixture


def test_which_changes_make_which_mails() -> None:
    def events(old: str, status: S, text: str = "") -> list[MailEvent]:
        return mail_events(old, StatusInfo(status, text))

    assert events("", S.Submitted) == [MailEvent.MODERATION]
    assert events("", S.Accepted) == events("Submitted", S.Accepted) == [MailEvent.ACCEPTED]
    assert events("Submitted", S.Cancelled, "Rejected by an operator: no") == [MailEvent.REJECTED]
    assert events("Submitted", S.Cancelled, "Cancelled at the user's request") == [MailEvent.CANCELLED]
    assert events("InProduction", S.Completed) == [MailEvent.ORDER_READY]
    assert events("InProduction", S.Failed) == [MailEvent.FAILED, MailEvent.FAILED_ADMIN]
    assert events("Accepted", S.Terminated) == [MailEvent.SUBSCRIPTION_ENDED]
    assert events("Accepted", S.InProduction) == events("Completed", S.Downloaded) == []


@pytest_twisted.ensureDeferred
async def test_mails_reach_the_owner_and_the_administrators(server: Any) -> None:
    smtp = await SmtpServer().start()
    try:
        manual = attrs.evolve(DEMO_COLLECTION, id="urn:x:moderated", moderation="manual",
                              order_types=("PRODUCT_ORDER",))
        config = Config(orders=OrdersConfig(), collections=(DEMO_COLLECTION, manual),
                        email=EmailConfig(smtp_host="127.0.0.1", smtp_port=smtp.port, starttls="off",
                                          sender="oseod@provider.example", admins=("ops@provider.example",)))
        srv = await server(config)
        await srv.accounts.change("alice", email="alice@client.example")
        srv.parts.mail.start()
        srv.parts.outbox.start()
        try:
            await _exercise(srv, smtp)
        finally:
            await srv.parts.outbox.stop()
    finally:
        await smtp.stop()


async def _exercise(srv: Any, smtp: SmtpServer) -> None:
    code, ack = await srv.call(submit("m1", collection="urn:x:moderated"))
    moderated = order_id_of(ack)
    code, ack = await srv.call(submit("d1"))
    demo = order_id_of(ack)
    await srv.parts.ordering.reject(moderated, "no such product")

    def mails() -> list[tuple[tuple[str, ...], str, str]]:
        return [(tuple(r.recipients), r.parsed()["Subject"], r.parsed().get_content()) for r in smtp.received]

    async def arrived() -> bool:
        subjects = " | ".join(s for _, s, _ in mails())
        return subjects.count(moderated) >= 2 and subjects.count(demo) >= 2

    await eventually(arrived, 30, "the moderation, rejection, acceptance and completion mails")
    by_subject = {subject: (to, body) for to, subject, body in mails()}
    admins = [(to, body) for subject, (to, body) in by_subject.items() if moderated in subject and
              to == ("ops@provider.example",)]
    assert admins and "/console/orders/" + moderated in admins[0][1]
    rejected = [body for subject, (to, body) in by_subject.items() if moderated in subject and
                to == ("alice@client.example",)]
    assert rejected and "no such product" in rejected[0]
    ready = [body for subject, (to, body) in by_subject.items() if demo in subject and f"/{demo}/d1/" in body]
    assert ready, mails()


@pytest_twisted.ensureDeferred
async def test_a_subscriptions_batch_ready_is_mailed_with_its_urls(server: Any) -> None:
    smtp = await SmtpServer().start()
    try:
        config = Config(email=EmailConfig(smtp_host="127.0.0.1", smtp_port=smtp.port, starttls="off",
                                          sender="oseod@provider.example"))
        srv = await server(config)
        await srv.accounts.change("alice", email="alice@client.example")
        srv.parts.mail.start()
        srv.parts.outbox.start()
        try:
            code, ack = await srv.call(submit("s1", order_type="SUBSCRIPTION_ORDER"))
            order_id = order_id_of(ack)
            assert await srv.parts.ordering.timeslot("urn:oseod:demo", "2026-11-25T12:00:00Z") == [order_id]
            await srv.parts.engine.drain()

            async def arrived() -> bool:
                return any("batch" in r.parsed()["Subject"] for r in smtp.received)

            await eventually(arrived, 30, "the batch_ready mail")
            mail = next(r for r in smtp.received if "batch" in r.parsed()["Subject"])
            assert mail.recipients == ["alice@client.example"] or tuple(mail.recipients) == ("alice@client.example",)
            assert f"/{order_id}/" in mail.parsed().get_content()
        finally:
            await srv.parts.outbox.stop()
    finally:
        await smtp.stop()
