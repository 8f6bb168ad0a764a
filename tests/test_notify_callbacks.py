"""Status call-backs over the wire: a Submit with statusNotification All or
Final, a real receiver on loopback, every message schema-valid and related
to the client's MessageID; a receiver that refuses, then accepts; a target
refused at send time; and (slow) a SIGKILL with messages pending."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import attrs
import pytest
import pytest_twisted
from lxml import etree
from twisted.internet import reactor, task

from oseod.config import DEMO_COLLECTION, Config, NotificationsConfig
from oseod.model.orders import Notification, OrderStatus, StatusInfo, StatusNotification
from oseod.notify.callbacks import StatusCallbacks, message_id
from oseod.notify.sender import OutboxSender
from oseod.oseo.namespaces import OSEO
from oseod.store.connection import Redis
from oseod.store.orders import OrderStore
from oseod.store.outbox import CALLBACK, OutboxStore
from tests.callback_receiver import Receiver, receiver
from tests.daemon import Daemon
from tests.oseo_schema import assert_valid, requires_schemas
from tests.polling import eventually, wait_for
from tests.test_http_ordering import WSA, envelope, order_id_of, server, submit, token  # noqa: F401 - fixture
from tests.test_http_ordering import cancel as cancel_request
from tests.test_store_orders import make_order
from tests.pools import POOLS

S = OrderStatus
LOOPBACK = NotificationsConfig(allowed_networks=("127.0.0.0/8",), retry_delay=0.1, timeout=10.0)


def addressing(reply_to: str, message_id: str = "urn:uuid:client-1") -> str:
    return (f'<wsa:MessageID xmlns:wsa="{WSA}">{message_id}</wsa:MessageID>'
            f'<wsa:ReplyTo xmlns:wsa="{WSA}"><wsa:Address>{reply_to}</wsa:Address></wsa:ReplyTo>')


def read(body: bytes) -> tuple[str, str, str, str]:
    """A call-back's (wsa:To, wsa:MessageID, wsa:RelatesTo, the order's status), schema-checked."""
    payload = assert_valid(body)
    assert payload.tag == f"{{{OSEO}}}SubmitResponse", etree.tostring(payload)[:300]
    root = etree.fromstring(body)
    header = {etree.QName(e).localname: (e.text or "").strip() for e in root.iter(f"{{{WSA}}}*")}
    status = payload.findtext(f".//{{{OSEO}}}orderMonitorSpecification/{{{OSEO}}}orderStatusInfo/{{{OSEO}}}status")
    return header["To"], header["MessageID"], header["RelatesTo"], status or ""


@requires_schemas
@pytest_twisted.ensureDeferred
async def test_an_all_order_reports_each_change_to_its_reply_to(server: Any) -> None:
    srv = await server(Config(notifications=LOOPBACK))
    code, capabilities = await srv.call(f'<GetCapabilities xmlns="{OSEO}" service="OS"/>')
    submit_caps = capabilities.find(f".//{{{OSEO}}}SubmitCapabilities")
    assert code == 200 and submit_caps is not None and submit_caps.get("asynchronous") == "true"
    srv.parts.outbox.start()
    try:
        with receiver() as client:
            code, ack, _ = await srv.post(envelope(submit("a", "b", notification="All"),
                                                   token("alice", "alice-password") + addressing(client.url)))
            assert code == 200
            order_id = order_id_of(ack)

            async def completed() -> bool:
                return any(read(b)[3] == "Completed" for b in client.bodies())

            await eventually(completed, 30, "the Completed call-back")
            calls = [read(b) for b in client.bodies()]
            assert [status for *_, status in calls] == ["InProduction", "Completed"]
            assert {(to, relates) for to, _, relates, _ in calls} == {(client.url, "urn:uuid:client-1")}
            assert len({mid for _, mid, _, _ in calls}) == 2
            headers = client.received[0][0]
            assert headers["content-type"].startswith("application/soap+xml")
            assert order_id in client.bodies()[0].decode()
    finally:
        await srv.parts.outbox.stop()


@pytest_twisted.ensureDeferred
async def test_a_refusing_receiver_gets_the_same_messages_once_it_accepts(redis: Redis) -> None:
    store, clock = OrderStore(redis), task.Clock()
    clock.advance(1000)
    from oseod.core.ordering import OrderingService

    ordering = OrderingService(store, Config(), clock)
    channel = StatusCallbacks(ordering, reactor, timeout=10.0, allowed_networks=("127.0.0.0/8",), threads=POOLS)
    out = OutboxSender(OutboxStore(redis), {CALLBACK: channel}, clock, max_attempts=5, retry_delay=10.0,
                       timeout=10.0)
    with receiver() as client:
        client.refusing = True
        order = attrs.evolve(make_order(), notification=Notification(StatusNotification.ALL, client.url,
                                                                     "urn:uuid:c2", "1.1"))
        order_id = (await store.create(order)).order_id
        for n, status in enumerate((S.InProduction, S.Completed)):
            await store.set_order_status(order_id, StatusInfo(status, changed_at=clock.seconds() + n / 1000))
        out.wake()
        await out.drain()
        counters = await OutboxStore(redis).counters()
        assert client.bodies() == [] and counters.get(f"{CALLBACK}:retried", 0) >= 1, (counters, await store.callback_failure(order_id))
        client.refusing = False
        clock.advance(10.0)
        for _ in range(3):
            out.wake()
            await out.drain()
        statuses = [read(b) for b in client.bodies()]
        assert [s for *_, s in statuses] == ["InProduction", "Completed"]
        created = (await store.get(order_id)).created_at  # type: ignore[union-attr]
        assert [m for _, m, _, _ in statuses] == [message_id(order_id, created, 1), message_id(order_id, created, 2)]
        assert client.received[0][0]["soapaction"] == '"SubmitResponse"'  # SOAP 1.1, as the Submit came


@pytest_twisted.ensureDeferred
async def test_a_target_in_the_providers_network_is_given_up_at_send_time(redis: Redis) -> None:
    store, clock = OrderStore(redis), task.Clock()
    from oseod.core.ordering import OrderingService

    channel = StatusCallbacks(OrderingService(store, Config(), clock), reactor, timeout=10.0,
                              threads=POOLS)  # nothing allowed
    out = OutboxSender(OutboxStore(redis), {CALLBACK: channel}, clock, max_attempts=5, retry_delay=10.0,
                       timeout=10.0)
    with receiver() as client:
        order = attrs.evolve(make_order(), notification=Notification(StatusNotification.FINAL, client.url,
                                                                     "urn:uuid:c3", "1.2"))
        order_id = (await store.create(order)).order_id
        await store.set_order_status(order_id, StatusInfo(S.Failed, changed_at=clock.seconds()))
        out.wake()
        await out.drain()
        assert client.bodies() == []
        failure = await store.callback_failure(order_id)
        assert failure is not None and failure.attempts == 1 and "loopback" in failure.error


@requires_schemas
@pytest.mark.slow
def test_messages_pending_at_a_sigkill_are_delivered_after_the_restart(tmp_path: Path) -> None:
    config = tmp_path / "oseod.toml"
    config.write_text('[notifications]\nallowed_networks = ["127.0.0.0/8"]\nretry_delay = 0.2\nmax_attempts = 100\n')
    with receiver() as client:
        client.refusing = True
        daemon = Daemon(tmp_path / "data", "--config", str(config)).start()
        try:
            assert daemon.ctl("user", "add", "alice", "--password-stdin", stdin="alice-password").returncode == 0
            body = envelope(submit("k1", "k2", notification="All"),
                            token("alice", "alice-password") + addressing(client.url, "urn:uuid:killed"))
            status, _, answer = daemon.request("POST", "/oseo", body, {"Content-Type": "application/soap+xml"})
            assert status == 200, answer
            order_id = order_id_of(assert_valid(answer))
            wait_for(lambda: b"Completed" in daemon.request("GET", f"/admin/api/orders/{order_id}", headers={
                "Authorization": f"Bearer {(tmp_path / 'data' / 'admin.token').read_text().strip()}"})[2], 30,
                "the order completed (its call-backs refused meanwhile)")
            daemon.kill_group()
        finally:
            daemon.cleanup()
        assert client.bodies() == []
        client.refusing = False
        again = Daemon(tmp_path / "data", "--config", str(config)).start()
        try:
            wait_for(lambda: len(client.bodies()) >= 2, 30, "the call-backs after the restart")
            calls = [read(b) for b in client.bodies()]
            distinct = list(dict.fromkeys((mid, s) for _, mid, _, s in calls))
            assert [s for _, s in distinct] == ["InProduction", "Completed"]
            assert {relates for _, _, relates, _ in calls} == {"urn:uuid:killed"}
        finally:
            again.stop(signal.SIGTERM)
            again.cleanup()


@requires_schemas
@pytest_twisted.ensureDeferred
async def test_a_cancel_that_asks_for_notification_gets_a_cancel_response(server: Any) -> None:
    moderated = attrs.evolve(DEMO_COLLECTION, id="urn:x:moderated", moderation="manual", order_types=("PRODUCT_ORDER",))
    srv = await server(Config(notifications=LOOPBACK, collections=(DEMO_COLLECTION, moderated)))
    srv.parts.outbox.start()
    try:
        with receiver() as client:
            code, ack = await srv.call(submit("c1", collection="urn:x:moderated"))
            order_id = order_id_of(ack)
            cancel = cancel_request(order_id).replace("<statusNotification>None", "<statusNotification>Final")
            code, answer, _ = await srv.post(envelope(cancel, token("alice", "alice-password")
                                                      + addressing(client.url, "urn:uuid:the-cancel")))
            assert code == 200, etree.tostring(answer)

            async def arrived() -> bool:
                return bool(client.bodies())

            await eventually(arrived, 30, "the CancelResponse")
            payload = assert_valid(client.bodies()[0])
            assert payload.tag == f"{{{OSEO}}}CancelResponse"
            root = etree.fromstring(client.bodies()[0])
            assert root.findtext(f".//{{{WSA}}}RelatesTo") == "urn:uuid:the-cancel"
            assert payload.findtext(f".//{{{OSEO}}}orderStatusInfo/{{{OSEO}}}status") == "Cancelled"
    finally:
        await srv.parts.outbox.stop()


@pytest_twisted.ensureDeferred
async def test_https_targets_must_show_a_certificate_the_server_trusts(redis: Redis, tmp_path: Path) -> None:
    import ssl

    from tests.smtp_server import make_tls

    pems = make_tls(tmp_path / "tls")  # a CA of the test's own: trusted by nobody else
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(pems.cert), str(pems.key))
    store, clock = OrderStore(redis), task.Clock()
    clock.advance(1000)
    from oseod.core.ordering import OrderingService

    channel = StatusCallbacks(OrderingService(store, Config(), clock), reactor, timeout=10.0,
                              allowed_networks=("127.0.0.0/8",), threads=POOLS)
    out = OutboxSender(OutboxStore(redis), {CALLBACK: channel}, clock, max_attempts=5, retry_delay=10.0,
                       timeout=10.0)
    with receiver(context) as client:
        order = attrs.evolve(make_order(), notification=Notification(StatusNotification.FINAL, client.url,
                                                                     "urn:uuid:tls", "1.2"))
        order_id = (await store.create(order)).order_id
        await store.set_order_status(order_id, StatusInfo(S.Completed, changed_at=clock.seconds()))
        out.wake()
        await out.drain()
        await out.stop()
        assert client.bodies() == []  # refused before a byte of the message went out
        counters = await OutboxStore(redis).counters()
        assert counters.get(f"{CALLBACK}:retried") == 1 and not counters.get(f"{CALLBACK}:sent")
        [pending] = await OutboxStore(redis).claim(clock.seconds() + 60, 60.0, 10)
        assert "certificate" in pending.error.lower() or "verify" in pending.error.lower(), pending.error
