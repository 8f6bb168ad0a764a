"""onlineDataDelivery: the engine, on a real Redis, pushes items' results to
the client's own FTP server, here Twisted's stock server on loopback over a
temporary directory (user bob, password "secret"; anonymous may log in but
not write)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import pytest_twisted
from twisted.cred import checkers
from twisted.cred.portal import IRealm, Portal
from twisted.internet import defer, interfaces, protocol, reactor
from twisted.protocols import ftp
from twisted.python import filepath
from zope.interface import implementer
from zope.interface.verify import verifyObject

from oseod.config import DEMO_COLLECTION, Config, DeliveryConfig, NotificationsConfig, ProcessingConfig
from oseod.core.deliverables import Deliverable
from oseod.core.destinations import FtpDestination, ftp_destination
from oseod.jobs.dummy import content
from oseod.jobs.push import FtpPusher, IPusher, PushFailed
from oseod.model.errors import RequestRejected
from oseod.model.orders import (
    DeliveryChoice,
    DeliveryMethod,
    ItemSpec,
    Notification,
    OnlineAddress,
    OrderSpec,
    OrderStatus,
    OrderType,
)
from oseod.oseo.namespaces import OSEO
from oseod.store.connection import Redis
from tests.fake_dns import FixedResolver
from tests.oseo_schema import requires_schemas
from tests.polling import eventually
from tests.test_http_ordering import BASE, code_of, get_status, order_id_of, server  # noqa: F401 - a fixture
from tests.test_jobs_engine import ALICE, CONFIG, Daemon, daemon

S = OrderStatus
DEMO = DEMO_COLLECTION.id
PUSH = DeliveryChoice(DeliveryMethod.ONLINE_DATA_DELIVERY, "ftp")
LOOPBACK = NotificationsConfig(allowed_networks=("127.0.0.0/8",))
BIG = 1_000_000  # bytes: an upload of several chunks
PUSHING = attrs.evolve(CONFIG, notifications=LOOPBACK, collections=(
    DEMO_COLLECTION, attrs.evolve(DEMO_COLLECTION, id="urn:x:big", processor_options={"size": BIG})))


# ------------------------------------------------------------ the client's FTP server


@implementer(interfaces.IConsumer)
class _Breaking:
    """Takes the first bytes of an upload, then drops every session."""

    def __init__(self, consumer: Any, server: ClientServer) -> None:
        self._consumer = consumer
        self._server = server

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self._consumer.registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        self._consumer.unregisterProducer()

    def write(self, data: bytes) -> None:
        self._consumer.write(data)
        if self._server.break_next:
            self._server.break_next = False
            self._server.drop_sessions()


@implementer(ftp.IWriteFile)
class _BreakingWriter:
    def __init__(self, writer: Any, server: ClientServer) -> None:
        self._writer = writer
        self._server = server

    def receive(self) -> defer.Deferred[Any]:
        return self._writer.receive().addCallback(_Breaking, self._server)

    def close(self) -> defer.Deferred[None]:
        return self._writer.close()


class _Shell(ftp.FTPShell):
    def __init__(self, home: Path, server: ClientServer) -> None:
        ftp.FTPShell.__init__(self, filepath.FilePath(str(home)))
        self._server = server

    def openForWriting(self, path: Any) -> defer.Deferred[Any]:
        opened = ftp.FTPShell.openForWriting(self, path)
        if self._server.break_next:
            opened.addCallback(_BreakingWriter, self._server)
        return opened


@implementer(IRealm)
class _Realm:
    def __init__(self, server: ClientServer) -> None:
        self._server = server

    def requestAvatar(self, avatar_id: Any, mind: Any, *interfaces: Any) -> Any:
        if avatar_id is checkers.ANONYMOUS:
            return ftp.IFTPShell, ftp.FTPAnonymousShell(filepath.FilePath(str(self._server.root))), lambda: None
        return ftp.IFTPShell, _Shell(self._server.root / avatar_id, self._server), lambda: None


class _Factory(ftp.FTPFactory):
    def __init__(self, portal: Portal) -> None:
        ftp.FTPFactory.__init__(self, portal)
        self.sessions: list[Any] = []
        self.most_at_once = 0

    def buildProtocol(self, addr: Any) -> Any:
        built = ftp.FTPFactory.buildProtocol(self, addr)  # a ProtocolWrapper around the FTP session
        if built is not None:
            self.sessions.append(built)
            self.most_at_once = max(self.most_at_once, self.connectionCount)
        return built


@attrs.define
class ClientServer:
    root: Path
    port: int = 0
    listening: Any = None
    factory: Any = None
    break_next: bool = False  # drop every session at the first bytes of the next upload

    @property
    def home(self) -> Path:
        return self.root / "bob"

    def files(self) -> dict[str, bytes]:
        """Every file under bob's home, by path relative to it."""
        return {str(p.relative_to(self.home)): p.read_bytes() for p in sorted(self.home.rglob("*")) if p.is_file()}

    def drop_sessions(self) -> None:
        for session in self.factory.sessions:
            dtp = getattr(session.wrappedProtocol, "dtpInstance", None)
            if dtp is not None and dtp.transport is not None:
                dtp.transport.abortConnection()
            if session.transport is not None:
                session.transport.abortConnection()

    async def stop(self) -> None:
        if self.listening is not None:
            await self.listening.stopListening()
            self.listening = None


@pytest_twisted.async_yield_fixture
async def client_server(tmp_path: Path) -> AsyncIterator[ClientServer]:
    root = tmp_path / "client-ftp"
    (root / "bob").mkdir(parents=True)
    server = ClientServer(root)
    users = checkers.InMemoryUsernamePasswordDatabaseDontUse()
    users.addUser("bob", "secret")  # the stock FTP server checks str names and passwords
    server.factory = _Factory(Portal(_Realm(server), [checkers.AllowAnonymousAccess(), users]))
    server.listening = reactor.listenTCP(0, server.factory, interface="127.0.0.1")
    server.port = server.listening.getHost().port
    yield server
    await server.stop()
    server.drop_sessions()


# ------------------------------------------------------------ helpers


def push_spec(*products: str, address: str, user: str | None = "bob", password: str | None = "secret",
              path: str | None = "/in/box", collection: str = DEMO, **item: Any) -> OrderSpec:
    return OrderSpec(OrderType.PRODUCT_ORDER, delivery=PUSH,
                     online_addresses=(OnlineAddress("ftp", address, user, password, path),),
                     items=tuple(ItemSpec(item_id=f"i{n}", product_id=p, collection_id=collection, **item)
                                 for n, p in enumerate(products)))


async def infos(d: Daemon, order_id: str) -> list[tuple[OrderStatus, str | None]]:
    order = await d.service.get(ALICE, order_id)
    return [(i.status.status, i.status.additional_info) for i in order.items]


def first_item_status(answer: Any) -> tuple[str | None, str | None]:
    """The first item's status and additionalStatusInfo in a GetStatus answer."""
    item = answer.find(f".//{{{OSEO}}}orderItem/{{{OSEO}}}orderItemStatusInfo")
    assert item is not None
    return item.findtext(f"{{{OSEO}}}status"), item.findtext(f"{{{OSEO}}}additionalStatusInfo")


async def pushed(d: Daemon, spec: OrderSpec) -> str:
    """Submit ``spec``, run the engine until it is idle; the order id."""
    order = await d.service.submit(ALICE, spec, Notification())
    await d.engine.start()
    await d.engine.drain()
    return order.order_id


async def retried(d: Daemon) -> None:
    d.clock.advance(CONFIG.processing.retry_delay)  # the next attempt is due ...
    await d.engine.drain()  # ... and made


# ------------------------------------------------------------ pushes


@pytest.mark.parametrize(("address", "path"), [
    ("127.0.0.1:{port}", "/in/box"),  # an absolute path, from the root of bob's tree
    ("127.0.0.1:{port}", "in/box"),  # a relative one, from where bob logs in (the same here)
    ("ftp://127.0.0.1:{port}/in/box", None),  # an ftp:// URL carrying the path
])
@pytest_twisted.ensureDeferred
async def test_results_are_pushed_under_their_names_into_the_path(redis: Redis, client_server: ClientServer,
                                                                  address: str, path: str | None) -> None:
    d = daemon(redis, config=PUSHING)
    spec = push_spec("p-a", "p-b", address=address.format(port=client_server.port), path=path)
    order_id = await pushed(d, spec)
    assert client_server.files() == {"in/box/p-a.dat": content("i0", 1024), "in/box/p-b.dat": content("i1", 1024)}
    where = f"ftp://bob@127.0.0.1:{client_server.port}/in/box"
    assert await infos(d, order_id) == [(S.Completed, f"Pushed 1 file (1024 bytes) to {where}")] * 2
    order = await d.service.get(ALICE, order_id)
    assert order.status.status is S.Completed
    # What went to the client is not offered for download here as well.
    assert await d.service.ready_items(ALICE, order_id) == []
    await d.engine.stop()


@pytest_twisted.ensureDeferred
async def test_sessions_to_one_server_are_limited(redis: Redis, client_server: ClientServer) -> None:
    d = daemon(redis, config=attrs.evolve(PUSHING, delivery=DeliveryConfig(max_sessions_per_server=1)))
    order_id = await pushed(d, push_spec(*(f"p{n}" for n in range(4)), address=f"127.0.0.1:{client_server.port}"))
    assert [status for status, _ in await infos(d, order_id)] == [S.Completed] * 4  # made 4 at once, pushed 1 by 1
    assert len(client_server.files()) == 4 and client_server.factory.most_at_once == 1
    await d.engine.stop()


@pytest_twisted.ensureDeferred
async def test_items_to_download_are_not_pushed_and_a_second_push_replaces_the_first(
        redis: Redis, client_server: ClientServer) -> None:
    d = daemon(redis, config=PUSHING)
    download = DeliveryChoice(DeliveryMethod.ONLINE_DATA_ACCESS, "http")
    spec = push_spec("p-a", address=f"127.0.0.1:{client_server.port}", path="in")
    spec = attrs.evolve(spec, items=(*spec.items, ItemSpec("kept", product_id="p-kept", collection_id=DEMO,
                                                           delivery=download)))
    first = await pushed(d, spec)
    assert await infos(d, first) == [(S.Completed, f"Pushed 1 file (1024 bytes) to "
                                                   f"ftp://bob@127.0.0.1:{client_server.port}/in"),
                                     (S.Completed, "Completed")]
    assert [r.item.spec.item_id for r in await d.service.ready_items(ALICE, first)] == ["kept"]
    (client_server.home / "in" / "p-a.dat").write_bytes(b"an older p-a")
    second = await pushed(d, spec)
    assert (await infos(d, second))[0][0] is S.Completed
    assert client_server.files() == {"in/p-a.dat": content("i0", 1024)}
    await d.engine.stop()


@pytest_twisted.ensureDeferred
async def test_a_refused_login_fails_each_attempt_then_the_item(redis: Redis, client_server: ClientServer) -> None:
    d = daemon(redis, config=PUSHING)
    order_id = await pushed(d, push_spec("p", address=f"127.0.0.1:{client_server.port}", password="wrong"))
    why = (f"pushing to ftp://bob@127.0.0.1:{client_server.port}/in/box failed: logging in as bob: "
           f"the server answered 530 Sorry, Authentication failed.")
    assert await infos(d, order_id) == [(S.InProduction, f"Attempt 1 failed: {why}; trying again in 10 s")]
    await retried(d)
    assert await infos(d, order_id) == [(S.Failed, why)]
    assert (await d.service.get(ALICE, order_id)).status.status is S.Failed
    assert client_server.files() == {}
    await d.engine.stop()


@pytest_twisted.ensureDeferred
async def test_a_server_gone_fails_each_attempt_then_the_item(redis: Redis, client_server: ClientServer) -> None:
    await client_server.stop()
    d = daemon(redis, config=PUSHING)
    order_id = await pushed(d, push_spec("p", address=f"127.0.0.1:{client_server.port}"))
    why = (f"pushing to ftp://bob@127.0.0.1:{client_server.port}/in/box failed: cannot connect to 127.0.0.1 "
           f"port {client_server.port}: connection refused")
    assert await infos(d, order_id) == [(S.InProduction, f"Attempt 1 failed: {why}; trying again in 10 s")]
    await retried(d)
    assert await infos(d, order_id) == [(S.Failed, why)]
    await d.engine.stop()


@pytest_twisted.ensureDeferred
async def test_a_refused_upload_fails(redis: Redis, client_server: ClientServer) -> None:
    once = attrs.evolve(PUSHING, processing=ProcessingConfig(max_attempts=1))
    d = daemon(redis, config=once)
    # Anonymous may log in, but not write.
    order_id = await pushed(d, push_spec("p", address=f"127.0.0.1:{client_server.port}", user=None, password=None,
                                         path=None))
    [(status, info)] = await infos(d, order_id)
    assert status is S.Failed
    assert info is not None and info.startswith(
        f"pushing to ftp://127.0.0.1:{client_server.port} failed: storing p.dat: the server answered 550 ")
    await d.engine.stop()


@pytest_twisted.ensureDeferred
async def test_a_broken_upload_never_carries_the_final_name(redis: Redis, client_server: ClientServer) -> None:
    d = daemon(redis, config=PUSHING)
    client_server.break_next = True
    spec = push_spec("p", address=f"127.0.0.1:{client_server.port}", path="in", collection="urn:x:big")
    order_id = await pushed(d, spec)
    [(status, info)] = await infos(d, order_id)
    assert status is S.InProduction and "Attempt 1 failed: " in (info or "")
    assert "the server closed the connection" in (info or "")
    assert set(client_server.files()) == {"in/.p.dat.partial"}  # the upload broke under its temporary name
    await retried(d)
    assert await infos(d, order_id) == [(S.Completed, f"Pushed 1 file ({BIG} bytes) to "
                                                      f"ftp://bob@127.0.0.1:{client_server.port}/in")]
    assert client_server.files() == {"in/p.dat": content("i0", BIG)}  # the temporary name renamed away
    await d.engine.stop()


class _Silent(protocol.Protocol):
    pass


@pytest_twisted.ensureDeferred
async def test_a_server_that_falls_silent_times_out(redis: Redis) -> None:
    accepted: list[_Silent] = []

    class Silent(protocol.Factory):
        def buildProtocol(self, addr: Any) -> _Silent:
            accepted.append(_Silent())
            return accepted[-1]

    port = reactor.listenTCP(0, Silent(), interface="127.0.0.1")
    config = attrs.evolve(PUSHING, processing=ProcessingConfig(max_attempts=1),
                          delivery=DeliveryConfig(idle_timeout=50.0))
    d = daemon(redis, config=config)
    order = await d.service.submit(ALICE, push_spec("p", address=f"127.0.0.1:{port.getHost().port}"),
                                   Notification())
    await d.engine.start()

    async def connected() -> bool:
        return bool(accepted)

    await eventually(connected, what="the push to connect")
    d.clock.advance(50.0)
    await d.engine.drain()
    assert await infos(d, order.order_id) == [(
        S.Failed, f"pushing to ftp://bob@127.0.0.1:{port.getHost().port}/in/box failed: logging in as bob: "
                  f"no answer from the server for 50 s")]
    await d.engine.stop()
    await port.stopListening()


# ------------------------------------------------------------ where pushes may go


@pytest.mark.parametrize(("address", "fragment"), [
    ("127.0.0.1:2121", "127.0.0.1 is a loopback address"),
    ("localhost", "localhost is a loopback address"),
    ("[::1]:21", "::1 is a loopback address"),
    ("ftp://10.1.2.3/in", "10.1.2.3 is a private address"),
    ("169.254.169.254", "169.254.169.254 is a link-local address"),
])
@pytest_twisted.ensureDeferred
async def test_submit_refuses_the_providers_own_networks(redis: Redis, address: str, fragment: str) -> None:
    d = daemon(redis)  # no allowed_networks
    with pytest.raises(RequestRejected) as refused:
        await d.service.submit(ALICE, push_spec("p", address=address), Notification())
    assert (refused.value.code, refused.value.locator) == ("InvalidParameterValue", "onlineAddress")
    assert "deliveryInformation/onlineAddress" in refused.value.text and fragment in refused.value.text


@pytest.mark.parametrize(("spec", "code", "locator", "fragment"), [
    (attrs.evolve(push_spec("p", address="ftp.client.example"),
                  online_addresses=(OnlineAddress("sftp", "sftp.client.example"),)),
     "InvalidParameterValue", "onlineAddress", 'deliveryInformation/onlineAddress of protocol "ftp" (given: sftp)'),
    (attrs.evolve(push_spec("p", address="ftp.client.example"), online_addresses=()),
     "MissingParameterValue", "onlineAddress", "deliveryInformation/onlineAddress"),
    (attrs.evolve(push_spec("p", address="ftp.client.example"),
                  delivery=DeliveryChoice(DeliveryMethod.ONLINE_DATA_DELIVERY, "https")),
     "InvalidParameterValue", "deliveryOptions", 'onlineDataDelivery over "https" (offers: ftp, ftps, sftp)'),
    (push_spec("p", address="ftp://bob:secret@ftp.client.example/in"),
     "InvalidParameterValue", "onlineAddress", "must not hold credentials"),
    (push_spec("p", address="ftp.client.example", path="in\r\nDELE x"),
     "InvalidParameterValue", "onlineAddress", "path holds control characters"),
    (push_spec("p", address="ftp.client.example:99999"), "InvalidParameterValue", "onlineAddress", "bad port"),
    (push_spec("p", address="not a host"), "InvalidParameterValue", "onlineAddress", "names no host"),
])
@pytest_twisted.ensureDeferred
async def test_submit_checks_the_push_destination(redis: Redis, spec: OrderSpec, code: str, locator: str,
                                                  fragment: str) -> None:
    d = daemon(redis)
    with pytest.raises(RequestRejected) as refused:
        await d.service.submit(ALICE, spec, Notification())
    assert (refused.value.code, refused.value.locator) == (code, locator)
    assert fragment in refused.value.text


@pytest_twisted.ensureDeferred
async def test_a_collection_may_offer_no_push(redis: Redis) -> None:
    config = attrs.evolve(CONFIG, collections=(attrs.evolve(DEMO_COLLECTION, online_data_delivery=()),))
    d = daemon(redis, config=config)
    with pytest.raises(RequestRejected) as refused:
        await d.service.submit(ALICE, push_spec("p", address="ftp.client.example"), Notification())
    assert refused.value.locator == "deliveryOptions" and "(offers: none)" in refused.value.text


@pytest_twisted.ensureDeferred
async def test_a_name_that_resolves_into_the_providers_network_is_not_pushed_to(tmp_path: Path) -> None:
    class Reactor:
        nameResolver = FixedResolver("10.20.30.40")

        def connectTCP(self, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError("no connection should be tried")

    pusher = FtpPusher(Reactor(), reactor, connect_timeout=5.0, idle_timeout=5.0)
    verifyObject(IPusher, pusher)
    result = tmp_path / "r.dat"
    result.write_bytes(b"x")
    with pytest.raises(PushFailed) as failed:
        await pusher.push(OnlineAddress("ftp", "files.client.example", "bob", "secret", "in"),
                          [Deliverable("r.dat", result, 1, 0.0)])
    assert str(failed.value) == ("pushing to ftp://bob@files.client.example/in failed: files.client.example: "
                                 "10.20.30.40 is a private address, which this service does not deliver to")
    assert "secret" not in str(failed.value)


@pytest.mark.parametrize(("server_address", "path", "expected"), [
    ("ftp.client.example", None, FtpDestination("ftp.client.example", 21, "")),
    ("FTP.Client.Example.:2121", "/in", FtpDestination("ftp.client.example", 2121, "/in")),
    ("[2001:db8::1]:990", None, FtpDestination("2001:db8::1", 990, "")),
    ("2001:db8::1", "x", FtpDestination("2001:db8::1", 21, "x")),
    ("ftp://ftp.client.example:2121/in%20box/", None, FtpDestination("ftp.client.example", 2121, "/in box/")),
    ("ftp://ftp.client.example/ignored", "/wins", FtpDestination("ftp.client.example", 21, "/wins")),
])
def test_server_addresses_take_several_forms(server_address: str, path: str | None,
                                             expected: FtpDestination) -> None:
    assert ftp_destination(OnlineAddress("ftp", server_address, path=path)) == expected


def test_a_destination_never_shows_its_password() -> None:
    destination = ftp_destination(OnlineAddress("ftp", "[2001:db8::1]:2121", "bob", "secret", "in"))
    assert str(destination) == "ftp://bob@[2001:db8::1]:2121/in"
    assert "secret" not in repr(destination)


# ------------------------------------------------------------ over the wire


def _submit_push(address: str) -> str:
    return (f'<Submit xmlns="{OSEO}" {BASE}><orderSpecification>'
            "<deliveryInformation><onlineAddress><protocol>ftp</protocol>"
              f"<serverAddress>{address}</serverAddress><userName>bob</userName>"
              "<userPassword>secret</userPassword><path>drop</path></onlineAddress></deliveryInformation>"
              "<deliveryOptions><onlineDataDelivery><protocol>ftp</protocol></onlineDataDelivery></deliveryOptions>"
              "<orderType>PRODUCT_ORDER</orderType><orderItem><itemId>a</itemId><productId>"
              "<identifier>p-a</identifier><collectionId>urn:oseod:demo</collectionId></productId></orderItem>"
              "</orderSpecification><statusNotification>None</statusNotification></Submit>")


@requires_schemas
@pytest_twisted.ensureDeferred
async def test_a_push_order_over_http(server: Any, client_server: ClientServer) -> None:
    srv = await server(Config(notifications=LOOPBACK))
    code, fault = await srv.call(_submit_push("10.1.2.3"))  # not in allowed_networks
    assert code == 400 and code_of(fault) == ("InvalidParameterValue", "onlineAddress")
    assert "10.1.2.3 is a private address" in "".join(fault.itertext())
    code, ack = await srv.call(_submit_push(f"127.0.0.1:{client_server.port}"))
    assert code == 200
    order_id = order_id_of(ack)
    await srv.parts.engine.drain()
    assert client_server.files() == {"drop/p-a.dat": content("a", 1024)}
    code, status = await srv.call(get_status(order_id))
    assert first_item_status(status) == (
        "Completed", f"Pushed 1 file (1024 bytes) to ftp://bob@127.0.0.1:{client_server.port}/drop")
