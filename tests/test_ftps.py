"""FTPS (explicit, RFC 4217; implicit on an ssl: endpoint) on the FTP
listener, with real clients over loopback: ftplib.FTP_TLS (stock, and with the
data connections resuming the control connection's TLS session), curl, lftp,
openssl s_client, and a raw socket for the STARTTLS injection; a real daemon
for the start-up check and SIGHUP; a self-signed certificate made here."""

from __future__ import annotations

import datetime
import ftplib
import ipaddress
import os
import shutil
import signal
import socket
import ssl
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import pytest_twisted
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import endpoints, reactor, threads, utils
from twisted.internet.address import IPv4Address
from twisted.protocols import ftp
from zope.interface import implementer

from oseod.config import ConfigError, load_config
from oseod.ftp.factory import make_ftp_factory
from oseod.ftp.results import _Reader
from oseod.ftp.tls import CertificatePair, FTPSSettings, TLSFileError
from oseod.ftp.tree import IDeliverableTree, Node
from oseod.model.orders import OrderStatus
from oseod.store.orders import OrderStore
from tests.daemon import Daemon
from tests.polling import eventually, wait_for
from tests.test_ftp import CLIENT_TIMEOUT, CURL, Server, StartServer, needs_curl, start_ftp, until  # noqa: F401 - a fixture
from tests.test_daemon_ops import _assert_ends_with_the_cause, _failed_start
from tests.test_http_ordering import order_id_of, server, submit  # noqa: F401 - a fixture
from tests.pools import POOLS

DATA = os.urandom(3 * 1024 * 1024 + 17)


# -- certificates ------------------------------------------------------------


def make_certificate(where: Path, name: str = "cert") -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost (a CA of its own,
    as Python's strict verification wants it) and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "oseod test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .add_extension(ski, False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = where / f"{name}.pem", where / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    return make_certificate(tmp_path)


def settings(certificate: tuple[Path, Path], mode: str = "optional", reuse: bool = False) -> FTPSSettings:
    pair = CertificatePair(str(certificate[0]), str(certificate[1]))
    pair.load()
    return FTPSSettings(mode, pair, reuse_required=reuse)


# -- a tree with one real file ---------------------------------------------


@implementer(IDeliverableTree)
class OneFile:
    """/ORD-1/data.bin, read from disk by the results tree's own reader;
    ``finished`` records (complete, bytes sent) of each RETR."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.finished: list[tuple[bool, int]] = []

    async def stat(self, path: Sequence[str]) -> Node | None:
        return {(): Node("/", True), ("ORD-1",): Node("ORD-1", True),
                ("ORD-1", "data.bin"): Node("data.bin", False, size=len(DATA))}.get(tuple(path))

    async def children(self, path: Sequence[str]) -> Sequence[Node]:
        if not path:
            return [Node("ORD-1", True)]
        return [Node("data.bin", False, size=len(DATA))] if list(path) == ["ORD-1"] else []

    async def open(self, path: Sequence[str], client: str | None = None, via: str = "ftp") -> ftp.IReadFile:
        if list(path) != ["ORD-1", "data.bin"]:
            raise ftp.FileNotFoundError("/" + "/".join(path))
        return _Reader(str(self.path), len(DATA), lambda complete, sent: self.finished.append((complete, sent)),
                       lambda path: POOLS.on_disk(open, path, "rb"))


@pytest.fixture
def one_file(tmp_path: Path) -> OneFile:
    path = tmp_path / "data.bin"
    path.write_bytes(DATA)
    return OneFile(path)


def trusting(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate[0]))


class ResumingFTP_TLS(ftplib.FTP_TLS):  # noqa: N801 - ftplib's spelling
    """FTP_TLS whose data connections resume the control connection's TLS
    session (stock ftplib never does: cpython#63699)."""

    def ntransfercmd(self, cmd: str, rest: int | str | None = None) -> tuple[socket.socket, int | None]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:  # type: ignore[attr-defined]
            conn = self.context.wrap_socket(conn, server_hostname=self.host,
                                            session=self.sock.session)  # type: ignore[union-attr]
        return conn, size


def ftps_login(srv: Server, context: ssl.SSLContext, cls: type[ftplib.FTP_TLS] = ftplib.FTP_TLS) -> ftplib.FTP_TLS:
    """Connected, TLS on (AUTH TLS), logged in as alice, PROT P (in a thread)."""
    client = cls(context=context, timeout=CLIENT_TIMEOUT)
    client.connect(srv.host, srv.port)
    client.login("alice", "alicepw")
    client.prot_p()
    return client


def in_thread(f: Callable[[], Any]) -> Any:
    return threads.deferToThread(f)


# -- certificate files ------------------------------------------------------


def test_certificate_files_are_checked(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    with pytest.raises(TLSFileError, match=f"cannot read the TLS certificate {tmp_path}/missing.pem"):
        CertificatePair(str(tmp_path / "missing.pem"), str(key)).load()
    with pytest.raises(TLSFileError, match=f"the TLS key {cert} is not a PEM private key"):
        CertificatePair(str(cert), str(cert)).load()
    with pytest.raises(TLSFileError, match=f"the TLS certificate {key} holds no PEM certificate"):
        CertificatePair(str(key), str(key)).load()
    _, other_key = make_certificate(tmp_path, "other")
    with pytest.raises(TLSFileError, match=f"the key {other_key} does not match the certificate {cert}"):
        CertificatePair(str(cert), str(other_key)).load()


def test_reload_takes_a_renewed_certificate_and_keeps_the_old_one_on_error(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    pair = CertificatePair(str(cert), str(key))
    pair.load()
    first = pair.options().certificate.fingerprint(hashes.SHA256())
    make_certificate(tmp_path)  # renewed in place
    pair.reload()
    second = pair.options().certificate.fingerprint(hashes.SHA256())
    assert second != first
    key.write_text("garbage")
    pair.reload()  # logged; the one in use stays
    assert pair.options().certificate.fingerprint(hashes.SHA256()) == second


def test_ftp_tls_needs_a_certificate(tmp_path: Path) -> None:
    config = tmp_path / "oseod.toml"
    config.write_text('[server]\nftp_tls = "required"\ntls_key = "k.pem"\n')
    with pytest.raises(ConfigError, match="server.tls_certificate"):
        load_config(str(config), [])
    config.write_text('[server]\nftp_tls = "optional"\ntls_certificate = "c.pem"\ntls_key = "k.pem"\n')
    assert load_config(str(config), []).server.ftp_tls == "optional"
    config.write_text('[server]\nftp = "ssl:990:privateKey=k.pem"\nftp_tls_reuse = "required"\n')
    with pytest.raises(ConfigError, match="server.ftp_tls_reuse"):
        load_config(str(config), [])


# -- the protocol -------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_feat_and_auth_when_off(start_ftp: StartServer) -> None:
    srv = start_ftp()

    def talk() -> tuple[str, str]:
        with ftplib.FTP(timeout=CLIENT_TIMEOUT) as client:
            client.connect(srv.host, srv.port)
            features = client.sendcmd("FEAT")
            with pytest.raises(ftplib.error_perm) as refused:
                client.sendcmd("AUTH TLS")
            return features, str(refused.value)

    features, refused = await in_thread(talk)
    assert "AUTH TLS" not in features and "PROT" not in features and "EPSV" in features
    assert refused.startswith("502")


@pytest_twisted.ensureDeferred
async def test_list_retrieve_and_resume_with_stock_ftplib(start_ftp: StartServer, certificate: Any,
                                                          one_file: OneFile) -> None:
    # Behind NAT: PASV names the public address (ftplib connects to the
    # control connection's, as most clients do).
    srv = start_ftp(lambda account: one_file, ftps=settings(certificate), public_host="203.0.113.7")

    def talk() -> tuple[str, list[str], bytes, bytes, str]:
        with ftplib.FTP(timeout=CLIENT_TIMEOUT) as plain:  # the order of things, in clear
            plain.connect(srv.host, srv.port)
            features = plain.sendcmd("FEAT")
            with pytest.raises(ftplib.error_perm, match="^503"):  # no TLS yet
                plain.sendcmd("PBSZ 0")
        client = ftps_login(srv, trusting(certificate))
        with client:
            pasv = client.sendcmd("PASV")
            assert pasv.startswith("227 Entering Passive Mode (203,0,113,7,")
            high, low = pasv.rstrip(").").split(",")[-2:]
            socket.create_connection((srv.host, int(high) * 256 + int(low)), timeout=CLIENT_TIMEOUT).close()
            names = client.nlst("/ORD-1")
            whole: list[bytes] = []
            client.retrbinary("RETR /ORD-1/data.bin", whole.append)
            rest: list[bytes] = []
            client.retrbinary("RETR /ORD-1/data.bin", rest.append, rest=1_000_000)
            with pytest.raises(ftplib.error_perm) as refused:
                client.sendcmd("PROT S")
            return features, names, b"".join(whole), b"".join(rest), str(refused.value)

    features, names, whole, rest, refused = await in_thread(talk)
    assert {"AUTH TLS", "PBSZ", "PROT", "REST STREAM"} <= {f.strip() for f in features.splitlines()}
    assert names == ["data.bin"]
    assert whole == DATA
    assert rest == DATA[1_000_000:]
    assert refused.startswith("536")
    assert one_file.finished == [(True, len(DATA)), (True, len(DATA) - 1_000_000)]


@pytest_twisted.ensureDeferred
async def test_session_reuse_required(start_ftp: StartServer, certificate: Any, one_file: OneFile) -> None:
    srv = start_ftp(lambda account: one_file, ftps=settings(certificate, "required", reuse=True))

    def resuming() -> bytes:
        with ftps_login(srv, trusting(certificate), ResumingFTP_TLS) as client:
            got: list[bytes] = []
            client.retrbinary("RETR /ORD-1/data.bin", got.append)
            assert client.nlst("/ORD-1") == ["data.bin"]
            return b"".join(got)

    assert await in_thread(resuming) == DATA

    def stock(transfer: Callable[[ftplib.FTP_TLS], object]) -> str:
        with ftps_login(srv, trusting(certificate)) as client:
            try:
                transfer(client)
            except ftplib.error_perm as e:
                return str(e)
            except (OSError, EOFError):  # the handshake or the read failed first
                return client.getline()
            raise AssertionError("a data connection without session reuse was served")

    refused = "522 SSL connection failed: session reuse required."
    assert await in_thread(lambda: stock(lambda c: c.retrbinary("RETR /ORD-1/data.bin", lambda data: None))) == refused
    # A listing is all written before the client's handshake: its 226 waits for the check.
    assert await in_thread(lambda: stock(lambda c: c.nlst("/ORD-1"))) == refused
    assert await in_thread(lambda: stock(lambda c: c.retrlines("LIST /ORD-1", lambda line: None))) == refused
    assert one_file.finished[0] == (True, len(DATA))
    assert not one_file.finished[1][0]


@pytest_twisted.ensureDeferred
async def test_required_refuses_plain_logins_and_plain_data(start_ftp: StartServer, certificate: Any,
                                                            one_file: OneFile) -> None:
    srv = start_ftp(lambda account: one_file, ftps=settings(certificate, "required"))

    def talk() -> tuple[str, str, str]:
        with ftplib.FTP(timeout=CLIENT_TIMEOUT) as plain:
            plain.connect(srv.host, srv.port)
            with pytest.raises(ftplib.error_perm) as user:
                plain.sendcmd("USER alice")
        with ftps_login(srv, trusting(certificate)) as client:
            client.prot_c()
            with pytest.raises(ftplib.error_perm) as listing:
                client.nlst("/ORD-1")
            with pytest.raises(ftplib.error_perm) as retrieving:
                client.retrbinary("RETR /ORD-1/data.bin", lambda data: None)
            client.prot_p()
            assert client.nlst("/ORD-1") == ["data.bin"]
        return str(user.value), str(listing.value), str(retrieving.value)

    user, listing, retrieving = await in_thread(talk)
    assert user == "530 Non-anonymous sessions must use encryption."
    assert listing == retrieving == "522 Data connections must be encrypted."


@pytest_twisted.ensureDeferred
async def test_an_empty_listing_over_prot_p(start_ftp: StartServer, certificate: Any) -> None:
    # Nothing to send: the data connection closes before the client's
    # handshake has even started, and must still close cleanly.
    srv = start_ftp(ftps=settings(certificate, "required"))

    def talk() -> tuple[list[str], list[str]]:
        with ftps_login(srv, trusting(certificate)) as client:
            lines: list[str] = []
            client.retrlines("LIST", lines.append)
            return client.nlst(), lines

    assert await in_thread(talk) == ([], [])


@pytest_twisted.ensureDeferred
async def test_plaintext_pipelined_after_auth_is_dropped(start_ftp: StartServer, certificate: Any) -> None:
    srv = start_ftp(ftps=settings(certificate))

    def talk() -> tuple[bytes, bytes]:
        with socket.create_connection((srv.host, srv.port), timeout=CLIENT_TIMEOUT) as raw:
            reader = raw.makefile("rb")
            reader.readline()  # the banner
            raw.sendall(b"AUTH TLS\r\nUSER alice\r\n")  # USER injected, in clear
            answer = reader.readline()
            with trusting(certificate).wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                tls.sendall(b"PASS alicepw\r\n")
                return answer, tls.makefile("rb").readline()

    answer, after = await in_thread(talk)
    assert answer.startswith(b"234")
    assert after.startswith(b"503")  # the USER never counted: PASS is out of sequence


@pytest_twisted.ensureDeferred
async def test_a_client_that_does_not_trust_the_certificate_refuses(start_ftp: StartServer,
                                                                    certificate: Any) -> None:
    srv = start_ftp(ftps=settings(certificate))

    def talk() -> None:
        client = ftplib.FTP_TLS(context=ssl.create_default_context(), timeout=CLIENT_TIMEOUT)
        with client:
            client.connect(srv.host, srv.port)
            client.auth()

    with pytest.raises(ssl.SSLCertVerificationError):
        await in_thread(talk)


async def curl(*args: str) -> tuple[bytes, bytes, int]:
    assert CURL is not None
    return await utils.getProcessOutputAndValue(CURL, ["-sS", "--max-time", "20", *args], env=os.environ)


@needs_curl
@pytest_twisted.ensureDeferred
async def test_curl_list_download_and_resume(start_ftp: StartServer, certificate: Any, one_file: OneFile,
                                             tmp_path: Path) -> None:
    # curl resumes the TLS session on its data connections: reuse required.
    srv = start_ftp(lambda account: one_file, ftps=settings(certificate, "required", reuse=True))
    base = f"ftp://127.0.0.1:{srv.port}/ORD-1/"
    tls = ["--ssl-reqd", "--cacert", str(certificate[0]), "-u", "alice:alicepw"]

    out, err, code = await curl(*tls, "-l", base)
    assert code == 0, err
    assert out.split() == [b"data.bin"]

    target = tmp_path / "got.bin"
    out, err, code = await curl(*tls, "-o", str(target), base + "data.bin")
    assert code == 0, err
    assert target.read_bytes() == DATA

    target.write_bytes(DATA[:123_456])
    out, err, code = await curl(*tls, "-C", "-", "-o", str(target), base + "data.bin")
    assert code == 0, err
    assert target.read_bytes() == DATA

    _, _, code = await curl("--ssl-reqd", "-u", "alice:alicepw", "-l", base)  # no --cacert: not trusted
    assert code == 60


OPENSSL = shutil.which("openssl")


@pytest.mark.skipif(OPENSSL is None, reason="openssl is not on PATH")
@pytest_twisted.ensureDeferred
async def test_openssl_s_client_starttls_ftp(start_ftp: StartServer, certificate: Any) -> None:
    srv = start_ftp(ftps=settings(certificate, "required"))
    assert OPENSSL is not None
    argv = [OPENSSL, "s_client", "-starttls", "ftp", "-connect", f"127.0.0.1:{srv.port}",
            "-CAfile", str(certificate[0]), "-verify_return_error", "-verify_ip", "127.0.0.1", "-quiet"]
    # Once TLS is up, s_client sends its stdin: a login, then QUIT (-quiet waits for the server to close).
    done = await in_thread(lambda: subprocess.run(argv, input=b"USER alice\r\nPASS alicepw\r\nQUIT\r\n",
                                                   capture_output=True, timeout=CLIENT_TIMEOUT))
    assert done.returncode == 0, done.stderr
    assert b"verify return:1" in done.stderr
    assert [line[:3] for line in done.stdout.splitlines()] == [b"331", b"230", b"221"], done.stdout


LFTP = shutil.which("lftp")


@pytest.mark.skipif(LFTP is None, reason="lftp is not on PATH (.ci/run installs it)")
@pytest_twisted.ensureDeferred
async def test_lftp_list_download_and_resume(start_ftp: StartServer, certificate: Any, one_file: OneFile,
                                             tmp_path: Path) -> None:
    # lftp (GnuTLS) resumes the TLS session on its data connections: reuse required.
    srv = start_ftp(lambda account: one_file, ftps=settings(certificate, "required", reuse=True))
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / "data.bin").write_bytes(DATA[:777_777])
    script = "; ".join([
        "set ftp:ssl-force true", "set ftp:ssl-protect-data true", "set ftp:ssl-allow true",
        f"set ssl:ca-file {certificate[0]}", "set ssl:verify-certificate true", "set net:max-retries 1",
        f"open -u alice,alicepw -p {srv.port} 127.0.0.1", "cls -1 /ORD-1",
        f"get /ORD-1/data.bin -o {tmp_path}/whole.bin", f"lcd {tmp_path}/partial", "get -c /ORD-1/data.bin",
        "quit",
    ])  # fmt: skip
    assert LFTP is not None
    out, err, code = await utils.getProcessOutputAndValue(LFTP, ["-c", script], env={**os.environ, "HOME": str(tmp_path)})
    assert code == 0, err
    assert out.split() == [b"/ORD-1/data.bin"] or out.split() == [b"data.bin"], out
    assert (tmp_path / "whole.bin").read_bytes() == DATA
    assert (tmp_path / "partial" / "data.bin").read_bytes() == DATA
    assert one_file.finished[-1] == (True, len(DATA) - 777_777)


@needs_curl
@pytest_twisted.ensureDeferred
async def test_implicit_ftps_on_an_ssl_endpoint(start_ftp: StartServer, certificate: Any, one_file: OneFile,
                                               tmp_path: Path) -> None:
    # The factory as the daemon makes it, behind an ssl: endpoint (TLS from
    # the first byte, the endpoint's certificate): curl's ftps:// sends
    # PBSZ and PROT P. (The endpoint's context has no session cache: no reuse.)
    srv = start_ftp(lambda account: one_file, ftps=settings(certificate, "required"))
    cert, key = certificate
    endpoint = endpoints.serverFromString(reactor, f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}")
    port = await endpoint.listen(srv.factory)
    try:
        base = f"ftps://127.0.0.1:{port.getHost().port}/ORD-1/"
        tls = ["--cacert", str(cert), "-u", "alice:alicepw"]
        out, err, code = await curl(*tls, "-l", base)
        assert code == 0, err
        assert out.split() == [b"data.bin"]
        out, err, code = await curl(*tls, "-o", str(tmp_path / "got.bin"), base + "data.bin")
        assert code == 0, err
        assert (tmp_path / "got.bin").read_bytes() == DATA
    finally:
        await port.stopListening()


# -- end to end: an order's result over FTPS -----------------------------------


@pytest_twisted.ensureDeferred
async def test_a_whole_download_over_ftps_makes_the_order_downloaded(server: Any, certificate: Any) -> None:
    srv = await server()
    factory = make_ftp_factory(srv.parts.portal, ftps=settings(certificate, "required"))
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    try:
        address = port.getHost()
        assert isinstance(address, IPv4Address)
        code, ack = await srv.call(submit("a1"))
        assert code == 200
        order_id = order_id_of(ack)
        await srv.parts.engine.drain()

        def fetch() -> bytes:
            client = ftplib.FTP_TLS(context=trusting(certificate), timeout=CLIENT_TIMEOUT)
            with client:
                client.connect(address.host, address.port)
                client.login("alice", "alice-password")
                client.prot_p()
                (name,) = client.nlst(f"/{order_id}/a1")
                got: list[bytes] = []
                client.retrbinary(f"RETR /{order_id}/a1/{name.rsplit('/', 1)[-1]}", got.append)
                return b"".join(got)

        assert await in_thread(fetch)

        async def downloaded() -> bool:
            order = await srv.parts.ordering.find(order_id)
            return order is not None and order.status.status is OrderStatus.Downloaded

        await eventually(downloaded, what="the FTPS download to make the order Downloaded")
        # The transfer is recorded as encrypted (the console's order page shows it).
        assert [t.via for t in await OrderStore(srv.redis).transfers(order_id)] == ["ftps"]
    finally:
        await port.stopListening()
        await until(lambda: factory.connectionCount == 0, "the FTPS sessions to end")


# -- a real daemon ----------------------------------------------------------


def served_certificate(daemon: Daemon, context: ssl.SSLContext) -> bytes:
    """The certificate a new FTPS session of ``daemon`` gets (DER)."""
    where = urlsplit(daemon.endpoints["ftp"])
    with socket.create_connection((where.hostname or "127.0.0.1", where.port or 21), timeout=30) as raw:
        reader = raw.makefile("rb")
        reader.readline()
        raw.sendall(b"AUTH TLS\r\n")
        assert reader.readline().startswith(b"234")
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            der = tls.getpeercert(binary_form=True)
            assert der is not None
            return der


@pytest.mark.slow
def test_a_daemon_with_a_key_that_does_not_match_does_not_start(tmp_path: Path, daemons: list[Daemon]) -> None:
    cert, _ = make_certificate(tmp_path)
    _, other_key = make_certificate(tmp_path, "other")
    config = tmp_path / "oseod.toml"
    config.write_text(f'[server]\nftp_tls = "required"\ntls_certificate = "{cert}"\ntls_key = "{other_key}"\n')
    lines = _failed_start(daemons, tmp_path / "data", "--config", str(config))
    _assert_ends_with_the_cause(lines, f"tls certificate: the key {other_key} does not match the certificate {cert}")


@pytest.mark.slow
def test_a_daemon_serves_ftps_and_reloads_its_certificate_on_sighup(tmp_path: Path, daemons: list[Daemon]) -> None:
    cert, key = make_certificate(tmp_path)
    config = tmp_path / "oseod.toml"
    config.write_text(f'[server]\nftp_tls = "required"\ntls_certificate = "{cert}"\ntls_key = "{key}"\n')
    daemon = Daemon(tmp_path / "data", "--config", str(config)).start()
    daemons.append(daemon)
    assert daemon.ctl("user", "add", "alice", "--password-stdin", stdin="alicepw\n").returncode == 0

    plain = daemon.ftp()
    with plain, pytest.raises(ftplib.error_perm, match="^530 Non-anonymous sessions must use encryption"):
        plain.sendcmd("USER alice")
    where = urlsplit(daemon.endpoints["ftp"])
    client = ftplib.FTP_TLS(context=trusting((cert, key)), timeout=30)
    with client:
        client.connect(where.hostname or "127.0.0.1", where.port or 21)
        client.login("alice", "alicepw")
        client.prot_p()
        assert client.nlst() == []

    before = served_certificate(daemon, ssl._create_unverified_context())  # noqa: SLF001 - any certificate
    renewed, _ = make_certificate(tmp_path)  # the same paths, a new certificate and key
    os.kill(daemon.pid, signal.SIGHUP)
    wait_for(lambda: "TLS certificate reloaded" in daemon.log(), 30, "the daemon to reload its certificate")
    after = served_certificate(daemon, trusting((renewed, key)))
    assert after != before
    assert daemon.get("/health")[0] == 200  # SIGHUP did not stop it
