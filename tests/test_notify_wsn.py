"""WS-Notification over the wire: a user subscribes on the OSEO endpoint,
hears (wsnt:Notify, through the outbox) when one of their own orders
completes, not of another user's, not after Unsubscribe; the Capabilities
name the producer; bad consumers are refused."""

from __future__ import annotations

from typing import Any

import pytest_twisted
from lxml import etree

from oseod.config import Config
from oseod.oseo.namespaces import OSEO, WSNT
from tests.callback_receiver import receiver
from tests.oseo_schema import assert_valid, requires_schemas
from tests.polling import eventually
from tests.test_http_ordering import WSA, code_of, envelope, order_id_of, server, submit, token  # noqa: F401
from tests.test_notify_callbacks import LOOPBACK

OSEOD_NS = "urn:oseod:ns"


def subscribe(consumer: str, topic: str | None = None) -> str:
    filters = "" if topic is None else (
        f'<wsnt:Filter><wsnt:TopicExpression Dialect="http://docs.oasis-open.org/wsn/t-1/TopicExpression/Simple" '
        f'xmlns:oseo="{OSEO}">oseo:{topic}</wsnt:TopicExpression></wsnt:Filter>')
    return (f'<wsnt:Subscribe xmlns:wsnt="{WSNT}" xmlns:wsa="{WSA}"><wsnt:ConsumerReference>'
            f"<wsa:Address>{consumer}</wsa:Address></wsnt:ConsumerReference>{filters}"
            f"<wsnt:InitialTerminationTime>PT1H</wsnt:InitialTerminationTime></wsnt:Subscribe>")


def notified(body: bytes) -> tuple[str, str]:
    """A Notify's (topic message element, order id)."""
    root = etree.fromstring(body)
    message = root.find(f".//{{{WSNT}}}Message")
    assert message is not None and len(message), body[:400]
    event = message[0]
    return etree.QName(event).localname, event.findtext(f"{{{OSEO}}}orderId") or ""


@requires_schemas
@pytest_twisted.ensureDeferred
async def test_a_subscriber_hears_of_its_own_orders_until_it_unsubscribes(server: Any) -> None:
    srv = await server(Config(notifications=LOOPBACK))
    code, capabilities = await srv.call(f'<GetCapabilities xmlns="{OSEO}" service="OS"/>')
    section = capabilities.find(f".//{{{OSEO}}}Notifications")
    assert section is not None and srv.url in etree.tostring(section).decode()  # the producer: this endpoint
    srv.parts.outbox.start()
    try:
        with receiver() as consumer:
            code, answer, _ = await srv.post(envelope(subscribe(consumer.url, "OrderCompletion"),
                                                      token("alice", "alice-password")))
            assert code == 200, etree.tostring(answer)
            subscription_id = answer.findtext(f".//{{{OSEOD_NS}}}SubscriptionId")
            assert subscription_id and answer.findtext(f"{{{WSNT}}}TerminationTime")

            code, ack = await srv.call(submit("w1"))
            mine = order_id_of(ack)
            code, ack = await srv.call(submit("w2"), "bob", "bob-password")
            theirs = order_id_of(ack)

            async def heard() -> bool:
                return any(notified(b)[1] == mine for b in consumer.bodies())

            await eventually(heard, 30, "the Notify of alice's completed order")
            await srv.parts.engine.drain()
            assert {notified(b) for b in consumer.bodies()} == {("OrderCompletion", mine)}
            assert theirs not in {order for _, order in map(notified, consumer.bodies())}
            assert_valid(consumer.bodies()[0])

            header = token("alice", "alice-password") + (
                f'<oseod:SubscriptionId xmlns:oseod="{OSEOD_NS}">{subscription_id}</oseod:SubscriptionId>')
            code, gone, _ = await srv.post(envelope(f'<wsnt:Unsubscribe xmlns:wsnt="{WSNT}"/>', header))
            assert code == 200 and gone.tag == f"{{{WSNT}}}UnsubscribeResponse"
            code, again, _ = await srv.post(envelope(f'<wsnt:Unsubscribe xmlns:wsnt="{WSNT}"/>',
                                                     token("alice", "alice-password") + header[header.index("<oseod"):]))
            assert code == 400 and code_of(again)[0] == "InvalidParameterValue"
            code, ack = await srv.call(submit("w3"))
            later = order_id_of(ack)
            await srv.parts.engine.drain()
            await srv.parts.outbox.drain()
            assert later not in {order for _, order in map(notified, consumer.bodies())}
    finally:
        await srv.parts.outbox.stop()


@pytest_twisted.ensureDeferred
async def test_consumers_in_the_providers_network_or_not_http_are_refused(server: Any) -> None:
    srv = await server()  # no allowed networks
    for consumer in ("http://127.0.0.1:9/n", "http://10.0.0.1/n", "ftp://client.example.org/n", "urn:x",
                     # loopback and private IPv4 addresses inside IPv6 ones (IPv4-compatible, NAT64, 6to4)
                     "http://[::127.0.0.1]:9/n", "http://[64:ff9b::7f00:1]/n", "http://[2002:a00:1::1]/n"):
        code, fault, _ = await srv.post(envelope(subscribe(consumer), token("alice", "alice-password")))
        assert code == 400 and code_of(fault) == ("InvalidParameterValue", "ConsumerReference"), consumer
    code, fault, _ = await srv.post(envelope(subscribe("http://client.example.org/n")))
    assert code == 401  # anonymous: no subscription
