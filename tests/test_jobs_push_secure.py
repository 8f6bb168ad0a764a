"""onlineDataDelivery over sftp and ftps: pushes to real servers on loopback.

sftp: a writable conch server (tests/sftp_server.py) with its own ed25519
host key, pinned by the order or listed in known_hosts. ftps: pyftpdlib's
TLS_FTPHandler with a self-signed certificate for 127.0.0.1, trusted
through [delivery] ca_file, TLS required on both channels and the data
channels required to resume the control connection's TLS session (as
vsftpd's require_ssl_reuse)."""

from __future__ import annotations

import datetime
import ipaddress
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import pytest_twisted
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from OpenSSL._util import lib as _ssl_lib
from twisted.internet import defer, protocol, reactor, task
from zope.interface.verify import verifyObject

from oseod.config import DEMO_COLLECTION, PUSH_PROTOCOLS, Config
from oseod.core.deliverables import Deliverable
from oseod.core.destinations import FtpDestination, push_destination
from oseod.jobs.dummy import content
from oseod.jobs.push import IPusher, PushFailed
from oseod.jobs.pushers import default_pushers
from oseod.jobs.push_ftps import FtpsPusher
from oseod.jobs.push_sftp import SftpPusher, fingerprint
from oseod.model.errors import RequestRejected
from oseod.model.orders import DeliveryChoice, DeliveryMethod, Notification, OnlineAddress, OrderStatus
from oseod.oseo.namespaces import OSEO
from oseod.store.connection import Redis
from tests.daemon import Daemon
from tests.fake_dns import FixedResolver
from tests.oseo_schema import requires_schemas
from tests.polling import wait_for
from tests.pools import POOLS
from tests.sftp_server import SftpServer, new_key
from tests.test_http_ordering import BASE, code_of, get_status, order_id_of, server  # noqa: F401 - a fixture
from tests.test_jobs_engine import ALICE, CONFIG, daemon
from tests.test_jobs_push import LOOPBACK, first_item_status, infos, push_spec, pushed

SECURE = attrs.evolve(DEMO_COLLECTION, online_data_delivery=("ftp", "ftps", "sftp"))  # as the demo's
TIMEOUTS = {"connect_timeout": 10.0, "idle_timeout": 10.0, "allowed_networks": ("127.0.0.0/8",)}
BIG = 300_000  # bytes: several SFTP writes in flight, several FTPS data blocks


def results(tmp_path: Path, *sizes: int) -> list[Deliverable]:
    made = []
    for n, size in enumerate(sizes):
        path = tmp_path / f"r{n}.dat"
        path.write_bytes(content(f"r{n}", size))
        made.append(Deliverable(path.name, path, size, 0.0))
    return made


# ------------------------------------------------------------ sftp


@pytest.fixture
def sftp_server(tmp_path: Path) -> Iterator[SftpServer]:
    (tmp_path / "client-sftp").mkdir()
    server = SftpServer(tmp_path / "client-sftp")
    server.start()
    yield server
    server.listening.stopListening()


def sftp_address(server: SftpServer, pin: str | None, password: str | None = "secret",
                 path: str = "in/box") -> OnlineAddress:
    query = f"?fingerprint={pin}" if pin else ""
    return OnlineAddress("sftp", f"sftp://127.0.0.1:{server.port}{query}", "bob", password, path)


@pytest_twisted.ensureDeferred
async def test_sftp_push_with_a_pinned_host_key(tmp_path: Path, sftp_server: SftpServer) -> None:
    pusher = SftpPusher(reactor, reactor, **TIMEOUTS)
    verifyObject(IPusher, pusher)
    files = results(tmp_path, BIG, 10)
    told = await pusher.push(sftp_address(sftp_server, sftp_server.fingerprint), files)
    assert told == f"Pushed 2 files ({BIG + 10} bytes) to sftp://bob@127.0.0.1:{sftp_server.port}/in/box"
    assert sftp_server.files() == {"in/box/r0.dat": content("r0", BIG), "in/box/r1.dat": content("r1", 10)}
    # Under a temporary name, renamed once whole.
    assert sftp_server.renamed == ["in/box/r0.dat", "in/box/r1.dat"]
    # Again (a retried attempt): the older files are replaced.
    (tmp_path / "r1.dat").write_bytes(b"newer")
    files[1] = attrs.evolve(files[1], size=5)
    await pusher.push(sftp_address(sftp_server, sftp_server.fingerprint), files)
    assert sftp_server.files()["in/box/r1.dat"] == b"newer"


@pytest_twisted.ensureDeferred
async def test_sftp_push_refuses_a_host_key_other_than_the_pinned_one(tmp_path: Path,
                                                                     sftp_server: SftpServer) -> None:
    pin = fingerprint(new_key())
    with pytest.raises(PushFailed) as failed:
        await SftpPusher(reactor, reactor, **TIMEOUTS).push(sftp_address(sftp_server, pin), results(tmp_path, 10))
    assert str(failed.value) == (
        f"pushing to sftp://bob@127.0.0.1:{sftp_server.port}/in/box failed: exchanging keys: "
        f"host key of 127.0.0.1 ({sftp_server.fingerprint}) does not match {pin}")
    assert sftp_server.logins == [] and sftp_server.files() == {}


@pytest_twisted.ensureDeferred
async def test_sftp_push_checks_known_hosts_without_a_pin(tmp_path: Path, sftp_server: SftpServer) -> None:
    known_hosts = tmp_path / "known_hosts"
    pusher = SftpPusher(reactor, reactor, known_hosts=known_hosts, **TIMEOUTS)
    with pytest.raises(PushFailed) as failed:  # no known_hosts at all
        await pusher.push(sftp_address(sftp_server, None), results(tmp_path, 10))
    assert "cannot be checked: the order pins none" in str(failed.value)
    line = sftp_server.host_key.public().toString("openssh").decode()
    known_hosts.write_text(f"[127.0.0.1]:{sftp_server.port + 1} {line}\n")  # another port: another server
    with pytest.raises(PushFailed) as failed:
        await pusher.push(sftp_address(sftp_server, None), results(tmp_path, 10))
    assert str(failed.value).endswith(f"({sftp_server.fingerprint}) is not in known_hosts for "
                                      f"[127.0.0.1]:{sftp_server.port}")
    other = new_key().public().toString("openssh").decode()
    known_hosts.write_text(f"[127.0.0.1]:{sftp_server.port} {other}\n")
    with pytest.raises(PushFailed) as failed:
        await pusher.push(sftp_address(sftp_server, None), results(tmp_path, 10))
    assert str(failed.value).endswith(f"({sftp_server.fingerprint}) does not match the one in known_hosts")
    assert sftp_server.logins == []
    known_hosts.write_text(f"[127.0.0.1]:{sftp_server.port} {line}\n")
    await pusher.push(sftp_address(sftp_server, None), results(tmp_path, 10))
    assert sftp_server.files() == {"in/box/r0.dat": content("r0", 10)}


@pytest_twisted.ensureDeferred
async def test_sftp_push_logs_in_with_the_daemons_key(tmp_path: Path) -> None:
    key = new_key()
    (tmp_path / "id").write_bytes(key.toString("openssh"))
    (tmp_path / "client-sftp").mkdir()
    server = SftpServer(tmp_path / "client-sftp", client_key=key)
    server.start()
    try:
        pusher = SftpPusher(reactor, reactor, client_key=tmp_path / "id", **TIMEOUTS)
        await pusher.push(sftp_address(server, server.fingerprint, password=None, path="/"), results(tmp_path, 10))
        assert server.files() == {"r0.dat": content("r0", 10)}
    finally:
        server.listening.stopListening()


@pytest_twisted.ensureDeferred
async def test_sftp_push_with_a_wrong_password_fails_clearly(tmp_path: Path, sftp_server: SftpServer) -> None:
    with pytest.raises(PushFailed) as failed:
        await SftpPusher(reactor, reactor, **TIMEOUTS).push(
            sftp_address(sftp_server, sftp_server.fingerprint, password="wrong"), results(tmp_path, 10))
    assert str(failed.value).endswith("failed: logging in as bob: the server refused the login")
    assert "wrong" not in str(failed.value)


@pytest_twisted.ensureDeferred
async def test_sftp_push_to_a_server_that_never_answers_fails_after_idle_timeout(tmp_path: Path) -> None:
    heard: defer.Deferred[None] = defer.Deferred()

    class Silent(protocol.Protocol):
        def dataReceived(self, data: bytes) -> None:  # the client's version string: it is connected
            if not heard.called:
                heard.callback(None)

    port = reactor.listenTCP(0, protocol.Factory.forProtocol(Silent), interface="127.0.0.1")
    clock = task.Clock()
    try:
        pushing = defer.ensureDeferred(SftpPusher(reactor, clock, **TIMEOUTS).push(
            OnlineAddress("sftp", f"127.0.0.1:{port.getHost().port}", "bob", "secret"), results(tmp_path, 10)))
        await heard
        clock.advance(TIMEOUTS["idle_timeout"])
        with pytest.raises(PushFailed) as failed:
            await pushing
        assert str(failed.value).endswith("failed: exchanging keys: no answer from the server for 10 s")
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_a_cancelled_sftp_push_drops_its_connection(tmp_path: Path) -> None:
    heard: defer.Deferred[None] = defer.Deferred()
    gone: defer.Deferred[None] = defer.Deferred()

    class Silent(protocol.Protocol):
        def dataReceived(self, data: bytes) -> None:
            if not heard.called:
                heard.callback(None)

        def connectionLost(self, reason: Any = None) -> None:
            gone.callback(None)

    port = reactor.listenTCP(0, protocol.Factory.forProtocol(Silent), interface="127.0.0.1")
    try:
        pushing = defer.ensureDeferred(SftpPusher(reactor, task.Clock(), **TIMEOUTS).push(
            OnlineAddress("sftp", f"127.0.0.1:{port.getHost().port}", "bob", "secret"), results(tmp_path, 10)))
        await heard
        pushing.cancel()  # the order was cancelled, or the daemon stops
        with pytest.raises(defer.CancelledError):
            await pushing
        await gone
    finally:
        await port.stopListening()


def test_every_push_protocol_has_a_pusher() -> None:
    assert set(default_pushers(Config(), reactor, reactor, POOLS)) == set(PUSH_PROTOCOLS) == {"ftp", "ftps", "sftp"}


@pytest_twisted.ensureDeferred
async def test_secure_pushes_keep_to_the_allowed_networks(tmp_path: Path) -> None:
    class Reactor:
        nameResolver = FixedResolver("10.20.30.40")

        def connectTCP(self, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError("no connection should be tried")

    for protocol, pusher in (("sftp", SftpPusher(Reactor(), reactor, connect_timeout=5.0, idle_timeout=5.0)),
                             ("ftps", FtpsPusher(Reactor(), reactor, threads=POOLS, connect_timeout=5.0,
                                                 idle_timeout=5.0))):
        with pytest.raises(PushFailed) as failed:
            await pusher.push(OnlineAddress(protocol, "files.client.example", "bob", "secret", "in"),
                              results(tmp_path, 1))
        assert str(failed.value) == (f"pushing to {protocol}://bob@files.client.example/in failed: "
                                     "files.client.example: 10.20.30.40 is a private address, "
                                     "which this service does not deliver to")


@pytest_twisted.ensureDeferred
async def test_the_engine_pushes_over_sftp(redis: Redis, sftp_server: SftpServer) -> None:
    config = attrs.evolve(CONFIG, notifications=LOOPBACK, collections=(SECURE,))
    d = daemon(redis, config=config)
    spec = attrs.evolve(
        push_spec("p-a", address=""), delivery=DeliveryChoice(DeliveryMethod.ONLINE_DATA_DELIVERY, "sftp"),
        online_addresses=(sftp_address(sftp_server, sftp_server.fingerprint),))
    order_id = await pushed(d, spec)
    assert sftp_server.files() == {"in/box/p-a.dat": content("i0", 1024)}
    assert await infos(d, order_id) == [
        (OrderStatus.Completed, f"Pushed 1 file (1024 bytes) to sftp://bob@127.0.0.1:{sftp_server.port}/in/box")]
    await d.engine.stop()


@pytest_twisted.ensureDeferred
async def test_sftp_push_cut_halfway_fails_the_attempt(tmp_path: Path, sftp_server: SftpServer) -> None:
    sftp_server.drop_at_write = True
    with pytest.raises(PushFailed) as failed:
        await SftpPusher(reactor, reactor, **TIMEOUTS).push(sftp_address(sftp_server, sftp_server.fingerprint),
                                                            results(tmp_path, BIG))
    assert str(failed.value).endswith("failed: writing in/box/.r0.dat.partial: the connection was lost")
    assert "in/box/r0.dat" not in sftp_server.files()  # no file under its final name


@pytest_twisted.ensureDeferred
async def test_a_refused_host_key_fails_each_attempt_then_the_item(redis: Redis, sftp_server: SftpServer) -> None:
    d = daemon(redis, config=attrs.evolve(CONFIG, notifications=LOOPBACK, collections=(SECURE,)))
    pin = fingerprint(new_key())
    spec = attrs.evolve(
        push_spec("p-a", address=""), delivery=DeliveryChoice(DeliveryMethod.ONLINE_DATA_DELIVERY, "sftp"),
        online_addresses=(sftp_address(sftp_server, pin),))
    order_id = await pushed(d, spec)
    why = (f"pushing to sftp://bob@127.0.0.1:{sftp_server.port}/in/box failed: exchanging keys: "
           f"host key of 127.0.0.1 ({sftp_server.fingerprint}) does not match {pin}")
    assert await infos(d, order_id) == [(OrderStatus.InProduction, f"Attempt 1 failed: {why}; trying again in 10 s")]
    d.clock.advance(CONFIG.processing.retry_delay)
    await d.engine.drain()
    assert await infos(d, order_id) == [(OrderStatus.Failed, why)]
    assert sftp_server.logins == []
    await d.engine.stop()


@requires_schemas
@pytest.mark.slow
def test_the_real_daemon_pushes_over_sftp_with_a_pinned_key(tmp_path: Path, daemons: list[Daemon]) -> None:
    """As an operator runs it: twistd -n oseod, the demo collection, a
    client's SFTP server in another process."""
    from tests.test_daemon import oseo_call

    (tmp_path / "client").mkdir()
    client = subprocess.Popen([sys.executable, "-m", "tests.sftp_server", str(tmp_path / "client")],
                              stdout=subprocess.PIPE, cwd=Path(__file__).parent.parent)
    try:
        assert client.stdout is not None
        port_text, pin = client.stdout.readline().decode().split()
        config = tmp_path / "oseod.toml"
        config.write_text('[notifications]\nallowed_networks = ["127.0.0.0/8"]\n')
        daemon = Daemon(tmp_path / "data", "--config", str(config))
        daemons.append(daemon)
        daemon.start()
        assert daemon.ctl("user", "add", "erin", "--password-stdin", stdin="erin-password\n").returncode == 0
        ack = oseo_call(daemon, "erin", _submit("sftp", f"sftp://127.0.0.1:{port_text}?fingerprint={pin}"))
        order_id = order_id_of(ack)

        def status() -> tuple[str | None, str | None]:
            return first_item_status(oseo_call(daemon, "erin", get_status(order_id)))

        wait_for(lambda: status()[0] == "Completed", 30, "the push")
        assert status()[1] == f"Pushed 1 file (1024 bytes) to sftp://bob@127.0.0.1:{port_text}/drop"
        assert (tmp_path / "client" / "bob" / "drop" / "p-a.dat").read_bytes() == content("a", 1024)
    finally:
        client.kill()
        client.wait()


# ------------------------------------------------------------ destinations and Submit


@pytest.mark.parametrize(("protocol", "server_address", "expected"), [
    ("sftp", "sftp.client.example", FtpDestination("sftp.client.example", 22, "", "bob", scheme="sftp")),
    ("sftp", "sftp://h.example:2222/in?fingerprint=SHA256:" + "A" * 43,
     FtpDestination("h.example", 2222, "/in", "bob", scheme="sftp", host_key="SHA256:" + "A" * 43)),
    ("sftp", "h.example?fingerprint=SHA256%3A" + "a+/" * 14 + "b=",
     FtpDestination("h.example", 22, "", "bob", scheme="sftp", host_key="SHA256:" + "a+/" * 14 + "b")),
    ("ftps", "ftps://h.example/in", FtpDestination("h.example", 21, "/in", "bob", scheme="ftps")),
])
def test_secure_server_addresses(protocol: str, server_address: str, expected: FtpDestination) -> None:
    assert push_destination(OnlineAddress(protocol, server_address, "bob")) == expected


@pytest.mark.parametrize(("protocol", "server_address", "fragment"), [
    ("sftp", "ftp://h.example/in", "is not an sftp:// URL"),
    ("sftp", "sftp://h.example/in?fingerprint=MD5:aa", "is not an SSH host key fingerprint"),
    ("sftp", "sftp://h.example/in?hostkey=x", "(sftp takes ?fingerprint=SHA256:...)"),
    ("ftps", "ftps://h.example/in?fingerprint=SHA256:" + "A" * 43, "has a query, which ftps has no use for"),
    ("sftp", "sftp://h.example/in", "sftp has no anonymous login: give userName"),
])
@pytest_twisted.ensureDeferred
async def test_submit_checks_secure_destinations(redis: Redis, protocol: str, server_address: str,
                                                 fragment: str) -> None:
    d = daemon(redis, config=attrs.evolve(CONFIG, collections=(SECURE,)))
    spec = attrs.evolve(push_spec("p", address=""), delivery=DeliveryChoice(DeliveryMethod.ONLINE_DATA_DELIVERY,
                                                                             protocol),
                        online_addresses=(OnlineAddress(protocol, server_address,
                                                        None if "anonymous" in fragment else "bob", "secret"),))
    with pytest.raises(RequestRejected) as refused:
        await d.service.submit(ALICE, spec, Notification())
    assert (refused.value.code, refused.value.locator) == ("InvalidParameterValue", "onlineAddress")
    assert fragment in refused.value.text


def _submit(protocol: str, address: str) -> str:
    return (f'<Submit xmlns="{OSEO}" {BASE}><orderSpecification>'
            f"<deliveryInformation><onlineAddress><protocol>{protocol}</protocol>"
            f"<serverAddress>{address}</serverAddress><userName>bob</userName>"
            "<userPassword>secret</userPassword><path>drop</path></onlineAddress></deliveryInformation>"
            f"<deliveryOptions><onlineDataDelivery><protocol>{protocol}</protocol></onlineDataDelivery>"
            "</deliveryOptions><orderType>PRODUCT_ORDER</orderType><orderItem><itemId>a</itemId><productId>"
            "<identifier>p-a</identifier><collectionId>urn:oseod:demo</collectionId></productId></orderItem>"
            "</orderSpecification><statusNotification>None</statusNotification></Submit>")


@requires_schemas
@pytest_twisted.ensureDeferred
async def test_getoptions_offers_and_submit_takes_secure_push(server: Any, sftp_server: SftpServer) -> None:
    ftp_only = attrs.evolve(DEMO_COLLECTION, id="urn:x:ftp", online_data_delivery=("ftp",))
    srv = await server(Config(notifications=LOOPBACK, collections=(SECURE, ftp_only)))
    code, options = await srv.call(f'<GetOptions xmlns="{OSEO}" {BASE}><collectionId>urn:oseod:demo'
                                   "</collectionId></GetOptions>")
    assert code == 200
    offered = [e.text for e in options.iter(f"{{{OSEO}}}onlineDataDelivery")
               for e in e.iter(f"{{{OSEO}}}protocol")]
    assert set(offered) == {"ftp", "ftps", "sftp"}
    code, ack = await srv.call(_submit("sftp", f"sftp://127.0.0.1:{sftp_server.port}?fingerprint="
                                               f"{sftp_server.fingerprint}"))
    order_id = order_id_of(ack)
    await srv.parts.engine.drain()
    assert sftp_server.files() == {"drop/p-a.dat": content("a", 1024)}
    code, status = await srv.call(get_status(order_id))
    assert first_item_status(status) == (
        "Completed", f"Pushed 1 file (1024 bytes) to sftp://bob@127.0.0.1:{sftp_server.port}/drop")
    # Offered only where the collection says so.
    code, fault = await srv.call(_submit("ftps", "ftps.client.example").replace("urn:oseod:demo", "urn:x:ftp"))
    assert code == 400 and code_of(fault) == ("InvalidParameterValue", "deliveryOptions")


# ------------------------------------------------------------ ftps


def _certificate(directory: Path, name: str, address: str = "127.0.0.1") -> Path:
    """A self-signed certificate for ``address`` and its key, in one PEM file."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    path = directory / f"{name}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return path


@attrs.define
class FtpsServer:
    home: Path
    certificate: Path
    port: int = 0
    data_connections: list[bool] = attrs.field(factory=list)  # each one: did it resume the TLS session?


@pytest.fixture
def ftps_server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[FtpsServer]:
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import TLS_DTPHandler, TLS_FTPHandler
    from pyftpdlib.servers import FTPServer

    home = tmp_path / "client-ftps"
    home.mkdir()
    made = FtpsServer(home, _certificate(tmp_path, "client-ftps", getattr(request, "param", "127.0.0.1")))
    authorizer = DummyAuthorizer()
    authorizer.add_user("bob", "secret", str(home), perm="elradfmwMT")

    class Data(TLS_DTPHandler):  # type: ignore[misc]
        def handle_ssl_established(self) -> None:
            reused = bool(_ssl_lib.SSL_session_reused(self.socket._ssl))
            made.data_connections.append(reused)
            if not reused:  # vsftpd's require_ssl_reuse
                self.close()

    class Handler(TLS_FTPHandler):  # type: ignore[misc]
        pass

    Handler.authorizer = authorizer
    Handler.certfile = str(made.certificate)
    Handler.tls_control_required = True
    Handler.tls_data_required = True
    Handler.dtp_handler = Data
    ftpd = FTPServer(("127.0.0.1", 0), Handler)
    made.port = ftpd.address[1]
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            ftpd.serve_forever(timeout=0.05, blocking=False, handle_exit=False)
        ftpd.close_all()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield made
    stop.set()
    thread.join(10)


def ftps_address(server: FtpsServer) -> OnlineAddress:
    return OnlineAddress("ftps", f"127.0.0.1:{server.port}", "bob", "secret", "in/box")


@pytest_twisted.ensureDeferred
async def test_ftps_push_to_a_trusted_server(tmp_path: Path, ftps_server: FtpsServer) -> None:
    pusher = FtpsPusher(reactor, reactor, threads=POOLS, ca_file=str(ftps_server.certificate), **TIMEOUTS)
    verifyObject(IPusher, pusher)
    files = results(tmp_path, BIG, 10)
    told = await pusher.push(ftps_address(ftps_server), files)
    assert told == f"Pushed 2 files ({BIG + 10} bytes) to ftps://bob@127.0.0.1:{ftps_server.port}/in/box"
    got = {str(p.relative_to(ftps_server.home)): p.read_bytes() for p in ftps_server.home.rglob("*") if p.is_file()}
    assert got == {"in/box/r0.dat": content("r0", BIG), "in/box/r1.dat": content("r1", 10)}
    # Every data connection resumed the control connection's TLS session.
    assert ftps_server.data_connections and all(ftps_server.data_connections)
    await pusher.push(ftps_address(ftps_server), files)  # again: renamed over the older files


@pytest_twisted.ensureDeferred
async def test_ftps_push_refuses_an_untrusted_certificate(tmp_path: Path, ftps_server: FtpsServer) -> None:
    other = _certificate(tmp_path, "other")
    pusher = FtpsPusher(reactor, reactor, threads=POOLS, ca_file=str(other), **TIMEOUTS)
    with pytest.raises(PushFailed) as failed:
        await pusher.push(ftps_address(ftps_server), results(tmp_path, 10))
    assert str(failed.value).startswith(
        f"pushing to ftps://bob@127.0.0.1:{ftps_server.port}/in/box failed: starting TLS: "
        "the server's certificate is not trusted: ")
    assert not list(ftps_server.home.iterdir())


@pytest.mark.parametrize("ftps_server", ["127.0.0.2"], indirect=True)  # a certificate for another address
@pytest_twisted.ensureDeferred
async def test_ftps_push_checks_the_certificates_name(tmp_path: Path, ftps_server: FtpsServer) -> None:
    pusher = FtpsPusher(reactor, reactor, threads=POOLS, ca_file=str(ftps_server.certificate), **TIMEOUTS)
    with pytest.raises(PushFailed) as failed:
        await pusher.push(ftps_address(ftps_server), results(tmp_path, 10))
    assert "starting TLS: the server's certificate is not trusted: IP address mismatch" in str(failed.value)
