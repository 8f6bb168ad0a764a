"""onlineDataDelivery over ftps: explicit FTPS (AUTH TLS, RFC 4217).

Twisted's FTP client has no TLS, so the session is the standard library's
``ftplib.FTP_TLS``, run in a thread (it blocks) of a small pool of its own,
so that slow client servers never hold the reactor pool's threads that
password checks and packaging need. The
control connection goes to the address the SSRF guard judged; the server's
certificate is verified against the destination's host name
(``ssl.create_default_context``: the system's CAs, or [delivery] ca_file);
data connections are protected (PROT P) and resume the control
connection's TLS session, which vsftpd, proftpd and FileZilla Server require
by default (stock ftplib never resumes: cpython#63699). As for ftp:
``path`` made where missing, each file stored as ``.NAME.partial`` and
renamed to NAME (an older NAME deleted first when the server will not
rename over it). [delivery] connect_timeout bounds the connection,
idle_timeout each wait on the server after it.
"""

from __future__ import annotations

import ftplib
import socket
import ssl
import threading
from collections.abc import Sequence
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from ..core.deliverables import Deliverable
from ..core.destinations import FtpDestination
from ..reactors import IDaemonReactor
from ..threads import ThreadPools
from .push import ANONYMOUS_PASSWORD, CHUNK, IPusher, Pusher, PushFailed, ftp_source


class _FtpTls(ftplib.FTP_TLS):
    """FTP_TLS whose data connections resume the control connection's TLS
    session."""

    def ntransfercmd(self, cmd: str, rest: int | str | None = None) -> tuple[socket.socket, int | None]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:  # type: ignore[attr-defined]
            assert isinstance(self.sock, ssl.SSLSocket)
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
        self.data = conn
        return conn, size

    data: socket.socket | None = None  # the latest data connection


class _Session:
    """One FTPS session, driven from a pool thread; ``abort`` (from the
    reactor's) shuts its sockets, which fails whatever it is doing."""

    def __init__(self, destination: FtpDestination, ip: str, context: ssl.SSLContext, connect_timeout: float,
                 idle: float) -> None:
        self._destination = destination
        self._ip = ip
        self._context = context
        self._connect_timeout = connect_timeout
        self._idle = idle
        self._ftp: _FtpTls | None = None
        self._lock = threading.Lock()
        self.aborted = False
        self.doing = "connecting"

    def abort(self) -> None:
        with self._lock:
            self.aborted = True
            for sock in (self._ftp.sock, self._ftp.data) if self._ftp is not None else ():
                try:
                    if sock is not None:
                        sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def run(self, files: Sequence[Deliverable]) -> None:
        d = self._destination
        ftp = _FtpTls(context=self._context, timeout=self._connect_timeout)
        with self._lock:
            self._ftp = ftp
        try:
            self.doing = f"connecting to {self._ip} port {d.port}"
            ftp.connect(self._ip, d.port)
            assert ftp.sock is not None
            ftp.sock.settimeout(self._idle)
            ftp.timeout = self._idle  # (the data connections)
            ftp.host = d.host  # the certificate is checked against the name, not the address
            self.doing = "starting TLS"
            ftp.auth()
            self.doing = f"logging in as {d.user or 'anonymous'}"
            ftp.login(d.user or "anonymous", d.password if d.password is not None else ANONYMOUS_PASSWORD)
            self.doing = "protecting the data connections"
            ftp.prot_p()
            self._change_directory(ftp, d.path)
            for file in files:
                self._store(ftp, file)
            self.doing = "quitting"
            try:
                ftp.quit()
            except (OSError, ftplib.Error):
                pass  # every file is there already
        finally:
            ftp.close()

    def _change_directory(self, ftp: _FtpTls, path: str) -> None:
        shown = ""
        if path.startswith("/"):
            self.doing = "changing to /"
            ftp.cwd("/")
        for part in (p for p in path.split("/") if p):
            shown = f"{shown}/{part}" if shown or path.startswith("/") else part
            self.doing = f"changing to {shown}"
            try:
                ftp.cwd(part)
                continue
            except ftplib.error_perm:
                pass
            self.doing = f"creating {shown}"
            try:
                ftp.mkd(part)
            except ftplib.error_perm:
                pass  # made meanwhile by another push? The CWD says.
            self.doing = f"changing to {shown}"
            ftp.cwd(part)

    def _store(self, ftp: _FtpTls, file: Deliverable) -> None:
        partial, source = ftp_source(file)
        with source:
            self.doing = f"storing {file.name}"
            ftp.storbinary(f"STOR {partial}", source, blocksize=CHUNK)
        self.doing = f"renaming {partial} to {file.name}"
        try:
            ftp.rename(partial, file.name)
        except ftplib.error_perm:
            try:
                ftp.delete(file.name)
            except ftplib.error_perm:
                pass
            ftp.rename(partial, file.name)


@implementer(IPusher)
class FtpsPusher(Pusher):
    def __init__(self, reactor: IDaemonReactor, clock: IReactorTime, *, threads: ThreadPools, ca_file: str = "", **kwargs: Any) -> None:
        Pusher.__init__(self, reactor, clock, **kwargs)
        self._ca_file = ca_file
        self._threads = threads  # its push pool: ftps sessions at once (more wait for a thread)

    def _context(self) -> ssl.SSLContext:
        try:
            return ssl.create_default_context(cafile=self._ca_file or None)
        except (OSError, ssl.SSLError) as e:
            raise PushFailed(f"[delivery] ca_file {self._ca_file}: {e}") from None

    async def deliver(self, destination: FtpDestination, ip: str, files: Sequence[Deliverable]) -> None:
        session = _Session(destination, ip, self._context(), self._connect_timeout, self._idle)
        running = self._threads.on_push(session.run, files)
        # Cancelling (the order was cancelled, the daemon stops) shuts the
        # sockets; the thread then ends on its own.
        outer: defer.Deferred[None] = defer.Deferred(lambda _: session.abort())
        running.addBoth(lambda result: None if outer.called else outer.callback(result))
        try:
            await outer
        except PushFailed:
            raise
        except defer.CancelledError:
            raise
        except Exception as e:
            waited = self._connect_timeout if session.doing.startswith("connecting") else self._idle
            raise PushFailed(f"{session.doing}: {_why(e, waited)}") from None


def _why(failed: BaseException, waited: float) -> str:
    if isinstance(failed, ssl.SSLCertVerificationError):
        return f"the server's certificate is not trusted: {failed.verify_message}"
    if isinstance(failed, ssl.SSLEOFError):
        return "the server cut the TLS connection"
    if isinstance(failed, ftplib.Error):
        return f"the server answered {failed}"
    if isinstance(failed, TimeoutError):
        return f"no answer from the server for {waited:g} s"
    if isinstance(failed, ConnectionRefusedError):
        return "connection refused"
    if isinstance(failed, (EOFError, ConnectionError)):
        return "the server closed the connection"
    return str(failed) or type(failed).__name__
