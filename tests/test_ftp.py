"""The FTP listener over real loopback sockets, the real Portal and a real
Redis, driven by real clients: ftplib (in a thread, since the reactor must keep
running) and curl when it is installed."""

from __future__ import annotations

import ftplib
import io
import os
import shutil
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar

import attrs
import pytest
import pytest_twisted
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import IUsernamePassword
from twisted.cred.portal import Portal
from twisted.internet import reactor, tcp, task, threads, utils
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail, maybeDeferred
from twisted.logger import PredicateResult, capturedLogs, formatEvent
from twisted.protocols import ftp
from zope.interface import implementer
from zope.interface.verify import verifyObject

from oseod.auth.account import Account, KnownUser
from oseod.auth.checkers import UserStoreChecker
from oseod.auth.passwords import hash_password
from oseod.auth.realm import AccountRealm
from oseod.ftp.factory import OseodFTPFactory, install_ftp_avatars, make_ftp_factory
from oseod.ftp.noise import ftp_chatter
from oseod.ftp.protocol import OseodFTP, _ControlPeerOnly
from oseod.ftp.shell import ReadOnlyShell
from oseod.ftp.tree import EmptyTree, IDeliverableTree, Node
from oseod.store.connection import Redis
from oseod.store.users import UserRecord, UserStore
from tests.polling import wait_for
from tests.ports import candidate_ports
from tests.pools import POOLS

PASSWORDS = {"alice": "alicepw", "bob": "pässwörd"}
CLIENT_TIMEOUT = 20.0  # only bounds a hung test; nothing asserts on time
CURL = shutil.which("curl")
needs_curl = pytest.mark.skipif(CURL is None, reason="curl is not on PATH: the curl client cases need it")

T = TypeVar("T")


# -- fixtures and helpers ---------------------------------------------------


@attrs.frozen
class Server:
    host: str
    port: int
    factory: OseodFTPFactory

    def client(self, user: str | None = None, password: str | None = None) -> ftplib.FTP:
        """A connected ftplib client (call it in a thread), logged in if asked."""
        client = ftplib.FTP(timeout=CLIENT_TIMEOUT)
        try:
            client.connect(self.host, self.port)
            if user is not None:
                client.login(user, password or "")
        except BaseException:
            client.close()
            raise
        return client


def in_thread(f: Callable[[], T]) -> Deferred[T]:
    return threads.deferToThread(f)


async def until(done: Callable[[], bool], what: str, timeout: float = CLIENT_TIMEOUT) -> None:
    """Poll ``done`` on the reactor (which must keep turning) until it holds."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await task.deferLater(reactor, 0.01, lambda: None)


def data_channels() -> list[object]:
    """Passive listening ports and data connections still open in the reactor."""
    selectables = set(reactor.getReaders()) | set(reactor.getWriters())
    return [
        s for s in selectables
        if (isinstance(s, tcp.Port) and isinstance(s.factory, _ControlPeerOnly))
        or isinstance(getattr(s, "protocol", None), ftp.DTP)
    ]  # fmt: skip


@implementer(IDeliverableTree)
class StubTree:
    """Two orders, one holding a file with a non-ASCII name: enough to watch
    the shell and the protocol walk a tree that is not empty."""

    NODES = {
        (): Node("/", True),
        ("ORD-1",): Node("ORD-1", True, modified=1_700_000_000.0),
        ("ORD-1", "été.tif"): Node("été.tif", False, size=5, modified=1_700_000_000.0),
        ("ORD-2",): Node("ORD-2", True),
    }

    async def stat(self, path: Sequence[str]) -> Node | None:
        return self.NODES.get(tuple(path))

    async def children(self, path: Sequence[str]) -> Sequence[Node]:
        here = tuple(path)
        return [n for k, n in self.NODES.items() if len(k) == len(here) + 1 and k[: len(here)] == here]

    async def open(self, path: Sequence[str], client: str | None = None, via: str = "ftp") -> ftp.IReadFile:
        raise ftp.FileNotFoundError("/" + "/".join(path))


@implementer(ICredentialsChecker)
class BrokenChecker:
    """A checker whose back end is down."""

    credentialInterfaces = (IUsernamePassword,)

    def requestAvatarId(self, credentials: object) -> Deferred[Any]:
        return fail(ConnectionRefusedError("redis is down"))


StartServer = Callable[..., Server]


@pytest_twisted.async_yield_fixture
async def start_ftp(redis: Redis) -> AsyncIterator[StartServer]:
    """Start FTP listeners on 127.0.0.1 over the real Portal; at the end, stop
    them and wait until every control and data connection is gone."""
    users = UserStore(redis)
    for name, password in PASSWORDS.items():
        await users.create(UserRecord(name=name, password_hash=hash_password(password), group="eo"))
    started: list[tuple[Any, OseodFTPFactory]] = []

    def start(trees: Callable[[Account], IDeliverableTree] | None = None, portal: Portal | None = None,
              **options: Any) -> Server:
        if portal is None:
            realm = AccountRealm(users)
            if trees is None:
                install_ftp_avatars(realm)
            else:
                install_ftp_avatars(realm, trees)
            portal = Portal(realm, [UserStoreChecker(users, reactor, 60, threads=POOLS)])
        factory = make_ftp_factory(portal, **options)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        started.append((port, factory))
        address = port.getHost()
        assert isinstance(address, IPv4Address)
        return Server(address.host, address.port, factory)

    yield start

    for port, _ in started:
        await maybeDeferred(port.stopListening)
    await until(lambda: all(f.connectionCount == 0 for _, f in started), "FTP control connections to close")
    await until(lambda: not data_channels(), "FTP data ports and connections to close")


# -- the shell and the factory on their own -----------------------------------


def test_shell_and_tree_provide_their_interfaces() -> None:
    verifyObject(ftp.IFTPShell, ReadOnlyShell(Account("alice")))
    verifyObject(IDeliverableTree, EmptyTree())
    verifyObject(IDeliverableTree, StubTree())


@pytest_twisted.ensureDeferred
async def test_shell_over_a_tree() -> None:
    shell = ReadOnlyShell(Account("alice", group="eo"), StubTree())
    wire = "été.tif".encode("utf-8").decode("latin-1")  # how the protocol hands names over
    assert [name for name, _ in await shell.list([])] == ["ORD-1", "ORD-2"]
    [(name, facts)] = await shell.list(["ORD-1"], ("size", "directory", "owner", "group"))
    assert (name, facts) == ("été.tif", [5, False, "alice", "eo"])
    assert await shell.stat(["ORD-1", wire], ("size",)) == [5]
    await shell.access(["ORD-1"])
    attempts: list[tuple[Callable[[], Deferred[Any]], type[Exception]]] = [
        (lambda: shell.access(["ORD-1", wire]), ftp.FTPCmdError),
        (lambda: shell.access(["nothing"]), ftp.FileNotFoundError),
        (lambda: shell.openForReading(["ORD-1"]), ftp.IsADirectoryError),
        (lambda: shell.stat(["ORD-1", ".."]), ftp.FileNotFoundError),
        (lambda: shell.stat(["\xff"]), ftp.FileNotFoundError),  # not UTF-8 on the wire
        (lambda: shell.makeDirectory(["new"]), ftp.PermissionDeniedError),
        (lambda: shell.removeFile(["ORD-1", wire]), ftp.PermissionDeniedError),
        (lambda: shell.rename(["ORD-1"], ["ORD-3"]), ftp.PermissionDeniedError),
        (lambda: shell.openForWriting(["x"]), ftp.PermissionDeniedError),
    ]
    for call, error in attempts:
        with pytest.raises(error):
            await call()


def test_factory_settings() -> None:
    portal = Portal(AccountRealm(UserStore(None)))
    factory = make_ftp_factory(portal, passive_ports=range(30000, 30010), max_connections=7, idle_timeout=42)
    assert (factory.allowAnonymous, factory.connectionLimit, factory.timeOut) == (False, 7, 42)
    assert factory.passivePortRange == range(30000, 30010)
    assert factory.portal is portal and factory.protocol is OseodFTP
    assert "Twisted" not in factory.welcomeMessage
    for bad in [dict(banner="two\r\nlines"), dict(max_connections=0), dict(idle_timeout=0),
                dict(passive_ports=range(0)), dict(passive_ports=range(65000, 70000)),
                dict(public_host="ftp.example.org"), dict(public_host="300.1.1.1")]:  # fmt: skip
        with pytest.raises(ValueError):
            make_ftp_factory(portal, **bad)  # type: ignore[arg-type]


# -- logging in ---------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_login_and_banner(start_ftp: StartServer) -> None:
    server = start_ftp(banner="Welcome to the test archive")

    def talk() -> list[str]:
        replies = []
        for user, password in PASSWORDS.items():  # bob's password is UTF-8
            with server.client() as client:
                replies.append(client.getwelcome())
                replies.append(client.login(user, password))
                replies.append(client.pwd())
        return replies

    assert await in_thread(talk) == ["220 Welcome to the test archive", "230 User logged in, proceed", "/"] * 2


@pytest_twisted.ensureDeferred
async def test_no_new_login_while_the_daemon_drains(start_ftp: StartServer) -> None:
    """Once the daemon drains, a connection not yet logged in gets 421 at its
    USER (a new connection at once); a session logged in before goes on."""
    draining = [False]
    server = start_ftp(closing=lambda: draining[0])

    def talk() -> list[str]:
        replies = []
        with server.client("alice", PASSWORDS["alice"]) as session, server.client() as early:
            draining[0] = True
            try:
                early.login("bob", PASSWORDS["bob"])
            except ftplib.error_temp as e:
                replies.append(str(e))
            try:
                server.client()
            except ftplib.error_temp as e:
                replies.append(str(e))
            replies.append(session.pwd())
        return replies

    going = "421 Service not available, closing control connection."
    assert await in_thread(talk) == [going, going, "/"]


@pytest.mark.parametrize(
    "user, password",
    [("alice", "wrong"), ("bob", "passwort"), ("nobody", "alicepw"), ("anonymous", "guest@example.org"),
     ("alice", ""), ("ALICE", "alicepw")],
)  # fmt: skip
@pytest_twisted.ensureDeferred
async def test_login_refused(start_ftp: StartServer, user: str, password: str) -> None:
    server = start_ftp()

    def talk() -> str:
        with server.client() as client:
            with pytest.raises(ftplib.error_perm) as refused:
                client.login(user, password)
            # Still connected, and not logged in.
            with pytest.raises(ftplib.error_perm, match="^530"):
                client.pwd()
            return str(refused.value)

    assert (await in_thread(talk))[:3] == "530"


@pytest_twisted.ensureDeferred
async def test_anonymous_refused(start_ftp: StartServer) -> None:
    server = start_ftp()

    def talk() -> None:
        with server.client() as client, pytest.raises(ftplib.error_perm, match="^530"):
            client.login()  # ftplib's anonymous login

    await in_thread(talk)


@pytest_twisted.ensureDeferred
async def test_login_check_failure_closes_with_421(start_ftp: StartServer) -> None:
    realm = AccountRealm(UserStore(None))
    install_ftp_avatars(realm)
    server = start_ftp(portal=Portal(realm, [BrokenChecker()]))

    def talk() -> None:
        with server.client() as client:
            with pytest.raises(ftplib.error_temp, match="^421"):
                client.login("alice", "alicepw")
            with pytest.raises((EOFError, OSError)):
                client.voidcmd("NOOP")

    await in_thread(talk)


@pytest_twisted.ensureDeferred
async def test_sessions_per_user_are_limited(start_ftp: StartServer) -> None:
    server = start_ftp(max_sessions_per_user=1)

    def talk() -> None:
        with server.client("alice", "alicepw") as first:
            with server.client() as second:
                with pytest.raises(ftplib.error_temp, match="^421"):
                    second.login("alice", "alicepw")
            first.voidcmd("NOOP")  # the first session goes on
            first.quit()

        def login_again() -> bool:  # once the server has seen the first session end
            try:
                with server.client("alice", "alicepw") as again:
                    again.voidcmd("NOOP")
                return True
            except ftplib.error_temp:
                return False

        wait_for(login_again, CLIENT_TIMEOUT, "alice's first session to end")

    await in_thread(talk)


@pytest_twisted.ensureDeferred
async def test_logging_in_again_on_one_connection_ends_the_first_session(start_ftp: StartServer) -> None:
    """A second USER/PASS on a connection releases the session count of the
    first login (it used to leak one, until the account got 421 for good)."""
    server = start_ftp(max_sessions_per_user=2)
    sessions = server.factory.sessions_per_user

    def talk() -> None:
        with server.client("alice", "alicepw") as client:
            for _ in range(12):  # more than any limit: each login replaces the last
                assert client.login("alice", "alicepw").startswith("230")
            assert sessions == {"alice": 1}
            client.login("bob", "pässwörd")
            assert sessions == {"bob": 1}
            assert client.pwd() == "/"
            with pytest.raises(ftplib.error_perm, match="^530"):
                client.login("alice", "wrong")  # a failed login ends the session before it too
            assert sessions == {}
            with pytest.raises(ftplib.error_perm, match="^530"):
                client.pwd()
            client.login("alice", "alicepw")
            with server.client("alice", "alicepw") as other:  # 2 sessions: the limit, not beyond
                other.voidcmd("NOOP")
                assert sessions == {"alice": 2}
            client.quit()

    await in_thread(talk)
    await until(lambda: sessions == {}, "the sessions to end")


@pytest_twisted.ensureDeferred
async def test_idle_session_is_closed(start_ftp: StartServer) -> None:
    server = start_ftp(idle_timeout=1)

    def talk() -> bytes:
        with server.client("alice", "alicepw") as client:
            assert client.sock is not None
            return client.sock.recv(1024)  # returns when the server hangs up

    assert await in_thread(talk) == b""


@pytest_twisted.ensureDeferred
async def test_a_connection_that_does_not_log_in_in_time_is_closed(start_ftp: StartServer) -> None:
    clock = task.Clock()
    server = start_ftp(login_timeout=30, clock=clock)
    idle = await in_thread(server.client)
    user_only = await in_thread(server.client)
    logged_in = await in_thread(lambda: server.client("alice", "alicepw"))
    try:
        assert (await in_thread(lambda: user_only.sendcmd("USER alice")))[:3] == "331"
        clock.advance(29)

        def noop_refused() -> None:  # a command is no login, and does not put the deadline off
            with pytest.raises(ftplib.error_perm, match="^530"):
                idle.voidcmd("NOOP")

        await in_thread(noop_refused)
        clock.advance(1)

        def told_and_closed(client: ftplib.FTP) -> tuple[str, bytes]:
            line = client.getline()
            assert client.sock is not None
            return line, client.sock.recv(1024)

        for client in (idle, user_only):
            assert await in_thread(lambda: told_and_closed(client)) == (
                "421 Not logged in within 30 seconds: closing", b"")
        clock.advance(300)  # logged in: the idle timeout (600 s) applies
        assert (await in_thread(lambda: logged_in.voidcmd("NOOP")))[:3] == "200"
    finally:
        for client in (idle, user_only, logged_in):
            await in_thread(client.close)


@pytest_twisted.ensureDeferred
async def test_a_login_checked_past_the_deadline_counts_no_session(start_ftp: StartServer, redis: Redis) -> None:
    @implementer(ICredentialsChecker)
    class SlowChecker:
        credentialInterfaces = (IUsernamePassword,)
        pending: list[Deferred[Any]] = []

        def requestAvatarId(self, credentials: object) -> Deferred[Any]:
            self.pending.append(Deferred())
            return self.pending[-1]

    realm = AccountRealm(UserStore(redis))
    install_ftp_avatars(realm)
    clock = task.Clock()
    server = start_ftp(portal=Portal(realm, [SlowChecker()]), login_timeout=30, clock=clock,
                       max_sessions_per_user=1)
    client = await in_thread(server.client)
    try:
        await in_thread(lambda: client.sendcmd("USER alice"))
        await in_thread(lambda: client.putcmd("PASS alicepw"))
        await until(lambda: bool(SlowChecker.pending), "the password check to start")
        clock.advance(30)
        assert await in_thread(client.getline) == "421 Not logged in within 30 seconds: closing"
        await until(lambda: server.factory.connectionCount == 0, "the connection to close")
        # The check ends after the connection did (the realm answers at once).
        SlowChecker.pending[0].callback(KnownUser(Account("alice")))
        assert server.factory.sessions_per_user == {}
    finally:
        await in_thread(client.close)


# -- the empty read-only home -----------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_empty_home(start_ftp: StartServer) -> None:
    server = start_ftp()

    def talk() -> dict[str, object]:
        with server.client("alice", "alicepw") as client:
            listing: list[str] = []
            return {
                "pwd": client.pwd(),
                "nlst": client.nlst(),  # a bare NLST
                "nlst /": client.nlst("/"),
                "list": (client.retrlines("LIST", listing.append), listing),
                "cwd /": client.cwd("/")[:3],
                "cwd .": client.cwd(".")[:3],
                "pwd again": client.pwd(),
            }

    assert await in_thread(talk) == {
        "pwd": "/", "nlst": [], "nlst /": [], "list": ("226 Transfer Complete.", []),
        "cwd /": "250", "cwd .": "250", "pwd again": "/",
    }  # fmt: skip


@pytest_twisted.ensureDeferred
async def test_missing_names_are_550(start_ftp: StartServer) -> None:
    server = start_ftp()

    def talk() -> list[str]:
        refused = []
        with server.client("alice", "alicepw") as client:
            for attempt in [
                lambda: client.retrbinary("RETR x", lambda data: None),
                lambda: client.size("x"),
                lambda: client.sendcmd("MDTM x"),
                lambda: client.cwd("x"),
                lambda: client.cwd("€uro/été"),  # UTF-8, not latin-1, on the wire
                lambda: client.retrbinary("RETR /", lambda data: None),  # a directory
            ]:
                with pytest.raises(ftplib.error_perm) as error:
                    attempt()
                refused.append(str(error.value)[:3])
            assert client.pwd() == "/"
        return refused

    assert await in_thread(talk) == ["550"] * 6


@pytest_twisted.ensureDeferred
async def test_no_climbing_above_the_root(start_ftp: StartServer) -> None:
    server = start_ftp()

    def talk() -> None:
        with server.client("alice", "alicepw") as client:
            for path in ["..", "../..", "/..", "/../..", "../alice", "..%2f.."]:
                try:
                    client.cwd(path)
                except ftplib.error_perm as error:
                    assert str(error).startswith("550"), error
                assert client.pwd() == "/", path
            with pytest.raises(ftplib.error_perm, match="^550"):
                client.sendcmd("CDUP")
            client.cwd("x/..")  # normalised to the root, which exists
            assert client.pwd() == "/"
            for path in ["../etc/passwd", "/../../etc/passwd", "..%2fetc/passwd", "../bob"]:
                with pytest.raises(ftplib.error_perm, match="^550"):
                    client.retrbinary(f"RETR {path}", lambda data: None)
                try:
                    assert client.nlst(path) == []
                except ftplib.error_perm as error:
                    assert str(error).startswith("550"), error

    await in_thread(talk)


@pytest_twisted.ensureDeferred
async def test_writes_are_refused(start_ftp: StartServer) -> None:
    server = start_ftp()

    def talk() -> list[str]:
        refused = []
        with server.client("alice", "alicepw") as client:
            for attempt in [
                lambda: client.storbinary("STOR new.txt", io.BytesIO(b"data")),
                lambda: client.storbinary("APPE new.txt", io.BytesIO(b"data")),
                lambda: client.mkd("dir"),
                lambda: client.rmd("dir"),
                lambda: client.delete("file"),
                lambda: client.rename("a", "b"),
                lambda: client.sendcmd("RNTO b"),
            ]:
                with pytest.raises(ftplib.error_perm) as error:
                    attempt()
                refused.append(str(error.value)[:3])
            assert client.nlst() == []
        return refused

    # RNTO without a granted RNFR: 503 (bad sequence) from the stock server.
    assert await in_thread(talk) == ["550"] * 6 + ["503"]


@pytest_twisted.ensureDeferred
async def test_a_tree_plugged_in(start_ftp: StartServer) -> None:
    """The shell serves whatever tree source the realm was given."""
    server = start_ftp(trees=lambda account: StubTree())

    def talk() -> dict[str, object]:
        with server.client("alice", "alicepw") as client:
            root = client.nlst()
            client.cwd("ORD-1")
            listing: list[str] = []
            client.retrlines("LIST", listing.append)
            result: dict[str, object] = {"root": root, "pwd": client.pwd(), "nlst": client.nlst(), "size": client.size("été.tif")}
            result["globs"] = [client.nlst("*.tif"), client.nlst("*.nc"), client.nlst("/ORD-?"), client.nlst("../ORD-[2]")]
            result["list"] = [line.split()[0] + " " + line.split()[-1] for line in listing]
            with pytest.raises(ftplib.error_perm, match="^550"):
                client.cwd("été.tif")
            with pytest.raises(ftplib.error_perm, match="^550"):
                client.retrbinary("RETR été.tif", lambda data: None)  # the stub has no content
            client.cwd("..")
            result["back"] = client.pwd()
            return result

    assert await in_thread(talk) == {
        "root": ["ORD-1", "ORD-2"], "pwd": "/ORD-1", "nlst": ["été.tif"], "size": 5,
        "list": ["-r--r--r-- été.tif"], "back": "/",
        "globs": [["été.tif"], [], ["ORD-1", "ORD-2"], ["ORD-2"]],
    }  # fmt: skip


# -- data connections ----------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_active_mode_refused(start_ftp: StartServer) -> None:
    server = start_ftp()

    def talk() -> list[str]:
        refused = []
        with server.client("alice", "alicepw") as client:
            for attempt in [
                lambda: client.sendcmd("PORT 127,0,0,1,4,1"),
                lambda: client.sendcmd("EPRT |1|127.0.0.1|1025|"),
                lambda: client.sendcmd("PORT"),
            ]:
                with pytest.raises(ftplib.error_perm) as error:
                    attempt()
                refused.append(str(error.value)[:3])
            # (ftplib's own active mode, set_pasv(False), leaks its listening
            # socket when PORT is refused; curl's is tried in test_curl.)
            assert client.nlst() == []
        return refused

    assert await in_thread(talk) == ["502"] * 3


def _closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def _second_loopback() -> str:
    """127.0.0.2, which Linux routes to lo like 127.0.0.1: a different peer
    address on one machine. Skips when this host does not allow it."""
    try:
        with socket.socket() as probe:
            probe.bind(("127.0.0.2", 0))
    except OSError as e:
        pytest.skip(f"cannot use 127.0.0.2 as a second loopback address here: {e}")
    return "127.0.0.2"


@pytest_twisted.ensureDeferred
async def test_passive_port_is_bound_to_the_control_address(start_ftp: StartServer) -> None:
    other = _second_loopback()
    server = start_ftp()

    def talk() -> tuple[str, str]:
        with server.client("alice", "alicepw") as client:
            host, port = ftplib.parse227(client.sendcmd("PASV"))
            # The stock server would listen on every interface; this one only
            # where the client reached it.
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((other, port), timeout=CLIENT_TIMEOUT).close()
            with socket.create_connection((host, port), timeout=CLIENT_TIMEOUT) as data:
                client.putcmd("NLST")
                assert client.getresp().startswith("125")
                assert _closed_by_server(data)  # empty listing
                return host, client.voidresp()

    assert await in_thread(talk) == ("127.0.0.1", "226 Transfer Complete.")


@pytest_twisted.ensureDeferred
async def test_pasv_announces_the_public_host_behind_nat(start_ftp: StartServer) -> None:
    server = start_ftp(public_host="203.0.113.7")

    def talk() -> tuple[str, int]:
        with server.client("alice", "alicepw") as client:
            host, port = ftplib.parse227(client.sendcmd("PASV"))
            # The data port still listens on the control interface (the NAT forwards to it).
            with socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT) as data:
                client.putcmd("NLST")
                assert client.getresp().startswith("125")
                assert _closed_by_server(data)
                client.voidresp()
            return host, port

    host, port = await in_thread(talk)
    assert host == "203.0.113.7" and port > 0


@pytest_twisted.ensureDeferred
async def test_data_connection_only_from_the_control_peer(start_ftp: StartServer) -> None:
    other = _second_loopback()
    server = start_ftp()

    def talk() -> str:
        with server.client("alice", "alicepw") as client:
            host, port = ftplib.parse227(client.sendcmd("PASV"))
            with socket.socket() as intruder:
                intruder.settimeout(CLIENT_TIMEOUT)
                intruder.bind((other, 0))
                intruder.connect((host, port))
                assert _closed_by_server(intruder)
            # The port still waits for the real client.
            with socket.create_connection((host, port), timeout=CLIENT_TIMEOUT) as data:
                client.putcmd("NLST")
                assert client.getresp().startswith("125")
                assert _closed_by_server(data)
                return client.voidresp()

    assert await in_thread(talk) == "226 Transfer Complete."


@pytest_twisted.ensureDeferred
async def test_passive_port_range_and_exhaustion(start_ftp: StartServer) -> None:
    # A passive range of one port cannot say "port 0": the port is one below
    # the kernel's ephemeral range (no client socket is handed it meanwhile),
    # and another one when a stranger holds it (the server answers 425).
    free = candidate_ports(1)[0]
    server = start_ftp(passive_ports=range(free, free + 1))

    def passive_session() -> tuple[ftplib.FTP, int]:
        """A session holding the one passive port, as PASV answered it."""
        nonlocal free
        for _ in range(20):
            client = server.client("alice", "alicepw")
            try:
                return client, ftplib.parse227(client.sendcmd("PASV"))[1]
            except ftplib.error_temp:  # a stranger holds the port: another one, for the sessions to come
                client.close()
                free = candidate_ports(1)[0]
                server.factory.passivePortRange = range(free, free + 1)
        raise AssertionError("no free passive port below the ephemeral range")

    first, port = await in_thread(passive_session)
    second = await in_thread(lambda: server.client("bob", PASSWORDS["bob"]))
    try:

        def both() -> tuple[int, str, str]:
            with socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT):
                # The only passive port is the first session's.
                with pytest.raises(ftplib.error_temp) as busy:
                    second.sendcmd("PASV")
                noop = second.voidcmd("NOOP")  # the session goes on
            first.quit()
            return port, str(busy.value)[:3], noop[:3]

        assert await in_thread(both) == (free, "425", "200")
        await until(lambda: not data_channels(), "the first session's passive port to close")
        assert await in_thread(second.nlst) == []  # now the port is free again
    finally:
        await in_thread(second.close)
        await in_thread(first.close)


@pytest_twisted.ensureDeferred
async def test_pasv_without_a_data_connection(start_ftp: StartServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(OseodFTP, "dtpTimeout", 0.2)
    server = start_ftp()
    client = await in_thread(lambda: server.client("alice", "alicepw"))
    try:

        def pasv() -> str:
            client.sendcmd("PASV")
            # Nobody connects: the server gives up with 425...
            with pytest.raises(ftplib.error_temp) as gave_up:
                client.getresp()
            return str(gave_up.value)[:3]

        assert await in_thread(pasv) == "425"
        # ... and closes the port, while the session goes on.
        await until(lambda: not data_channels(), "the unused passive port to close")
        assert (await in_thread(lambda: client.voidcmd("NOOP")))[:3] == "200"
    finally:
        await in_thread(client.close)


@pytest_twisted.ensureDeferred
async def test_connection_limit(start_ftp: StartServer) -> None:
    server = start_ftp(max_connections=1)
    first = await in_thread(lambda: server.client("alice", "alicepw"))
    try:

        def refused() -> str:
            with pytest.raises(ftplib.error_temp) as error:
                server.client()
            return str(error.value)

        assert (await in_thread(refused)).startswith("421")
    finally:
        await in_thread(first.quit)
    await until(lambda: server.factory.connectionCount == 0, "the first session to end")

    def again() -> str:
        with server.client("bob", PASSWORDS["bob"]) as client:
            return client.pwd()

    assert await in_thread(again) == "/"


# -- logging ---------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_stock_chatter_is_recognised(start_ftp: StartServer) -> None:
    server = start_ftp()

    def talk() -> None:
        with server.client("alice", "alicepw") as client:
            client.retrlines("LIST", lambda line: None)
            assert client.nlst() == []

    with capturedLogs() as events:
        await in_thread(talk)
        await until(lambda: server.factory.connectionCount == 0 and not data_channels(), "the session to end")
    dropped = [e for e in events if ftp_chatter(e) is PredicateResult.no]
    kept = [formatEvent(e) for e in events if ftp_chatter(e) is not PredicateResult.no]
    assert len(dropped) >= 2 * 6  # two passive data connections
    assert kept == ["FTP login alice from 127.0.0.1"]
    assert ftp_chatter({"log_namespace": "log_legacy", "log_text": "something else"}) is PredicateResult.maybe


# -- curl ---------------------------------------------------------------------------


async def curl(server: Server, path: str, user: str, password: str, *options: str) -> tuple[int, bytes]:
    assert CURL is not None
    out, err, code = await utils.getProcessOutputAndValue(
        CURL,
        ["--silent", "--show-error", "--noproxy", "*", "--max-time", str(int(CLIENT_TIMEOUT)),
         "--user", f"{user}:{password}", *options, f"ftp://{server.host}:{server.port}{path}"],
        env={"PATH": os.environ.get("PATH", "")},
    )  # fmt: skip
    return code, out


@needs_curl
@pytest_twisted.ensureDeferred
async def test_curl(start_ftp: StartServer) -> None:
    server = start_ftp()
    assert await curl(server, "/", "alice", "alicepw") == (0, b"")  # EPSV + LIST
    assert await curl(server, "/", "alice", "alicepw", "--disable-epsv") == (0, b"")  # PASV
    assert await curl(server, "/", "bob", "pässwörd", "--list-only") == (0, b"")  # NLST
    assert (await curl(server, "/", "bob", "passwort"))[0] == 67  # login denied
    assert (await curl(server, "/", "anonymous", "guest@"))[0] == 67
    assert (await curl(server, "/missing.tif", "alice", "alicepw"))[0] == 78  # remote file not found
    assert (await curl(server, "/", "alice", "alicepw", "--ftp-port", "-"))[0] == 30  # PORT/EPRT refused
    assert (await curl(server, "/new.txt", "alice", "alicepw", "--upload-file", "/dev/null"))[0] == 25  # upload refused
