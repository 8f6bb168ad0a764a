"""The SFTP listener (oseod/sftp) with real clients: OpenSSH's sftp, scp
and ssh, and curl (libssh2), against the results tree of a real order
made by the engine; the daemon's host key pinned in a known_hosts file."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest
import pytest_twisted
from twisted.internet import reactor, threads

from oseod.jobs.dummy import content
from oseod.model.orders import OrderStatus
from oseod.sftp.hostkey import host_key, host_key_fingerprint
from oseod.sftp.server import make_sftp_factory
from oseod.store.connection import Redis
from oseod.store.sshkeys import SshKeyStore, parse_public_key
from tests.polling import eventually
from tests.test_http_ordering import order_id_of, server, submit  # noqa: F401 - a fixture

pytestmark = pytest.mark.skipif(not (shutil.which("sftp") and shutil.which("ssh-keygen")),
                                reason="needs OpenSSH's client")

TIMEOUT = 30  # only bounds a hung client


@attrs.define
class Sftp:
    srv: Any
    port: int
    home: Path
    fingerprint: str
    key: Path

    def ssh_options(self, user_key: bool = True, batch: bool = True) -> list[str]:
        options = ["-F", "/dev/null", "-o", f"UserKnownHostsFile={self.home / 'known_hosts'}",
                   "-o", "StrictHostKeyChecking=yes", "-o", f"BatchMode={'yes' if batch else 'no'}",
                   "-o", "IdentitiesOnly=yes",
                   "-o", "ConnectTimeout=10"]
        return options + (["-i", str(self.key)] if user_key else ["-o", "PubkeyAuthentication=no"])

    async def run(self, *argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "HOME": str(self.home)}
        return await threads.deferToThread(subprocess.run, list(argv), input=stdin, capture_output=True, text=True,
                                           timeout=TIMEOUT, env=env, cwd=self.home)

    async def batch(self, *commands: str, user: str = "alice") -> subprocess.CompletedProcess[str]:
        return await self.run("sftp", *self.ssh_options(), "-P", str(self.port), "-b", "-",
                              f"{user}@127.0.0.1", stdin="\n".join(commands) + "\n")

    async def ssh(self, *args: str, user: str = "alice") -> subprocess.CompletedProcess[str]:
        return await self.run("ssh", *self.ssh_options(), "-p", str(self.port), *args, f"{user}@127.0.0.1")

    async def curl(self, user: str, password: str, path: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return await self.run("curl", "-sS", "--hostpubsha256", self.fingerprint.removeprefix("SHA256:") + "=",
                              *extra, f"sftp://{user}:{password}@127.0.0.1:{self.port}{path}")


@pytest_twisted.async_yield_fixture
async def sftp(server: Any, redis: Redis, tmp_path: Path) -> AsyncIterator[Any]:  # noqa: F811 - a fixture
    ports: list[Any] = []

    async def start() -> tuple[Sftp, str]:
        srv = await server()
        code, ack = await srv.call(submit("a1", "a2"))
        assert code == 200
        order_id = order_id_of(ack)
        await srv.parts.engine.drain()
        key = host_key(tmp_path)
        port = reactor.listenTCP(0, make_sftp_factory(srv.parts.portal, key, idle_timeout=60),
                                 interface="127.0.0.1")
        ports.append(port)
        home = tmp_path / "home"
        home.mkdir()
        number = port.getHost().port
        (home / "known_hosts").write_text(f"[127.0.0.1]:{number} {key.public().toString('openssh').decode()}\n")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(home / "id_ed25519")], check=True)
        await SshKeyStore(redis).add("alice", parse_public_key((home / "id_ed25519.pub").read_text()))
        return Sftp(srv, number, home, host_key_fingerprint(key), home / "id_ed25519"), order_id

    yield start
    for port in ports:
        await port.stopListening()


async def status_of(srv: Any, order_id: str) -> tuple[OrderStatus, list[OrderStatus]]:
    order = await srv.parts.ordering.find(order_id)
    return order.status.status, [i.status.status for i in order.items]


@pytest_twisted.ensureDeferred
async def test_key_login_lists_gets_and_resumes_and_a_whole_download_counts(sftp: Any) -> None:
    s, order_id = await sftp()
    partial = s.home / "a2.part"
    partial.write_bytes(content("a2", 1024)[:100])
    done = await s.batch("ls /", f"ls /{order_id}", f"ls -l /{order_id}/a1", f"get /{order_id}/a1/a1-product.dat",
                         f"reget /{order_id}/a2/a2-product.dat a2.part")
    assert done.returncode == 0, done.stderr
    assert order_id in done.stdout and "a1-product.dat" in done.stdout
    assert (s.home / "a1-product.dat").read_bytes() == content("a1", 1024)
    assert partial.read_bytes() == content("a2", 1024)
    # The whole file of a1, and a2 resumed to its end: both downloaded.

    async def downloaded() -> bool:
        return await status_of(s.srv, order_id) == (OrderStatus.Downloaded, [OrderStatus.Downloaded] * 2)

    await eventually(downloaded, what="the SFTP downloads to make the order Downloaded")


@pytest_twisted.ensureDeferred
async def test_a_partial_read_is_no_download_and_passwords_work_through_curl(sftp: Any) -> None:
    s, order_id = await sftp()
    if not shutil.which("curl"):
        pytest.skip("needs curl")
    path = f"/{order_id}/a1/a1-product.dat"
    got = await s.curl("alice", "alice-password", path, "-r", "0-99")
    assert got.returncode == 0, got.stderr
    assert got.stdout.encode("latin-1", "replace")[:10] and len(got.stdout) <= 100
    got = await s.curl("alice", "alice-password", f"/{order_id}/")
    assert got.returncode == 0 and "a1" in got.stdout, got.stderr
    # What one read ended before the end of the file: nothing counted.
    assert await status_of(s.srv, order_id) == (OrderStatus.Completed, [OrderStatus.Completed] * 2)
    wrong = await s.curl("alice", "not-the-password", path)
    assert wrong.returncode != 0
    # Another user sees nothing of alice's order.
    other = await s.curl("bob", "bob-password", path)
    assert other.returncode != 0
    listed = await s.curl("bob", "bob-password", "/")
    assert listed.returncode == 0 and order_id not in listed.stdout


@pytest_twisted.ensureDeferred
async def test_writes_shells_and_forwarding_are_refused(sftp: Any) -> None:
    s, order_id = await sftp()
    (s.home / "upload.txt").write_text("x")
    for command in (f"put upload.txt /{order_id}/a1/upload.txt", "put upload.txt /upload.txt",
                    f"rm /{order_id}/a1/a1-product.dat", "mkdir /new", f"rename /{order_id} /x"):
        refused = await s.batch(command)
        assert refused.returncode != 0, command
        assert "denied" in refused.stderr.lower() or "failure" in refused.stderr.lower(), refused.stderr
    assert (await s.batch(f"ls /{order_id}/a1")).stdout.count("upload") == 0
    shell = await s.ssh("echo", "hello")
    assert shell.returncode != 0 and "hello" not in shell.stdout
    tty = await s.ssh("-tt")
    assert tty.returncode != 0
    forward = await s.ssh("-W", "127.0.0.1:9")  # a direct-tcpip channel, as -L opens
    assert forward.returncode != 0
    remote = await s.ssh("-N", "-o", "ExitOnForwardFailure=yes", "-R", "0:127.0.0.1:9")
    assert remote.returncode != 0 and "forward" in remote.stderr.lower(), remote.stderr
    # scp (through the sftp subsystem) exits 0.
    copied = await s.run("scp", *s.ssh_options(), "-P", str(s.port),
                         f"alice@127.0.0.1:/{order_id}/a2/a2-product.dat", "scp.dat")
    assert copied.returncode == 0, copied.stderr
    assert (s.home / "scp.dat").read_bytes() == content("a2", 1024)


@pytest_twisted.ensureDeferred
async def test_a_disabled_user_and_an_unknown_key_are_refused(sftp: Any) -> None:
    s, order_id = await sftp()
    other = s.home / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    unknown = await s.run("sftp", *s.ssh_options(), "-o", f"IdentityFile={other}", "-o", "IdentitiesOnly=yes",
                          "-P", str(s.port), "-b", "-", "bob@127.0.0.1", stdin="ls /\n")
    assert unknown.returncode != 0
    assert (await s.batch("ls /")).returncode == 0
    await s.srv.parts.users.update("alice", disabled=True)
    refused = await s.batch("ls /")
    assert refused.returncode != 0 and "denied" in refused.stderr.lower(), refused.stderr


@pytest_twisted.ensureDeferred
async def test_sessions_per_user_count_with_ftp(sftp: Any, tmp_path: Path) -> None:
    s, order_id = await sftp()
    from oseod.metrics import RequestMetrics

    held, metrics = {"alice": 1}, RequestMetrics()  # as the FTP factory counts a session of alice's
    port = reactor.listenTCP(0, make_sftp_factory(s.srv.parts.portal, host_key(tmp_path), idle_timeout=60,
                                                  max_sessions_per_user=1, sessions_per_user=held,
                                                  metrics=metrics),
                             interface="127.0.0.1")
    try:
        (s.home / "known_hosts").write_text((s.home / "known_hosts").read_text().replace(
            f"[127.0.0.1]:{s.port}", f"[127.0.0.1]:{port.getHost().port}"))
        s.port = port.getHost().port
        refused = await s.batch("ls /")
        assert refused.returncode != 0
        held.clear()
        assert (await s.batch("ls /")).returncode == 0

        async def released() -> bool:
            return held == {}

        await eventually(released, what="the session's count to be released at its end")
        assert [metrics.count("sftp", *line) for line in (("login", "421"), ("login", "ok"), ("logout", "ok"))] \
            == [1, 1, 1]
    finally:
        await port.stopListening()


def test_host_key_is_made_once_private(tmp_path: Path) -> None:
    key = host_key(tmp_path)
    path = tmp_path / "ssh_host_ed25519_key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert host_key(tmp_path).public().blob() == key.public().blob()
    shown = subprocess.run(["ssh-keygen", "-l", "-f", str(path.with_suffix(".pub"))], capture_output=True,
                           text=True, check=True).stdout
    assert host_key_fingerprint(key) in shown




# --- no unbounded buffering: a client that asks and never reads -----------------------------

class FakeTcp:
    def __init__(self) -> None:
        self.dataBuffer = b""
        self.lost = False

    def getPeer(self) -> Any:
        from twisted.internet.address import IPv4Address
        return IPv4Address("TCP", "127.0.0.1", 1)

    getHost = getPeer

    def loseConnection(self) -> None:
        self.lost = True


class FakeConn:
    """The SSH connection under one channel: what it sends is counted."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.transport = attrs.make_class("T", {"transport": attrs.field()})(FakeTcp())

    def sendData(self, channel: Any, data: bytes) -> None:
        self.sent.append(data)

    def sendRequest(self, *args: Any, **kwargs: Any) -> None:
        pass

    def sendClose(self, channel: Any) -> None:
        pass


class FakeTree:
    def __init__(self, path: Path) -> None:
        from oseod.auth.account import Account
        self.account = Account(name="alice")
        self._path = path
        self.finished: list[tuple[bool, int]] = []

    async def stat(self, names: Sequence[str]) -> Any:
        from oseod.results import Node
        return Node("f", False, self._path.stat().st_size)

    async def locate(self, names: Sequence[str], client: Any, via: str) -> Any:
        from oseod.results import Located
        return Located(self._path, self._path.stat().st_size, lambda c, n: self.finished.append((c, n)))

    async def opened(self, path: Path) -> Any:
        return open(path, "rb")  # noqa: SIM115 - at once: this test runs without a reactor


def sftp_packet(kind: int, payload: bytes) -> bytes:
    import struct
    return struct.pack("!LB", len(payload) + 1, kind) + payload


def test_a_client_that_never_reads_gets_one_answer_buffered(tmp_path: Path) -> None:
    import struct

    from twisted.conch.ssh.common import NS
    from twisted.internet.task import Clock

    from oseod.sftp.server import MAX_HELD, RESUME_POLL, TCP_HIGH_WATER, SFTPSession, SFTPUser

    data = tmp_path / "f"
    data.write_bytes(os.urandom(4 * 1024 * 1024))
    tree = FakeTree(data)
    clock = Clock()
    avatar = SFTPUser(tree.account, tree, clock)  # type: ignore[arg-type]
    conn = FakeConn()
    window = 64 * 1024
    session = SFTPSession(remoteWindow=window, remoteMaxPacket=32768, conn=conn, avatar=avatar)
    assert session.request_subsystem(NS(b"sftp")) == 1
    session.dataReceived(sftp_packet(1, struct.pack("!L", 3)))
    session.dataReceived(sftp_packet(3, struct.pack("!L", 1) + NS(b"/o/i/f") + struct.pack("!LL", 1, 0)))
    answer = b"".join(conn.sent)
    handle = answer[answer.rindex(struct.pack("!BL", 102, 1)) + 5:]
    handle = handle[4:4 + struct.unpack("!L", handle[:4])[0]]
    conn.sent.clear()
    reads = b"".join(sftp_packet(5, struct.pack("!L", 10 + n) + NS(handle) + struct.pack("!QL", n * 65536, 65536))
                     for n in range(64))
    session.dataReceived(reads)
    # One answer went out as far as the window let it; the rest of it waits,
    # and the other 63 requests are held, not answered into a buffer.
    assert sum(map(len, conn.sent)) <= window
    assert len(session.buf) < 65536 + 64
    assert session._held  # noqa: SLF001
    # The client reads (its window grows): the next answers go, one window's worth.
    session.addWindowBytes(window)
    assert 2 * window - 64 < sum(map(len, conn.sent)) <= 2 * window
    assert len(session.buf) < 65536 + 64
    assert session._held and not clock.getDelayedCalls()  # noqa: SLF001 - no poll: the window said it
    # The window is open but the socket's send buffer is full: the next
    # answers wait for it to drain (looked at on the clock).
    tcp = conn.transport.transport
    tcp.dataBuffer = b"x" * (TCP_HIGH_WATER + 1)
    before = sum(map(len, conn.sent))
    session.addWindowBytes(10 * window)
    flushed = sum(map(len, conn.sent))
    assert flushed - before < 65536 + 64 and clock.getDelayedCalls()
    tcp.dataBuffer = b""
    clock.advance(RESUME_POLL)
    assert sum(map(len, conn.sent)) > flushed + window
    # A client that keeps sending without reading is cut off.
    session.dataReceived(b"\0" * MAX_HELD)
    assert conn.transport.transport.lost
    clock.advance(1)


def test_conch_chatter_is_filtered() -> None:
    from twisted.logger import LogLevel, PredicateResult

    from oseod.sftp.noise import sftp_chatter

    assert sftp_chatter({"log_namespace": "twisted.conch.ssh.filetransfer.FileTransferServer",
                         "log_level": LogLevel.info, "log_format": "dispatching: {x}"}) is PredicateResult.no
    assert sftp_chatter({"log_namespace": "oseod.sftp.server.OseodSSHTransport", "log_level": LogLevel.error,
                         "log_format": "Got remote error, code {code}\nreason: {description}",
                         "code": 11}) is PredicateResult.no
    assert sftp_chatter({"log_namespace": "oseod.sftp", "log_level": LogLevel.info,
                         "log_format": "SFTP login {user} from {peer}"}) is PredicateResult.maybe


@pytest_twisted.ensureDeferred
async def test_key_checker_answers_pk_ok_only_for_stored_keys_and_counts_bad_signatures(server: Any,  # noqa: F811
                                                                                        redis: Redis) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from twisted.conch.error import ValidPublicKey
    from twisted.conch.interfaces import IConchUser
    from twisted.conch.ssh.keys import Key
    from twisted.cred.credentials import SSHPrivateKey, UsernamePassword
    from twisted.cred.error import UnauthorizedLogin

    from oseod.auth.checkers import NotAGuess
    from oseod.auth.lockout import Client, LockedOut

    srv = await server()
    portal, mind = srv.parts.portal, Client("192.0.2.7", "sftp")
    mine, stranger = Key(Ed25519PrivateKey.generate()), Key(Ed25519PrivateKey.generate())
    await SshKeyStore(redis).add("alice", parse_public_key(mine.public().toString("openssh").decode()))

    async def login(key: Key, signer: Key | None) -> Any:
        blob, data = key.public().blob(), b"session-and-request"
        signature = signer.sign(data) if signer is not None else None
        return await portal.login(SSHPrivateKey(b"alice", b"ssh-ed25519", blob, data, signature), mind, IConchUser)

    with pytest.raises(ValidPublicKey):
        await login(mine, None)
    for _ in range(6):  # asking about a key is no guess: never locked out by it
        with pytest.raises(NotAGuess):
            await login(stranger, None)
    _, avatar, logout = await login(mine, mine)
    assert avatar.account.name == "alice"
    logout()
    for _ in range(5):  # a signature by another key: a failure, as a wrong password
        with pytest.raises(UnauthorizedLogin):
            await login(mine, stranger)
    with pytest.raises(LockedOut):
        await portal.login(UsernamePassword(b"alice", b"alice-password"), mind, IConchUser)


@pytest_twisted.ensureDeferred
async def test_weak_algorithms_are_refused(sftp: Any) -> None:
    s, _ = await sftp()
    for option in ("Ciphers=aes128-cbc", "Ciphers=3des-cbc", "MACs=hmac-sha1", "MACs=hmac-md5",
                   "HostKeyAlgorithms=ssh-rsa", "HostKeyAlgorithms=ssh-dss"):
        refused = await s.run("sftp", *s.ssh_options(), "-o", option, "-P", str(s.port), "-b", "-",
                              "alice@127.0.0.1", stdin="ls /\n")
        assert refused.returncode != 0 and "no matching" in refused.stderr, (option, refused.stderr)
    banner = await s.run("ssh", *s.ssh_options(), "-v", "-p", str(s.port), "alice@127.0.0.1", "true")
    assert "remote software version oseod" in banner.stderr and "Twisted" not in banner.stderr
    assert "kex: algorithm: " in banner.stderr


@pytest_twisted.ensureDeferred
async def test_a_deleted_user_loses_its_keys(server: Any, redis: Redis) -> None:  # noqa: F811
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from twisted.conch.ssh.keys import Key

    srv = await server()
    store = SshKeyStore(redis)
    key = parse_public_key(Key(Ed25519PrivateKey.generate()).public().toString("openssh").decode() + " me@home")
    assert await store.add("bob", key) and not await store.add("bob", key)
    assert [k.fingerprint for k in await store.list("bob")] == [key.fingerprint]
    await srv.parts.users.delete("bob")
    assert await store.list("bob") == []


@pytest_twisted.ensureDeferred
async def test_idle_and_login_timeouts(sftp: Any, tmp_path: Path) -> None:
    from twisted.internet import task
    from twisted.internet.task import Clock

    s, _ = await sftp()
    clock, held = Clock(), {}  # type: ignore[var-annotated]
    factory = make_sftp_factory(s.srv.parts.portal, host_key(tmp_path), idle_timeout=600, clock=clock,
                                sessions_per_user=held)
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    number = port.getHost().port
    (s.home / "known_hosts").write_text((s.home / "known_hosts").read_text().replace(
        f"[127.0.0.1]:{s.port}", f"[127.0.0.1]:{number}"))
    env = {**os.environ, "HOME": str(s.home)}

    async def ends_while_the_clock_runs(process: subprocess.Popen[bytes], step: float) -> int | None:
        for _ in range(2000):
            if process.poll() is not None:
                return process.returncode
            clock.advance(step)
            await task.deferLater(reactor, 0.01, lambda: None)
        process.kill()
        return None

    try:
        # Logged in, then silent: closed after the idle timeout.
        idle = subprocess.Popen(["ssh", *s.ssh_options(), "-N", "-p", str(number), "alice@127.0.0.1"], env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        async def logged_in() -> bool:
            return held.get("alice") == 1

        await eventually(logged_in, what="the silent client to log in")
        clock.advance(599)
        assert idle.poll() is None
        assert await ends_while_the_clock_runs(idle, 2) is not None
        # Never answering the password prompt: cut off after the login timeout (120 s).
        factory.idle_timeout = 10**6  # so that only the login timeout can end it
        built: list[Any] = []
        build = factory.buildProtocol
        factory.buildProtocol = lambda addr: built.append(build(addr)) or built[-1]  # type: ignore[method-assign]
        askpass = s.home / "askpass-sleeps"
        askpass.write_text("#!/bin/sh\nsleep 20\n")
        askpass.chmod(0o700)
        stuck = subprocess.Popen(
            ["setsid", "-w", "ssh", *s.ssh_options(user_key=False, batch=False), "-N", "-p", str(number),
             "alice@127.0.0.1"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**env, "SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": ":0"})
        try:
            async def asking() -> bool:  # the client waits for its password prompt: userauth has started
                return bool(built) and getattr(built[0].service, "name", None) == b"ssh-userauth"

            await eventually(asking, what="the client to reach the password prompt")
            clock.advance(119)
            assert not built[0].transport.disconnecting
            clock.advance(2)
            assert built[0].transport.disconnecting
        finally:
            stuck.kill()
        assert held == {}
    finally:
        await port.stopListening()


def test_at_most_64_handles_and_two_channels(tmp_path: Path) -> None:
    import struct

    from twisted.conch.error import ConchError
    from twisted.conch.ssh.common import NS

    from oseod.sftp.server import MAX_CHANNELS, MAX_HANDLES, SFTPSession, SFTPUser

    data = tmp_path / "f"
    data.write_bytes(b"x" * 10)
    tree = FakeTree(data)
    avatar = SFTPUser(tree.account, tree)  # type: ignore[arg-type]
    conn = FakeConn()
    session = avatar.lookupChannel(b"session", 1 << 30, 32768, b"")
    assert isinstance(session, SFTPSession)
    session.conn = conn
    assert session.request_subsystem(NS(b"sftp")) == 1
    session.dataReceived(sftp_packet(1, struct.pack("!L", 3)))
    conn.sent.clear()
    session.dataReceived(b"".join(sftp_packet(3, struct.pack("!L", n) + NS(b"/o/i/f") + struct.pack("!LL", 1, 0))
                                  for n in range(MAX_HANDLES + 1)))
    answers = b"".join(conn.sent)
    assert answers.count(struct.pack("!B", 102)) >= MAX_HANDLES  # FXP_HANDLE
    status = struct.pack("!BL", 101, MAX_HANDLES) + struct.pack("!L", 4)  # FXP_STATUS, FX_FAILURE
    assert status in answers
    # Closing the channel closes its files: 64 transfers reported, none of them complete (never read).
    session.closed()
    assert tree.finished == []
    with pytest.raises(ConchError):  # no -L forwarding
        avatar.lookupChannel(b"direct-tcpip", 1 << 20, 32768, b"")
    others = [avatar.lookupChannel(b"session", 1 << 20, 32768, b"") for _ in range(MAX_CHANNELS)]
    with pytest.raises(ConchError):
        avatar.lookupChannel(b"session", 1 << 20, 32768, b"")
    assert len(others) == MAX_CHANNELS
