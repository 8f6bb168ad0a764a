# mypy: untyped-calls-exclude=twisted.conch
"""The SFTP listener (twisted.conch): a hardened SSH server whose only
service is a read-only ``sftp`` subsystem over the account's results.

No shell, exec, pty, env, port forwarding (``-L``/``-R``) or agent
forwarding; ``scp`` works through the sftp subsystem. Weak algorithms are
off; a login must succeed within LOGIN_TIMEOUT seconds and
ATTEMPTS tries; logins go through the daemon's one Portal with the client's
address (the lock-out counts SFTP failures, keys and passwords alike).

Conch has no flow control: a channel's ``write`` buffers past the client's
window without bound. So a session hands the SFTP server one request at a
time, and holds the next while the channel's window is used up or the TCP
send buffer is full; a client that never reads therefore gets at most one
answer (≤ MAX_READ) buffered, and one that keeps sending meanwhile is cut
off past MAX_HELD bytes of requests.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from twisted.conch.avatar import ConchUser
from twisted.conch.error import ConchError
from twisted.conch.ssh import channel, connection, filetransfer, session, transport, userauth
from twisted.conch.ssh.common import getNS
from twisted.conch.ssh.factory import SSHFactory
from twisted.conch.ssh.keys import Key
from twisted.conch.ssh.transport import SSHServerTransport
from twisted.cred.portal import Portal
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin

from ..auth.realm import AccountRealm
from ..connections import Refusal
from ..forwarded import ip_of
from ..metrics import RequestMetrics
from ..model.accounts import Account
from ..model.logins import Client
from ..results import ResultFiles
from .files import MAX_READ, ReadOnlySFTP

log = Logger(namespace="oseod.sftp")

LOGIN_TIMEOUT = 120
ATTEMPTS = 6
MAX_CHANNELS = 2
MAX_HANDLES = 64
MAX_HELD = 1024 * 1024  # request bytes held while the client does not read
MAX_PACKET = MAX_READ + 64 * 1024  # an SFTP request (a WRITE's data is refused anyway)
TCP_HIGH_WATER = 1024 * 1024
RESUME_POLL = 0.05  # seconds between looks at a full TCP buffer
VERSION = b"SSH-2.0-oseod"

TreeSource = Callable[[Account], ResultFiles]


class OseodSSHTransport(SSHServerTransport, TimeoutMixin):
    """conch's server side without the weak algorithms, without the
    software's version in its banner, with an idle timeout."""

    ourVersionString = VERSION
    supportedCiphers = [c for c in SSHServerTransport.supportedCiphers
                        if not c.endswith(b"-cbc") and b"3des" not in c]
    supportedMACs = [m for m in SSHServerTransport.supportedMACs if m.startswith(b"hmac-sha2-")]
    factory: Any  # an OseodSSHFactory
    transport: Any

    def connectionMade(self) -> None:
        closing = self.factory.closing
        if closing is not None and closing():
            self.transport.loseConnection()  # the daemon drains: the client goes elsewhere
            return
        SSHServerTransport.connectionMade(self)
        self.setTimeout(self.factory.idle_timeout)

    def callLater(self, period: float, func: Any) -> IDelayedCall:
        clock = self.factory.clock
        if clock is None:
            from twisted.internet import reactor
            clock = reactor
        return clock.callLater(period, func)  # type: ignore[no-any-return]

    def dataReceived(self, data: bytes) -> None:
        self.resetTimeout()
        SSHServerTransport.dataReceived(self, data)

    def timeoutConnection(self) -> None:
        log.info("SFTP connection from {peer} idle for {seconds} s: closing", peer=self.peer(),
                 seconds=self.factory.idle_timeout)
        self.transport.loseConnection()

    def connectionLost(self, reason: Any = None) -> None:  # type: ignore[override]
        self.setTimeout(None)
        SSHServerTransport.connectionLost(self, reason)

    def peer(self) -> str:
        address = self.transport.getPeer()
        host = getattr(address, "host", None)
        return str(ip_of(host) or host) if host else ""


class _AddressedPortal:
    """The daemon's Portal, told the client's address at each login (the
    lock-out counts per address too)."""

    def __init__(self, portal: Portal, client: Client) -> None:
        self._portal = portal
        self._client = client

    def listCredentialsInterfaces(self) -> Any:
        return self._portal.listCredentialsInterfaces()

    def login(self, credentials: Any, mind: object, *interfaces: Any) -> Any:
        return self._portal.login(credentials, self._client, *interfaces)


class OseodUserAuth(userauth.SSHUserAuthServer):
    """Password and public key logins only (no keyboard-interactive), a
    short login timeout, few attempts per connection."""

    loginTimeout = LOGIN_TIMEOUT
    attemptsBeforeDisconnect = ATTEMPTS
    transport: Any

    def serviceStarted(self) -> None:
        if self.transport.factory.clock is not None:  # the login timeout's clock
            self.clock = self.transport.factory.clock
        userauth.SSHUserAuthServer.serviceStarted(self)
        self._peer = self.transport.peer()
        self.portal = _AddressedPortal(self.transport.factory.portal, Client(self._peer, "sftp"))
        self.supportedAuthentications = [m for m in (b"publickey", b"password")
                                         if m in self.supportedAuthentications]

    def _cbFinishedAuth(self, result: Any) -> None:
        interface, avatar, logout = result
        if isinstance(avatar, SFTPUser):
            factory = self.transport.factory
            name = avatar.account.name
            sessions: dict[str, int] = factory.sessions_per_user
            limit = factory.max_sessions_per_user
            if limit and sessions.get(name, 0) >= limit:
                # The same count as FTP's (the daemon hands both the same dict).
                log.info("SFTP login {user} from {peer} refused: {limit} sessions already", user=name,
                         peer=self._peer, limit=limit)
                self._request("login", "421", name)
                logout()
                self.transport.sendDisconnect(transport.DISCONNECT_TOO_MANY_CONNECTIONS,
                                              f"at most {limit} sessions per user".encode())
                return
            sessions[name] = sessions.get(name, 0) + 1
            started = self.clock.seconds()

            def release() -> None:
                self._request("logout", "ok", name, self.clock.seconds() - started)
                left = sessions.get(name, 1) - 1
                if left > 0:
                    sessions[name] = left
                else:
                    sessions.pop(name, None)

            avatar.client = self._peer
            avatar.on_logout = release
            log.info("SFTP login {user} from {peer}", user=name, peer=self._peer)
            self._request("login", "ok", name)
        userauth.SSHUserAuthServer._cbFinishedAuth(self, result)

    def _request(self, operation: str, outcome: str, user: str, seconds: float = 0.0) -> None:
        """The session's request line (login, logout; each download has its
        own from the results tree), as FTP sessions have theirs."""
        metrics = self.transport.factory.metrics
        if metrics is not None:
            metrics.record("sftp", operation, outcome, seconds, user, self._peer or None)


class _ChannelPipe:
    """The SFTP server's transport: the session channel."""

    def __init__(self, channel: SFTPSession) -> None:
        self._channel: Any = channel

    def write(self, data: bytes) -> None:
        self._channel.write(data)

    def writeSequence(self, data: Any) -> None:
        self._channel.write(b"".join(data))

    def loseConnection(self) -> None:
        self._channel.loseConnection()

    def getPeer(self) -> Any:
        return self._channel.conn.transport.transport.getPeer()

    def getHost(self) -> Any:
        return self._channel.conn.transport.transport.getHost()


class LimitedFileTransferServer(filetransfer.FileTransferServer):
    """conch's SFTP server with at most MAX_HANDLES handles open."""

    def _full(self) -> bool:
        return len(self.openFiles) + len(self.openDirs) >= MAX_HANDLES

    def _cbOpenFile(self, fileObj: Any, requestId: bytes) -> None:
        if self._full():
            fileObj.close()
            raise filetransfer.SFTPError(filetransfer.FX_FAILURE, f"at most {MAX_HANDLES} open handles")
        filetransfer.FileTransferServer._cbOpenFile(self, fileObj, requestId)

    def _cbOpenDirectory(self, dirObj: Any, requestId: bytes) -> None:
        if self._full():
            dirObj.close()
            raise filetransfer.SFTPError(filetransfer.FX_FAILURE, f"at most {MAX_HANDLES} open handles")
        filetransfer.FileTransferServer._cbOpenDirectory(self, dirObj, requestId)


def _tcp_buffered(transport: Any) -> int:
    """Bytes waiting in the TCP transport under ``transport`` (wrappers
    such as the connection budget's in between)."""
    for _ in range(4):
        if transport is None:
            return 0
        if hasattr(transport, "dataBuffer"):
            return len(transport.dataBuffer) + int(getattr(transport, "_tempDataLen", 0))
        transport = getattr(transport, "transport", None)
    return 0


class SFTPSession(session.SSHSession):
    """A session channel that only runs the ``sftp`` subsystem, feeding it
    one request at a time while the client reads its answers."""

    avatar: SFTPUser
    conn: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        session.SSHSession.__init__(self, *args, **kwargs)
        self._server: LimitedFileTransferServer | None = None
        self._held = b""
        self._poll: IDelayedCall | None = None

    def request_subsystem(self, data: bytes) -> int:
        name, _ = getNS(data)
        if name != b"sftp" or self._server is not None:
            return 0
        server = LimitedFileTransferServer(avatar=ReadOnlySFTP(self.avatar.tree, self.avatar.client))
        server.makeConnection(_ChannelPipe(self))
        self._server = server
        return 1

    def request_shell(self, data: bytes) -> int:
        return 0

    def request_exec(self, data: bytes) -> int:
        return 0

    def request_pty_req(self, data: bytes) -> int:
        return 0

    def request_env(self, data: bytes) -> int:
        return 0

    def request_window_change(self, data: bytes) -> int:
        return 0

    def dataReceived(self, data: bytes) -> None:
        if self._server is None:
            return  # no subsystem asked for: nothing to feed
        self._held += data
        if len(self._held) > MAX_HELD:
            log.warn("SFTP session of {user} from {peer} sent {size} bytes of requests without reading the "
                     "answers: closing", user=self.avatar.account.name, peer=self.avatar.client, size=len(self._held))
            self._held = b""
            self.conn.transport.transport.loseConnection()
            return
        self._pump()

    def _tcp_full(self) -> bool:
        return _tcp_buffered(self.conn.transport.transport) > TCP_HIGH_WATER

    def _blocked(self) -> bool:
        return bool(self.buf) or self._tcp_full()

    def _pump(self) -> None:
        if self._poll is not None and self._poll.active():
            self._poll.cancel()
        self._poll = None
        while self._server is not None and len(self._held) >= 4 and not self._blocked():
            (length,) = struct.unpack("!L", self._held[:4])
            if length > MAX_PACKET:
                log.warn("SFTP session from {peer}: a {size}-byte request: closing", peer=self.avatar.client,
                         size=length)
                self._held = b""
                self.loseConnection()
                return
            if len(self._held) < 4 + length:
                return
            packet, self._held = self._held[:4 + length], self._held[4 + length:]
            self._server.dataReceived(packet)
        if self._held and not self.buf and self._tcp_full() and not self.closing:
            # The window's reopening calls addWindowBytes; a full TCP buffer
            # says nothing when it drains, so look again shortly.
            self._poll = self.avatar.callLater(RESUME_POLL, self._pump)

    def addWindowBytes(self, data: int) -> None:
        # The client read: its window grew. Conch sends what waited (after
        # calling startWriting, so that is not the hook); then the next
        # requests are answered.
        session.SSHSession.addWindowBytes(self, data)
        self._pump()

    def eofReceived(self) -> None:
        # scp (through this subsystem) exits 1 without an exit status.
        self.conn.sendRequest(self, b"exit-status", struct.pack(">L", 0))
        self.conn.sendClose(self)

    def closed(self) -> None:
        if self._poll is not None and self._poll.active():
            self._poll.cancel()
        self._poll = None
        self._held = b""
        server, self._server = self._server, None
        if server is not None:
            server.connectionLost(None)  # closes its open files: their transfers are reported
        self.avatar.channel_closed(self)

    def loseConnection(self) -> None:
        # SSHSession's would also close a client process: there is none.
        channel.SSHChannel.loseConnection(self)


class SFTPUser(ConchUser):
    """One logged-in account: session channels only, MAX_CHANNELS at once;
    no global requests (so no ``-R`` forwarding) and no ``direct-tcpip``
    channel (no ``-L``)."""

    def __init__(self, account: Account, tree: ResultFiles, clock: IReactorTime | None = None) -> None:
        ConchUser.__init__(self)
        self.account = account
        self.tree = tree
        self.client: str | None = None
        self._clock = clock
        self._channels: set[Any] = set()
        self.on_logout: Callable[[], None] | None = None  # releases its count in the sessions per user
        self.channelLookup[b"session"] = SFTPSession

    def lookupChannel(self, channelType: bytes, windowSize: int, maxPacket: int, data: bytes) -> Any:
        if len(self._channels) >= MAX_CHANNELS:
            raise ConchError(connection.OPEN_RESOURCE_SHORTAGE, f"at most {MAX_CHANNELS} channels")
        made = ConchUser.lookupChannel(self, channelType, windowSize, maxPacket, data)
        self._channels.add(made)
        return made

    def channel_closed(self, channel: Any) -> None:
        self._channels.discard(channel)

    def callLater(self, seconds: float, f: Callable[[], None]) -> IDelayedCall:
        clock = self._clock
        if clock is None:
            from twisted.internet import reactor
            clock = reactor
        return clock.callLater(seconds, f)  # type: ignore[no-any-return]

    def logout(self) -> None:
        release, self.on_logout = self.on_logout, None
        if release is not None:
            release()
        log.info("SFTP logout {user} from {peer}", user=self.account.name, peer=self.client or "-")


class OseodSSHFactory(SSHFactory):
    protocol = OseodSSHTransport
    services = {b"ssh-userauth": OseodUserAuth, b"ssh-connection": connection.SSHConnection}
    noisy = False  # the Listener logs where it listens

    def __init__(self, portal: Portal, key: Key | None, *, idle_timeout: int, clock: IReactorTime | None = None,
                 closing: Callable[[], bool] | None = None) -> None:
        self.portal = portal
        if key is not None:
            self.use_key(key)
        self.primes = None  # no DH group exchange (no moduli file)
        self.idle_timeout = idle_timeout
        self.clock = clock
        self.closing = closing
        # Sessions of each user now, and how many one may hold (0: any);
        # the daemon passes FTP's count, so the limit spans both.
        self.sessions_per_user: dict[str, int] = {}
        self.max_sessions_per_user = 0
        self.metrics: RequestMetrics | None = None  # where sessions' request lines go

    def use_key(self, key: Key) -> None:
        """The host key (ed25519), before the listener starts."""
        self.privateKeys = {b"ssh-ed25519": key}
        self.publicKeys = {b"ssh-ed25519": key.public()}

    def getPrimes(self) -> None:
        return None


def make_sftp_factory(portal: Portal, key: Key | None, *, idle_timeout: int = 600, clock: IReactorTime | None = None,
                      closing: Callable[[], bool] | None = None, max_sessions_per_user: int = 0,
                      sessions_per_user: dict[str, int] | None = None,
                      metrics: RequestMetrics | None = None) -> OseodSSHFactory:
    """The factory for the SFTP listener. ``portal``: the daemon's one
    Portal, whose realm has the SFTP avatars (:func:`install_sftp_avatars`);
    ``key``: the host key (None: given later by ``use_key``); ``idle_timeout``: seconds without a packet that
    close a connection; while ``closing()`` new connections are closed.
    One account may hold ``max_sessions_per_user`` sessions at once (0:
    any), counted in ``sessions_per_user`` (give the FTP factory's to share
    the limit with FTP). ``metrics`` gets a request line per login and logout."""
    if idle_timeout < 1:
        raise ValueError(f"idle_timeout must be at least 1 second, not {idle_timeout}")
    if max_sessions_per_user < 0:
        raise ValueError(f"max_sessions_per_user must be 0 or more, not {max_sessions_per_user}")
    factory = OseodSSHFactory(portal, key, idle_timeout=idle_timeout, clock=clock, closing=closing)
    factory.max_sessions_per_user = max_sessions_per_user
    factory.metrics = metrics
    if sessions_per_user is not None:
        factory.sessions_per_user = sessions_per_user
    return factory


def refusal_answer(refusal: Refusal) -> bytes:
    """A connection refused by the connection limits gets this line (before
    an SSH version line a client shows or ignores it) and is closed."""
    return f"{refusal.reason}\r\n".encode()


def install_sftp_avatars(realm: AccountRealm, trees: TreeSource, clock: IReactorTime | None = None) -> None:
    """Make ``realm`` answer SSH logins with an :class:`SFTPUser` over ``trees(account)``."""
    from twisted.conch.interfaces import IConchUser
    realm.register(IConchUser, lambda account: SFTPUser(account, trees(account), clock))

