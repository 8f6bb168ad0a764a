"""ODIP completion notifications: orders placed through the core with an
OData NotificationEndpoint, driven to Completed or Failed, and what reaches
a real receiver on loopback (the JSON, the Basic auth), a real SMTP server
(mailto:), the outbox's log and counters; the endpoints Submit refuses."""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import os
import threading
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor, task

from oseod.auth.account import Account
from oseod.auth.secrets import SecretBox
from oseod.config import DEMO_COLLECTION, Config, EmailConfig, NotificationsConfig
from oseod.core.ordering import OrderingService
from oseod.core.production import ItemProgress
from oseod.core.validation import check_notification
from oseod.model.errors import RequestRejected
from oseod.model.orders import (
    DeliveryChoice,
    DeliveryMethod,
    ItemSpec,
    Notification,
    Order,
    OrderSpec,
    OrderStatus,
    OrderType,
    StatusNotification,
)
from oseod.notify.callbacks import MAIL_DESTINATION, StatusCallbacks
from oseod.notify.mail import SmtpMailSender
from oseod.model.outbox import OutboxMessage
from oseod.notify.sender import OutboxSender
from oseod.odata.ids import order_id_of, order_uuid, product_uuid
from oseod.odata.notification import (
    CompletedProduct,
    completion_body,
    completion_mail,
    mail_recipient,
    sealed_name,
)
from oseod.odata.values import parse_time
from oseod.store.connection import Redis
from oseod.store.orders import OrderStore
from oseod.store.outbox import CALLBACK, OutboxStore
from tests.callback_receiver import serving
from tests.parts import make_parts
from tests.polling import eventually
from tests.pools import POOLS
from tests.smtp_server import SmtpServer

S = OrderStatus
ALICE = Account("alice")
START = 1_700_000_000.0
LOOPBACK = ("127.0.0.0/8",)
CONFIG = Config(notifications=NotificationsConfig(allowed_networks=LOOPBACK))


# ------------------------------------------------------------------ a receiver


class OdipReceiver(http.server.ThreadingHTTPServer):
    """An ODIP client's notification service: keeps every POST, answers
    ``answer`` (201 unless a test says otherwise)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.answer = 201
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/notify"

    def notifications(self) -> list[tuple[dict[str, str], dict[str, Any]]]:
        with self.lock:
            return [(headers, json.loads(body)) for headers, body in self.received]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: OdipReceiver

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with self.server.lock:
            code = self.server.answer
            self.server.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def odip_receiver() -> contextlib.AbstractContextManager[OdipReceiver]:
    return serving(OdipReceiver())


# ------------------------------------------------------------------ helpers


def spec(*identifiers: str) -> OrderSpec:
    return OrderSpec(order_type=OrderType.PRODUCT_ORDER, reference="odip order",
                     items=tuple(ItemSpec(item_id=str(n), product_id=i, collection_id=DEMO_COLLECTION.id,
                                          delivery=DeliveryChoice(DeliveryMethod.ONLINE_DATA_ACCESS, "http"))
                                 for n, i in enumerate(identifiers, 1)))


def odata_notification(box: SecretBox | None, endpoint: str, user: str | None = None,
                       password: str | None = None, owner: str = "alice") -> Notification:
    """As the OData side makes it from NotificationEndpoint/EpUsername/EpPassword."""
    sealed = None if password is None or box is None else box.seal(sealed_name(owner), endpoint, password)
    return Notification(StatusNotification.FINAL, endpoint=endpoint, endpoint_user=user, endpoint_password=sealed)


class World:
    """The core on a Clock, with the call-back channel and the outbox's sender."""

    def __init__(self, redis: Redis, *, allowed: tuple[str, ...] = LOOPBACK, mailer: Any = None,
                 max_attempts: int = 5) -> None:
        self.clock = task.Clock()
        self.clock.advance(START)
        self.store = OrderStore(redis)
        self.outbox_store = OutboxStore(redis)
        config = Config(notifications=NotificationsConfig(allowed_networks=LOOPBACK),
                        email=EmailConfig(smtp_host="127.0.0.1" if mailer is not None else "",
                                          sender="oseod@provider.example"))
        self.ordering = OrderingService(self.store, config, self.clock)
        self.progress = ItemProgress(self.store, config, self.clock)
        self.box = SecretBox(os.urandom(32))
        self.channel = StatusCallbacks(self.ordering, reactor, threads=POOLS, timeout=10.0, allowed_networks=allowed,
                                       secrets=self.box, mailer=mailer, mail_from="oseod@provider.example",
                                       service="oseod test")
        self.sender = OutboxSender(self.outbox_store, {CALLBACK: self.channel}, self.clock,
                                   max_attempts=max_attempts, retry_delay=10.0, timeout=10.0)

    async def submit(self, notification: Notification, *identifiers: str) -> Order:
        return await self.ordering.submit(ALICE, spec(*(identifiers or ("S2A_MSIL1C_0001",))), notification)

    async def complete(self, order: Order) -> None:
        for item in order.items:
            await self.progress.complete_item(order.order_id, item.spec.item_id)

    async def send(self) -> None:
        self.sender.wake()
        await self.sender.drain()

    async def outcomes(self, order_id: str) -> list[str]:
        return [e.outcome for e in await self.outbox_store.log(CALLBACK, order_id)]


# ------------------------------------------------------------------ pure parts


def test_the_completion_body_names_the_product_and_the_order_in_uuid_form() -> None:
    product = CompletedProduct("abcdefghjkmnpq", "1", "S2A_MSIL1C_0001.zip")
    body = json.loads(completion_body(product, START + 0.25))
    assert body == {"@odata.context": "$metadata#Notification/$entity",
                    "ProductId": product_uuid("abcdefghjkmnpq", "1"), "ProductName": "S2A_MSIL1C_0001.zip",
                    "ProductionOrderId": order_uuid("abcdefghjkmnpq"),
                    "NotificationDate": "2023-11-14T22:13:20.250Z"}
    assert order_id_of(body["ProductionOrderId"]) == "abcdefghjkmnpq"
    assert parse_time(body["NotificationDate"]) == START + 0.25
    assert product_uuid("abcdefghjkmnpq", "2") != body["ProductId"]
    assert mail_recipient("mailto:ops@client.example") == "ops@client.example"
    assert mail_recipient("MAILTO:a%40b@c.example?subject=x") == "a@b@c.example"
    assert mail_recipient("https://client.example/n") is None
    mail = completion_mail([product], START, service="oseod")
    assert order_uuid("abcdefghjkmnpq") in mail.subject and "completed" in mail.subject
    assert "S2A_MSIL1C_0001.zip" in mail.body and product.product_id in mail.body


@pytest.mark.parametrize("endpoint", [
    "ftp://client.example/n", "javascript:alert(1)", "client.example/notify", "http:///notify", "",
    "http://127.0.0.1:8080/n", "http://localhost/n", "http://10.1.2.3/n", "http://[::1]/n",
    "http://client.example:99999/n", "http://client.example/a b", "mailto:", "mailto:not-an-address",
    "mailto:a@b.example,c@d.example", "http://client.example/" + "x" * 2001,
])
def test_submit_refuses_an_endpoint_it_will_not_send_to(endpoint: str) -> None:
    with pytest.raises(RequestRejected) as refused:
        check_notification(odata_notification(None, endpoint), ())
    assert (refused.value.code, refused.value.locator) == ("InvalidParameterValue", "NotificationEndpoint")
    assert "NotificationEndpoint" in str(refused.value) and len(str(refused.value)) < 600


def test_submit_takes_http_https_and_mailto_endpoints() -> None:
    for endpoint in ("http://client.example/notify", "https://client.example:8443/odip?x=1",
                     "mailto:ops@client.example", "http://127.0.0.1:8080/n"):
        check_notification(odata_notification(None, endpoint), LOOPBACK)
    with pytest.raises(RequestRejected, match="sends no e-mail"):
        check_notification(odata_notification(None, "mailto:ops@client.example"), (), mail=False)


# ------------------------------------------------------------------ over the wire


@pytest_twisted.ensureDeferred
async def test_the_core_refuses_a_bad_endpoint_at_submit(redis: Redis) -> None:
    world = World(redis)
    for endpoint, text in (("gopher://client.example/", "http"), ("mailto:ops@client.example", "no e-mail")):
        with pytest.raises(RequestRejected, match=text) as refused:
            await world.submit(odata_notification(world.box, endpoint))
        assert refused.value.locator == "NotificationEndpoint"
    no_loopback = OrderingService(world.store, Config(), world.clock)
    with pytest.raises(RequestRejected, match="loopback"):
        await no_loopback.submit(ALICE, spec("p"), odata_notification(world.box, "http://127.0.0.1:1/n"))


@pytest_twisted.ensureDeferred
async def test_a_completed_order_posts_the_odip_json_with_basic_auth_after_retries(redis: Redis) -> None:
    world = World(redis)
    with odip_receiver() as client:
        client.answer = 503
        order = await world.submit(odata_notification(world.box, client.url, "odip-user", "pässword:1"))
        assert order.notification.endpoint_password not in (None, "pässword:1")
        await world.send()
        assert client.received == []  # nothing queued before the order ends
        await world.complete(order)
        assert (await world.ordering.order(order.order_id)).status.status is S.Completed
        await world.send()
        assert len(client.received) == 1 and await world.outcomes(order.order_id) == ["retry"]
        client.answer = 302  # a redirect is not followed: a failed attempt too
        world.clock.advance(10.0)
        await world.send()
        assert len(client.received) == 2 and await world.outcomes(order.order_id) == ["retry", "retry"]
        client.answer = 204
        world.clock.advance(20.0)
        await world.send()
        assert await world.outcomes(order.order_id) == ["retry", "retry", "sent"]
        headers, body = client.notifications()[-1]
        assert headers["content-type"] == "application/json"
        assert headers["authorization"] == "Basic " + base64.b64encode("odip-user:pässword:1".encode()).decode()
        assert body["@odata.context"] == "$metadata#Notification/$entity"
        assert body["ProductionOrderId"] == order_uuid(order.order_id)
        assert body["ProductId"] == product_uuid(order.order_id, "1")
        assert body["ProductName"] == "S2A_MSIL1C_0001"  # no result files listed: the identifier
        assert parse_time(body["NotificationDate"]) == START  # when it completed
        # Every attempt carried the same bytes; none after the delivery.
        assert {b for _, b in client.received} == {client.received[-1][1]}
        world.clock.advance(1000.0)
        await world.send()
        assert len(client.received) == 3
        assert (await world.outbox_store.counters()).get(f"{CALLBACK}:sent") == 1


@pytest_twisted.ensureDeferred
async def test_each_product_of_a_batch_is_notified_and_no_user_means_no_authorization(redis: Redis) -> None:
    world = World(redis)
    with odip_receiver() as client:
        order = await world.submit(odata_notification(world.box, client.url), "P1", "P2", "P3")
        await world.complete(order)
        # Queued for the endpoint's host: limited with the other deliveries to it.
        [message] = await world.outbox_store.claim(world.clock.seconds(), 1.0, 10)
        assert (message.channel, message.data["to"]) == (CALLBACK, client.url)
        assert world.channel.destination(message) == "127.0.0.1"
        world.clock.advance(2.0)  # the lease taken above ends
        await world.send()
        assert await world.outcomes(order.order_id) == ["sent"], await world.outbox_store.log(CALLBACK, order.order_id)
        notes = client.notifications()
        assert [n["ProductName"] for _, n in notes] == ["P1", "P2", "P3"]
        assert len({n["ProductId"] for _, n in notes}) == 3
        assert all("authorization" not in headers for headers, _ in notes)


@pytest_twisted.ensureDeferred
async def test_a_failed_or_cancelled_order_sends_nothing_and_counts_as_delivered(redis: Redis) -> None:
    world = World(redis)
    with odip_receiver() as client:
        failed = await world.submit(odata_notification(world.box, client.url, "u", "p"))
        await world.progress.fail_item(failed.order_id, "1", "the input is corrupt")
        cancelled = await world.submit(odata_notification(world.box, client.url))
        await world.ordering.cancel(ALICE, cancelled.order_id, Notification())
        await world.send()
        assert client.received == []
        for order in (failed, cancelled):
            assert await world.outcomes(order.order_id) == ["sent"]
        assert (await world.outbox_store.counters()).get(f"{CALLBACK}:sent") == 2


@pytest_twisted.ensureDeferred
async def test_an_endpoint_in_the_providers_network_is_given_up_at_send_time(redis: Redis) -> None:
    world = World(redis, allowed=())  # Submit allowed loopback; the sender does not
    with odip_receiver() as client:
        order = await world.submit(odata_notification(world.box, client.url))
        await world.complete(order)
        await world.send()
        assert client.received == []
        log = await world.outbox_store.log(CALLBACK, order.order_id)
        assert [e.outcome for e in log] == ["given up"] and "NotificationEndpoint" in log[0].detail
        failure = await world.store.callback_failure(order.order_id)
        assert failure is not None and "loopback" in failure.error


@pytest_twisted.ensureDeferred
async def test_a_password_sealed_with_another_key_is_given_up(redis: Redis) -> None:
    world = World(redis)
    with odip_receiver() as client:
        other = SecretBox(os.urandom(32))
        order = await world.submit(odata_notification(other, client.url, "u", "p"))
        await world.complete(order)
        await world.send()
        assert client.received == []
        log = await world.outbox_store.log(CALLBACK, order.order_id)
        assert [e.outcome for e in log] == ["given up"] and "unsealed" in log[0].detail
        assert "p" not in log[0].detail.split()


@pytest_twisted.ensureDeferred
async def test_a_mailto_endpoint_gets_an_email(redis: Redis) -> None:
    smtp = await SmtpServer().start()
    try:
        mailer = SmtpMailSender(EmailConfig(smtp_host="127.0.0.1", smtp_port=smtp.port, starttls="off",
                                            sender="oseod@provider.example"), reactor)
        world = World(redis, mailer=mailer)
        order = await world.submit(odata_notification(world.box, "mailto:ops@client.example"), "S1B_IW_GRDH_7")
        await world.complete(order)
        await world.send()

        async def arrived() -> bool:
            return bool(smtp.received)

        await eventually(arrived, 30, "the completion mail")
        mail = smtp.received[0]
        assert list(mail.recipients) == ["ops@client.example"]
        parsed = mail.parsed()
        assert order_uuid(order.order_id) in parsed["Subject"]
        text = parsed.get_content()
        assert "S1B_IW_GRDH_7" in text and product_uuid(order.order_id, "1") in text
        assert await world.outcomes(order.order_id) == ["sent"]
    finally:
        await smtp.stop()


def test_mailto_notifications_share_the_mail_servers_place() -> None:
    channel = StatusCallbacks(None, reactor, threads=POOLS, timeout=1.0)  # type: ignore[arg-type]
    for to, where in (("mailto:a@b.example", MAIL_DESTINATION), ("https://client.example:8443/n", "client.example")):
        assert channel.destination(OutboxMessage(CALLBACK, "o1", 1, {"to": to})) == where


# ------------------------------------------------------------------ the daemon's parts


@pytest_twisted.ensureDeferred
async def test_the_daemons_outbox_names_the_product_by_its_result_file(redis: Redis) -> None:
    box = SecretBox(os.urandom(32))
    parts = make_parts(CONFIG, redis, digest_secrets=box)
    await parts.engine.start()
    parts.outbox.start()
    try:
        with odip_receiver() as client:
            order = await parts.ordering.submit(ALICE, spec("S2B_MSIL2A_42"),
                                                odata_notification(box, client.url, "me", "secret"))

            async def notified() -> bool:
                return bool(client.received)

            await eventually(notified, 30, "the completion notification")
            headers, body = client.notifications()[0]
            assert headers["authorization"] == "Basic " + base64.b64encode(b"me:secret").decode()
            assert body["ProductionOrderId"] == order_uuid(order.order_id)
            assert (await parts.ordering.order(order.order_id)).status.status in (S.Completed, S.Downloaded)
            assert body["ProductName"] == "S2B_MSIL2A_42.dat"  # the dummy processor's file

            async def logged() -> bool:
                detail = await parts.actions.order_detail(order.order_id)
                return [(e.channel, e.outcome) for e in detail.outbox] == [(CALLBACK, "sent")]

            # What the console and the admin API show of the order's notifications.
            await eventually(logged, 30, "the notification in the order's outbox log")
    finally:
        await parts.outbox.stop()
        await parts.engine.drain()
        await parts.engine.stop()
