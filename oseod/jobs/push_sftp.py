"""onlineDataDelivery over sftp: conch's SSH client to the client's server.

The server's host key must be known before anything is sent: the order pins
it (serverAddress ``...?fingerprint=SHA256:...``, the form ``ssh-keygen -l``
prints), else the data directory's ``known_hosts`` (OpenSSH's format,
``[host]:port`` for a port other than 22, hashed or not) must list it for
the destination's host. Any other key, or none known, fails the attempt
with a status text that names the key offered. Never accept-any.

Then, as for ftp: a login as userName with userPassword (and/or the
daemon's own key, DATA_DIR/push_id_ed25519 when present), the ``path``
made where missing, each file written as ``.NAME.partial`` with several
writes in flight, closed and renamed to NAME (an older NAME removed first:
OpenSSH will not rename over it). [delivery] connect_timeout bounds the
connection, idle_timeout any silence after it (handshake, login and
transfer alike).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from twisted.conch.client.knownhosts import KnownHostsFile
from twisted.conch.error import HostKeyChanged
from twisted.conch.ssh import channel, common, connection, filetransfer, keys, transport, userauth
from twisted.internet import defer, error
from twisted.internet.interfaces import IReactorTime, ITCPTransport
from twisted.python.failure import Failure
from twisted.python.filepath import FilePath
from zope.interface import implementer

from ..core.deliverables import Deliverable
from ..core.destinations import DEFAULT_PORTS, FtpDestination
from ..reactors import IDaemonReactor
from .push import IPusher, Pusher, PushFailed

CHUNK = 32 * 1024  # what every SFTP server takes in one write (OpenSSH keeps 64 of these in flight)
IN_FLIGHT = 16  # writes sent and not yet acknowledged: one stream is latency-bound otherwise
_WRITE = filetransfer.FXF_WRITE | filetransfer.FXF_CREAT | filetransfer.FXF_TRUNC


def fingerprint(key: keys.Key) -> str:
    """``key``'s fingerprint as OpenSSH shows it: SHA256:base64, unpadded."""
    return "SHA256:" + key.fingerprint(keys.FingerprintFormats.SHA256_BASE64).rstrip("=")


class HostKeys:
    """Judges the host key a server offers: against the order's pin, else
    the known_hosts file (read at each push: an operator may add to it)."""

    def __init__(self, known_hosts: Path | None) -> None:
        self._known_hosts = known_hosts

    def refusal(self, destination: FtpDestination, key: keys.Key) -> str | None:
        """Why ``key`` is not ``destination``'s (None: it is)."""
        offered = fingerprint(key)
        if destination.host_key is not None:
            if offered == destination.host_key:
                return None
            return f"host key of {destination.host} ({offered}) does not match {destination.host_key}"
        name = destination.host if destination.port == DEFAULT_PORTS["sftp"] else (
            f"[{destination.host}]:{destination.port}")
        if self._known_hosts is None or not self._known_hosts.exists():
            return (f"host key of {destination.host} ({offered}) cannot be checked: the order pins none "
                    "(?fingerprint=SHA256:...) and there is no known_hosts file")
        try:
            known = KnownHostsFile.fromPath(FilePath(str(self._known_hosts))).hasHostKey(name.encode(), key)
        except HostKeyChanged:
            return f"host key of {destination.host} ({offered}) does not match the one in known_hosts"
        except Exception as e:  # an unreadable file: refuse, saying so
            return f"host key of {destination.host} cannot be checked: known_hosts: {e}"
        return None if known else f"host key of {destination.host} ({offered}) is not in known_hosts for {name}"


class _Transport(transport.SSHClientTransport):
    """The SSH connection: checks the host key, logs in, opens the sftp
    subsystem and fires ``ready`` with its FileTransferClient, or errbacks
    it with PushFailed when the connection ends before (never leaves it
    waiting: conch itself says only "closed cleanly")."""

    # Conch's weak choices off, as OpenSSH 9 has them: no CBC or 3DES, no
    # SHA-1 or MD5 MACs, no SHA-1 key exchange, no ssh-rsa (SHA-1) or DSA.
    supportedCiphers = [c for c in transport.SSHClientTransport.supportedCiphers if c.endswith(b"-ctr")]
    supportedMACs = [m for m in transport.SSHClientTransport.supportedMACs if m.startswith(b"hmac-sha2-")]
    supportedKeyExchanges = [k for k in transport.SSHClientTransport.supportedKeyExchanges
                             if not k.endswith(b"-sha1")]
    supportedPublicKeys = [k for k in transport.SSHClientTransport.supportedPublicKeys
                           if k not in (b"ssh-rsa", b"ssh-dss")]

    def __init__(self, destination: FtpDestination, judge: Callable[[keys.Key], str | None],
                 key: keys.Key | None, clock: IReactorTime, idle: float) -> None:
        self.destination = destination
        self._judge = judge
        self._key = key
        self._clock = clock
        self._idle = idle
        self._timer: Any = None
        self.ready: defer.Deferred[filetransfer.FileTransferClient] = defer.Deferred()
        self.stage = "exchanging keys"
        self.reason: str | None = None  # why the connection ended, when we know better than conch
        self.lost = False

    def connectionMade(self) -> None:
        transport.SSHClientTransport.connectionMade(self)
        self._timer = self._clock.callLater(self._idle, self._timed_out)

    def dataReceived(self, data: bytes) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.reset(self._idle)
        transport.SSHClientTransport.dataReceived(self, data)

    def _timed_out(self) -> None:
        self.reason = f"no answer from the server for {self._idle:g} s"
        self.abort()

    def abort(self) -> None:
        if self.transport is not None and not self.lost:
            ITCPTransport(self.transport).abortConnection()

    def verifyHostKey(self, hostKey: bytes, fingerprint: bytes) -> defer.Deferred[bool]:
        # ``fingerprint`` is MD5: judged on the key itself.
        refusal = self._judge(keys.Key.fromString(hostKey))
        if refusal is not None:
            self.reason = refusal
            return defer.fail(PushFailed(refusal))
        return defer.succeed(True)

    def connectionSecure(self) -> None:
        self.stage = f"logging in as {self.destination.user}"
        conn = _Connection(self)
        self.requestService(_UserAuth(self.destination, self._key, conn))

    def receiveError(self, reasonCode: int, description: bytes) -> None:
        if self.reason is None:
            self.reason = "the server disconnected: " + description.decode("utf-8", "replace")

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.lost = True
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        transport.SSHClientTransport.connectionLost(self, reason)
        if not self.ready.called:
            self.ready.errback(PushFailed(f"{self.stage}: {self.reason or 'the server closed the connection'}"))


class _UserAuth(userauth.SSHUserAuthClient):
    preferredOrder = [b"publickey", b"password"]

    def __init__(self, destination: FtpDestination, key: keys.Key | None, conn: _Connection) -> None:
        userauth.SSHUserAuthClient.__init__(self, (destination.user or "").encode(), conn)
        self._password = destination.password
        self._key = key
        self._offered: keys.Key | None = None
        self._ssh = conn.ssh

    def getPassword(self, prompt: Any = None) -> defer.Deferred[bytes] | None:
        password, self._password = self._password, None  # once: a refused one is not tried again
        return None if password is None else defer.succeed(password.encode())

    def getPublicKey(self) -> keys.Key | None:
        key, self._key = self._key, None
        self._offered = key
        return None if key is None else key.public()

    def getPrivateKey(self) -> defer.Deferred[keys.Key]:
        assert self._offered is not None  # asked only after getPublicKey gave one
        return defer.succeed(self._offered)

    def ssh_USERAUTH_FAILURE(self, packet: bytes) -> Any:
        # (Also the answer to the first, "none", attempt that asks which
        # methods the server takes: forgotten once logged in.)
        self._ssh.reason = "the server refused the login"
        return userauth.SSHUserAuthClient.ssh_USERAUTH_FAILURE(self, packet)

    def ssh_USERAUTH_SUCCESS(self, packet: bytes) -> Any:
        self._ssh.reason = None
        return userauth.SSHUserAuthClient.ssh_USERAUTH_SUCCESS(self, packet)


class _Connection(connection.SSHConnection):
    def __init__(self, ssh: _Transport) -> None:
        connection.SSHConnection.__init__(self)
        self.ssh = ssh

    def serviceStarted(self) -> None:
        self.ssh.stage = "opening the sftp session"
        self.openChannel(_Session(self.ssh, conn=self))


class _Session(channel.SSHChannel):
    name = b"session"

    def __init__(self, ssh: _Transport, **kwargs: Any) -> None:
        channel.SSHChannel.__init__(self, **kwargs)
        self._ssh = ssh
        self.client: filetransfer.FileTransferClient | None = None

    def channelOpen(self, specificData: bytes) -> None:
        assert self.conn is not None
        asked = self.conn.sendRequest(self, b"subsystem", common.NS(b"sftp"), wantReply=True)
        asked.addCallbacks(self._started, self._refused)

    def _started(self, _: object) -> None:
        self.client = filetransfer.FileTransferClient()
        self.client.makeConnection(self)
        self.dataReceived = self.client.dataReceived  # type: ignore[method-assign]
        self._ssh.stage = "transferring"
        self._ssh.ready.callback(self.client)

    def _refused(self, failed: Failure) -> None:
        self._ssh.reason = "the server has no sftp subsystem"
        self._ssh.abort()

    def openFailed(self, reason: Any) -> None:
        self._ssh.reason = self._ssh.reason or f"the server refused a session: {reason}"
        self._ssh.abort()

    def closed(self) -> None:
        if self.client is not None:
            self.client.connectionLost(Failure(error.ConnectionDone()))
        self._ssh.abort()


@implementer(IPusher)
class SftpPusher(Pusher):
    def __init__(self, reactor: IDaemonReactor, clock: IReactorTime, *, known_hosts: Path | None = None,
                 client_key: Path | None = None, **kwargs: Any) -> None:
        Pusher.__init__(self, reactor, clock, **kwargs)
        self._host_keys = HostKeys(known_hosts)
        self._client_key = client_key

    async def deliver(self, destination: FtpDestination, ip: str, files: Sequence[Deliverable]) -> None:
        if not destination.user:
            raise PushFailed("sftp needs a userName")
        ssh = _Transport(destination, lambda key: self._host_keys.refusal(destination, key), self._key(),
                         self._clock, self._idle)
        await self._connected(ip, destination.port, ssh)
        delivered = False
        try:
            client = await _shielded(ssh, ssh.ready)
            directory = await self._change_directory(ssh, client, destination.path)
            for file in files:
                await self._store(ssh, client, directory, file)
            delivered = True
        finally:
            if delivered and ssh.transport is not None:
                ssh.loseConnection()
            else:
                ssh.abort()

    def _key(self) -> keys.Key | None:
        if self._client_key is None or not self._client_key.exists():
            return None
        try:
            return keys.Key.fromFile(str(self._client_key))
        except (OSError, keys.BadKeyError) as e:
            raise PushFailed(f"cannot read the daemon's key {self._client_key}: {e}") from None

    async def _change_directory(self, ssh: _Transport, client: filetransfer.FileTransferClient, path: str) -> str:
        """The directory to write in ("" for the login directory), made
        where missing; as a prefix for file names."""
        shown = "/" if path.startswith("/") else ""
        for part in (p for p in path.split("/") if p):
            shown = f"{shown}{part}"
            if not await self._tried(ssh, f"looking for {shown}", client.getAttrs(shown.encode())):
                if not await self._tried(ssh, f"creating {shown}", client.makeDirectory(shown.encode(), {})):
                    # Another push (the same order's next item) may have made it meanwhile.
                    await self._step(ssh, f"creating {shown}", client.getAttrs(shown.encode()))
            shown += "/"
        return shown

    async def _store(self, ssh: _Transport, client: filetransfer.FileTransferClient, directory: str,
                     file: Deliverable) -> None:
        partial, final = f"{directory}.{file.name}.partial", f"{directory}{file.name}"
        try:
            source = open(file.path, "rb")  # noqa: SIM115 - closed below
        except OSError as e:
            raise PushFailed(f"reading {file.name}: {e.strerror}") from None
        with source:
            remote = await self._step(ssh, f"creating {partial}", client.openFile(partial.encode(), _WRITE, {}))
            writing: list[defer.Deferred[Any]] = []
            offset = 0
            try:
                while chunk := source.read(CHUNK):
                    writing.append(remote.writeChunk(offset, chunk))
                    offset += len(chunk)
                    if len(writing) >= IN_FLIGHT:
                        await self._step(ssh, f"writing {partial}", writing.pop(0))
                while writing:
                    await self._step(ssh, f"writing {partial}", writing.pop(0))
            except BaseException:
                for written in writing:  # failed with the session: the first failure says why
                    written.addErrback(lambda _: None)
                raise
            await self._step(ssh, f"closing {partial}", remote.close())
        if not await self._tried(ssh, f"renaming {partial}", client.renameFile(partial.encode(), final.encode())):
            await self._tried(ssh, f"removing the older {final}", client.removeFile(final.encode()))
            await self._step(ssh, f"renaming {partial} to {final}",
                             client.renameFile(partial.encode(), final.encode()))

    async def _step(self, ssh: _Transport, what: str, running: defer.Deferred[Any]) -> Any:
        try:
            return await _shielded(ssh, running)
        except defer.CancelledError:
            raise
        except filetransfer.SFTPError as e:
            raise PushFailed(f"{what}: the server answered {e.message or e.code}") from None
        except Exception as e:
            raise PushFailed(f"{what}: {ssh.reason or (str(e) if not ssh.lost else 'the connection was lost')}") \
                from None

    async def _tried(self, ssh: _Transport, what: str, running: defer.Deferred[Any]) -> bool:
        """Whether the server did it; PushFailed if the session itself failed."""
        try:
            await self._step(ssh, what, running)
        except PushFailed:
            if ssh.lost:
                raise
            return False
        return True


def _shielded(ssh: _Transport, running: defer.Deferred[Any]) -> defer.Deferred[Any]:
    """``running``, cancelled by dropping the connection (the order was
    cancelled, the daemon stops)."""
    outer: defer.Deferred[Any] = defer.Deferred(lambda _: ssh.abort())

    def forward(result: object) -> None:
        if not outer.called:
            outer.callback(result)
        elif isinstance(result, Failure):
            result.trap(Exception)

    running.addBoth(forward)
    return outer
