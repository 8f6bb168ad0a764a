"""Pushing an item's results to the client's own server: onlineDataDelivery.

The engine calls a pusher (:class:`IPusher`, one per protocol) once an
item's result is made, when the item's delivery (else its order's) is
onlineDataDelivery; the order's first onlineAddress of that protocol says
where. A push delivers every file of the item or fails the attempt, which
the engine retries like any other ([processing] max_attempts, retry_delay).

:class:`FtpPusher` uses Twisted's FTP client, in passive mode:

- the server's name is resolved first and the push goes to the first of its
  addresses that is public or in [notifications] allowed_networks; the data
  connections go to that same address, whatever PASV answers;
- it logs in as userName with userPassword (anonymous without a userName);
- it changes to ``path`` one component at a time, making those missing
  (MKD): an absolute path from the server's root, a relative one from the
  login directory, none: the login directory itself;
- each result file is streamed from disk by a producer (never read whole)
  under a hidden temporary name, ``.NAME.partial``, and renamed (RNFR/RNTO)
  to NAME once the server has it all: a file that carries its final name is
  complete. A server that will not rename over an older NAME (pushed by an
  earlier attempt) has it deleted first;
- then QUIT.

Files keep their names from the item's result directory and go straight
into ``path``. [delivery] connect_timeout bounds the connection,
idle_timeout any silence after it (no reply, no room to send more).

:class:`Pusher` holds what every protocol shares (the destination, the
address check, the sessions per server, the status text): ftps and sftp
build on it in push_ftps.py and push_sftp.py.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, BinaryIO

from twisted.internet import defer, error
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint, connectProtocol
from twisted.internet.interfaces import IAddress, IConnector, IHostResolution, IReactorTime, IResolutionReceiver, ITCPTransport
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.protocols import basic, ftp, policies
from twisted.python.failure import Failure
from zope.interface import Interface, implementer

from ..core.deliverables import Deliverable
from ..core.destinations import BadDestination, FtpDestination, network_refusal, push_destination
from ..model.orders import OnlineAddress
from ..reactors import IDaemonReactor

CHUNK = 256 * 1024  # the stock 16 KiB reads would cap a push far below the disk and the network
ANONYMOUS_PASSWORD = "anonymous@"  # what anonymous FTP asks for: an e-mail address, by convention
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def ftp_source(file: Deliverable) -> tuple[str, BinaryIO]:
    """The temporary name ``file`` is stored under over FTP, and the file
    opened: before the STOR, so a result gone from the disk fails here, not
    halfway through a transfer."""
    if _CONTROL.search(file.name):
        raise PushFailed(f"the file name {file.name!r} holds control characters, which FTP cannot carry")
    try:
        return f".{file.name}.partial", open(file.path, "rb")  # noqa: SIM115 - the caller closes it
    except OSError as e:
        raise PushFailed(f"reading {file.name}: {e.strerror}") from None


class PushFailed(Exception):
    """A push that did not deliver every file: the message says where to
    and why, never with a password."""


class IPusher(Interface):
    """Delivers results to the client's own server over one protocol."""

    def push(address: OnlineAddress, files: Sequence[Deliverable]) -> Any:
        """Send ``files`` to ``address``. What to tell the client (where they
        went), or PushFailed. May return a Deferred or be a coroutine."""


class _Client(ftp.FTPClient, policies.TimeoutMixin):
    """Twisted's FTP client with an idle timer on the injected clock: a reply,
    or room to send more of a file, resets it; once it runs out the
    connection is dropped, which fails every command still waiting."""

    def __init__(self, user: str, password: str, reactor: IDaemonReactor, clock: IReactorTime, idle: float) -> None:
        ftp.FTPClient.__init__(self, user, password, passive=1)
        self._reactor = reactor
        self._clock = clock
        self._idle = idle
        self.timed_out = False
        self._lost = False

    def connectFactory(self, host: str, port: int, factory: Any, timeout: float = 30.0,
                       bindAddress: tuple[str, int] | None = None) -> IConnector:
        # The data connections, on our reactor (the stock client uses the global one).
        connector: IConnector = self._reactor.connectTCP(host, port, factory, timeout, bindAddress)
        return connector

    def callLater(self, period: float, func: Any) -> Any:  # TimeoutMixin's timer, on the clock
        return self._clock.callLater(period, func)

    def connectionMade(self) -> None:
        ftp.FTPClient.connectionMade(self)
        self.setTimeout(self._idle)

    def lineReceived(self, line: bytes) -> None:
        self.resetTimeout()
        ftp.FTPClient.lineReceived(self, line)

    def progress(self, chunk: bytes) -> bytes:
        """FileSender's transform: the data connection took a chunk."""
        self.resetTimeout()
        return chunk

    def timeoutConnection(self) -> None:
        self.timed_out = True
        self.abort()

    @property
    def lost(self) -> bool:
        """Whether the session is over: the connection is gone, or going
        (the stock client gives up on a session after a refused login)."""
        return self._lost or bool(self._failed)

    def abort(self) -> None:
        if self.transport is not None and not self._lost:
            ITCPTransport(self.transport).abortConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._lost = True
        self.setTimeout(None)
        ftp.FTPClient.connectionLost(self, reason)


class _Sender(basic.FileSender):
    CHUNK_SIZE = CHUNK


@implementer(IResolutionReceiver)
class _Addresses:
    """Collects what a name resolves to."""

    def __init__(self) -> None:
        self.found: list[str] = []
        self.done: defer.Deferred[list[str]] = defer.Deferred()

    def resolutionBegan(self, resolutionInProgress: IHostResolution) -> None:
        pass

    def addressResolved(self, address: IAddress) -> None:
        host = getattr(address, "host", None)
        if isinstance(host, str) and host not in self.found:
            self.found.append(host)

    def resolutionComplete(self) -> None:
        if not self.done.called:  # (cancelled: a timeout, or the order)
            self.done.callback(self.found)


class Pusher:
    """What every pusher does alike, whatever its protocol: the destination
    parsed from the onlineAddress, at most ``max_sessions_per_server``
    sessions at once to one server (host, port, user), the resolved address
    checked against the SSRF guard before connecting, and the status text.
    A subclass delivers the files to an address (:meth:`deliver`)."""

    log = Logger()

    def __init__(self, reactor: IDaemonReactor, clock: IReactorTime, *, connect_timeout: float, idle_timeout: float,
                 allowed_networks: Sequence[str] = (), max_sessions_per_server: int = 2) -> None:
        self._reactor = reactor
        self._clock = clock
        self._connect_timeout = connect_timeout
        self._idle = idle_timeout
        self._allowed = tuple(allowed_networks)
        self._max_sessions = max_sessions_per_server
        # Sessions open to each server (host, port, user): servers often
        # cap a user's logins at a few, and an order's items are made (and
        # pushed) several at once.
        self._sessions: dict[tuple[str, int, str | None], defer.DeferredSemaphore] = {}

    async def push(self, address: OnlineAddress, files: Sequence[Deliverable]) -> str:
        try:
            destination = push_destination(address)
        except BadDestination as e:
            raise PushFailed(f'cannot push to "{address.server_address}": {e}') from None
        if not files:
            return f"Completed; no result files to push to {destination}"
        server = (destination.host, destination.port, destination.user)
        sessions = self._sessions.setdefault(server, defer.DeferredSemaphore(self._max_sessions))
        try:
            await sessions.acquire()
            try:
                await self.deliver(destination, await self._address(destination.host), files)
            finally:
                sessions.release()
        except PushFailed as e:
            raise PushFailed(f"pushing to {destination} failed: {e}") from None
        finally:
            if sessions.tokens == sessions.limit and self._sessions.get(server) is sessions:
                del self._sessions[server]  # none open, none waiting
        size = sum(f.size for f in files)
        self.log.info("pushed {count} files ({size} bytes) to {destination}", count=len(files), size=size,
                      destination=str(destination))
        return f"Pushed {_files(len(files))} ({size} bytes) to {destination}"

    async def deliver(self, destination: FtpDestination, ip: str, files: Sequence[Deliverable]) -> None:
        """Every one of ``files`` to ``destination``, connecting to ``ip``
        (its address, judged reachable); PushFailed saying why not."""
        raise NotImplementedError

    async def _address(self, host: str) -> str:
        """The address to push to: the first of ``host``'s that may be reached."""
        receiver = _Addresses()
        self._reactor.nameResolver.resolveHostName(receiver, host)
        try:
            found = await receiver.done.addTimeout(self._connect_timeout, self._clock)
        except defer.TimeoutError:
            raise PushFailed(f"resolving {host} took longer than {self._connect_timeout:g} s") from None
        if not found:
            raise PushFailed(f"cannot resolve {host}")
        refusals = [network_refusal(ip, self._allowed) for ip in found]
        for ip, refusal in zip(found, refusals):
            if refusal is None:
                return ip
        raise PushFailed(refusals[0] if found == [host] else f"{host}: {refusals[0]}")

    async def _connected(self, ip: str, port: int, protocol: Any) -> None:
        """``protocol`` connected to ``ip`` ``port`` within the connect timeout,
        or PushFailed saying why not."""
        try:
            await connectProtocol(self._endpoint(ip, port), protocol).addTimeout(self._connect_timeout, self._clock)
        except defer.TimeoutError:
            raise PushFailed(f"no connection to {ip} port {port} within {self._connect_timeout:g} s") from None
        except error.ConnectError as e:
            why = "connection refused" if isinstance(e, error.ConnectionRefusedError) else str(e)
            raise PushFailed(f"cannot connect to {ip} port {port}: {why}") from None

    def _endpoint(self, ip: str, port: int) -> Any:
        return (TCP6ClientEndpoint if ":" in ip else TCP4ClientEndpoint)(self._reactor, ip, port)


@implementer(IPusher)
class FtpPusher(Pusher):

    async def deliver(self, destination: FtpDestination, ip: str, files: Sequence[Deliverable]) -> None:
        client = await self._connect(ip, destination)
        delivered = False
        try:
            await self._step(client, f"logging in as {destination.user or 'anonymous'}",
                             client.queueStringCommand("NOOP"))
            await self._change_directory(client, destination.path)
            for file in files:
                await self._store(client, file)
            delivered = True
            try:
                await self._step(client, "quitting", client.quit())
            except PushFailed:
                pass  # every file is there already
        finally:
            if delivered and client.transport is not None:
                client.transport.loseConnection()
            else:
                client.abort()

    async def _connect(self, ip: str, destination: FtpDestination) -> _Client:
        user = destination.user or "anonymous"
        password = destination.password if destination.password is not None else ANONYMOUS_PASSWORD
        client = _Client(user, password, self._reactor, self._clock, self._idle)
        await self._connected(ip, destination.port, client)
        return client

    async def _change_directory(self, client: _Client, path: str) -> None:
        shown = ""
        if path.startswith("/"):
            await self._step(client, "changing to /", client.cwd("/"))
        for part in (p for p in path.split("/") if p):
            shown = f"{shown}/{part}" if shown or path.startswith("/") else part
            if await self._tried(client, f"changing to {shown}", client.cwd(part)):
                continue
            try:
                await self._step(client, f"creating {shown}", client.makeDirectory(part))
            except PushFailed:
                # Another push (the same order's next item) may have made it
                # meanwhile: only a directory still missing is a failure.
                if client.lost or not await self._tried(client, f"changing to {shown}", client.cwd(part)):
                    raise
                continue
            await self._step(client, f"changing to {shown}", client.cwd(part))

    async def _store(self, client: _Client, file: Deliverable) -> None:
        partial, source = ftp_source(file)
        with source:
            connected, stored = client.storeFile(partial)
            sending = defer.ensureDeferred(self._send(client, connected, source))
            try:
                await self._step(client, f"storing {file.name}", stored)
            except BaseException:
                # The data connection goes too, failing the sending: the
                # control connection's answer is the one that says why.
                sending.addErrback(lambda _: None)
                raise
            await self._step(client, f"sending {file.name}", sending)
        await self._rename(client, partial, file.name)

    async def _send(self, client: _Client, connected: defer.Deferred[Any], source: BinaryIO) -> None:
        consumer = await _shielded(client, connected)
        await _shielded(client, _Sender().beginFileTransfer(source, consumer, client.progress))
        consumer.finish()  # the end of the data connection is the end of the file

    async def _rename(self, client: _Client, partial: str, name: str) -> None:
        # RNFR and RNTO one after the other (not client.rename): a refused
        # RNTO, and only that, is worth deleting the old file for.
        for attempt in (1, 2):
            await self._step(client, f"renaming {partial}", client.queueStringCommand(f"RNFR {partial}"))
            if await self._tried(client, f"renaming {partial} to {name}", client.queueStringCommand(f"RNTO {name}")):
                return
            if attempt == 1:
                await self._tried(client, f"deleting the older {name}", client.removeFile(name))
        raise PushFailed(f"the server would not rename {partial} to {name}")

    async def _step(self, client: _Client, what: str, running: defer.Deferred[Any]) -> Any:
        """The outcome of ``running`` (an FTP command, a transfer), or
        PushFailed saying what was being done and why it failed."""
        if client.lost:  # a command queued after the end would never be answered
            raise PushFailed(f"{what}: the connection was lost")
        try:
            return await _shielded(client, running)
        except defer.CancelledError:
            raise
        except Exception as e:
            raise PushFailed(f"{what}: {self._why(client, e)}") from None

    async def _tried(self, client: _Client, what: str, running: defer.Deferred[Any]) -> bool:
        """Whether the server accepted the command; PushFailed if the session
        itself failed."""
        try:
            await self._step(client, what, running)
        except PushFailed:
            if client.timed_out or client.lost:
                raise
            return False
        return True

    def _why(self, client: _Client, failed: BaseException) -> str:
        if client.timed_out:
            return f"no answer from the server for {self._idle:g} s"
        reason = _root(failed)
        if isinstance(reason, ftp.CommandFailed):
            return "the server answered " + " ".join(str(line) for line in reason.args[0])
        if isinstance(reason, (error.ConnectionLost, error.ConnectionDone, ftp.ConnectionLost)):
            return "the server closed the connection"
        return str(reason) or type(reason).__name__


def _shielded(client: _Client, running: defer.Deferred[Any]) -> defer.Deferred[Any]:
    """``running`` as a Deferred that may be cancelled (the order was
    cancelled, the daemon stops): cancelling drops the connection rather than
    ``running`` itself, which Twisted's FTP client would fire again later."""
    outer: defer.Deferred[Any] = defer.Deferred(lambda _: client.abort())

    def forward(result: object) -> None:
        if not outer.called:
            outer.callback(result)

    running.addBoth(forward)
    return outer


def _root(failed: BaseException) -> BaseException:
    """The error under the wrappers Twisted's FTP client puts around it."""
    while True:
        inner: Failure | None = None
        if isinstance(failed, defer.FirstError):
            inner = failed.subFailure
        elif isinstance(failed, ftp.FTPError) and len(failed.args) > 1 and isinstance(failed.args[1], Failure):
            # A refused login fails every queued command with a ConnectionLost
            # holding it; a failed data connection, an FTPError holding why.
            inner = failed.args[1]
        if inner is None or inner.value is None:
            return failed
        failed = inner.value


def _files(count: int) -> str:
    return "1 file" if count == 1 else f"{count} files"
