# mypy: untyped-calls-exclude=twisted.protocols.ftp
# (twisted.protocols.ftp has no annotations; FTP methods are called through
# the class, not super(), so that this exclusion covers them.)
"""The FTP control connection: Twisted's stock server with the gaps that
matter for a public download server closed (notes/twisted-stack.md §1.6).

Passive mode only; each override is short and says which gap it closes.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any

from twisted.cred import error as cred_error
from twisted.cred.credentials import UsernamePassword
from twisted.internet import error
from twisted.internet.defer import Deferred, fail, maybeDeferred, succeed
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IAddress, IConsumer, IDelayedCall, IReactorTime
from twisted.internet.protocol import Factory, ServerFactory
from twisted.logger import Logger, LogLevel
from twisted.protocols import ftp
from twisted.python.failure import Failure
from zope.interface import implementer

from ..forwarded import ip_of
from ..model.errors import UNAVAILABLE_TEXT, RedisUnavailable
from ..model.logins import Client, LockedOut
from .shell import ReadOnlyShell
from .tls import FTPSCommands, reuse_required

_GLOB_CHARS = frozenset("*?[")


class NoDataConnection(ftp.FTPCmdError):
    """425: no passive port was free, or the client never connected to it."""

    errorCode = ftp.CANT_OPEN_DATA_CNX

    def __init__(self) -> None:
        ftp.FTPCmdError.__init__(self)


class StoreAway(ftp.FTPCmdError):
    """451: a command that needs Redis (LIST, CWD, RETR...) while it is
    away. The session stays: the client may try again in a moment."""

    errorCode = ftp.REQ_ACTN_ABRTD_LOCAL_ERR

    def __init__(self) -> None:
        ftp.FTPCmdError.__init__(self)

    def response(self) -> str:
        return f"{self.errorCode} {UNAVAILABLE_TEXT}"


def _host(address: IAddress | None) -> str:
    """The IP of a TCP address (FTP only runs over TCP)."""
    assert isinstance(address, (IPv4Address, IPv6Address)), address
    return address.host


class _ControlPeerOnly(ServerFactory):
    """Stands in front of a passive data port's DTPFactory and lets only the
    control connection's peer in (gap 4: the stock ``DTPFactory.peerCheck``
    is never used, so anyone could grab a download or feed an upload)."""

    noisy = False  # one passive port per transfer: no "Starting factory" lines
    log = Logger()

    def __init__(self, dtp: Factory, peer: str) -> None:
        self._dtp = dtp
        self._peer = peer

    def logPrefix(self) -> str:
        return "oseod-ftp-data"

    def buildProtocol(self, addr: IAddress | None) -> Any:
        host = _host(addr)
        if host != self._peer:
            self.log.warn(
                "FTP data connection from {intruder} refused: the session belongs to {peer}",
                intruder=host, peer=self._peer,
            )  # fmt: skip
            return None  # closes it; the port keeps waiting for the real client
        return self._dtp.buildProtocol(addr)


@implementer(IConsumer)
class AsciiLines:
    """TYPE A: the file's line ends sent as CRLF. (The stock wrapper mixes
    bytes and text and fails on the first write.) A CRLF already there is
    kept, also when its CR ends one write and its LF starts the next."""

    def __init__(self, cons: Any) -> None:
        self.cons = cons
        self._after_cr = False

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        self.cons.registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        self.cons.unregisterProducer()

    def write(self, data: bytes) -> None:
        if not data:
            return
        converted = _BARE_LF.sub(b"\r\n", data)
        if self._after_cr and data.startswith(b"\n"):
            converted = converted[1:]  # its CR went out at the end of the previous write
        self._after_cr = data.endswith(b"\r")
        self.cons.write(converted)


_BARE_LF = re.compile(rb"(?<!\r)\n")
# What a client closing the data connection mid-transfer looks like: the
# transfer log says so already, it is no error of the server's.
_CLIENT_GONE = (error.ConnectionLost, error.ConnectionDone)


class OseodFTP(FTPSCommands, ftp.FTP):
    """One FTP session. The avatar is a :class:`ReadOnlyShell`. There is no
    anonymous login: "anonymous" is checked like any other user name.
    FTPS (AUTH TLS, PBSZ, PROT) comes from :class:`FTPSCommands`."""

    log = Logger()
    PUBLIC_COMMANDS = [*ftp.FTP.PUBLIC_COMMANDS, "AUTH", "PBSZ", "PROT"]

    # The login deadline: an idle timeout alone (reset by every command) would
    # let a client that never logs in hold its connection with a NOOP now and
    # then, so a connection must log in within the factory's login_timeout.
    _login_deadline: IDelayedCall | None = None

    def connectionMade(self) -> None:
        if self._closing():
            # The daemon drains: no new session, the client goes elsewhere.
            self.state = self.UNAUTH
            self.going_down()
            return
        ftp.FTP.connectionMade(self)
        self.implicit_tls()
        limit = getattr(self.factory, "login_timeout", 0)
        if limit:
            self._login_deadline = self.callLater(limit, self._not_logged_in)

    def _closing(self) -> bool:
        closing = getattr(self.factory, "closing", None)
        return closing is not None and bool(closing())

    def going_down(self) -> None:
        """The daemon stops (a drain): "421 Service not available, closing
        control connection", and the connection closes. For a new login, and
        for a session idle when the listeners stop."""
        if self.disconnected or self.transport is None:
            return
        self.reply(ftp.SVC_NOT_AVAIL_CLOSING_CTRL_CNX)
        self.disconnected = True  # stops lineReceived from reading more commands
        self.transport.loseConnection()
        self.read_to_close()

    def _not_logged_in(self) -> None:
        self._login_deadline = None
        if self.state == self.AUTHED or self.shell is not None or self.disconnected or self.transport is None:
            return
        self.sendLine(f"421 Not logged in within {self.factory.login_timeout} seconds: closing")
        self.disconnected = True  # stops lineReceived from reading more commands
        self.transport.loseConnection()
        self.read_to_close()

    def callLater(self, period: float, func: Any) -> IDelayedCall:
        # TimeoutMixin's (the idle timeout and the login deadline), on the
        # factory's clock when it has one (tests drive a Clock).
        clock: IReactorTime | None = getattr(self.factory, "clock", None)
        if clock is None:
            from twisted.internet import reactor

            clock = reactor
        return clock.callLater(period, func)

    def sendLine(self, line: Any) -> None:
        # A reply to a command that ended after the connection did (a login
        # checked past the deadline) goes nowhere.
        if self.transport is not None:
            ftp.FTP.sendLine(self, line)

    def processCommand(self, cmd: str, *params: str) -> Deferred[Any]:
        # A command that met Redis away: one line, 451, instead of the stock
        # "550 internal server error" and a traceback per command.
        answer: Deferred[Any] = maybeDeferred(ftp.FTP.processCommand, self, cmd, *params)
        return answer.addErrback(_store_away)

    def ftp_USER(self, username: str) -> Any:
        # A USER while logged in starts another login: the session so far
        # ends here (its per-user count released, its shell logged out), or
        # every re-login on one connection would leak a session count.
        self._end_session()
        if self._closing():  # no new login while the daemon drains
            self.going_down()
            return None
        refusal = self.tls_refuses_login()
        if refusal is not None:  # ftp_tls = required: no password in clear
            return fail(refusal)
        return ftp.FTP.ftp_USER(self, username)

    def ftp_PASS(self, password: str) -> Deferred[Any]:
        # Gap 1: lineReceived decoded the line as latin-1, which maps each byte
        # to one char; encoding back gives exactly what the client sent (UTF-8
        # from any modern client), which is what the checkers expect, so a
        # password such as "pässwörd" works. The name is re-encoded the same way.
        # Not the stock PASS: the Portal learns the client's address (a
        # Client mind, for the lock-out), and a lock-out is a 421.
        if self._closing():  # no new login while the daemon drains
            self.going_down()
            return succeed(None)  # answered already
        user = getattr(self, "_user", None)
        if user is None:  # a second PASS (the stock one failed with a traceback)
            return fail(ftp.BadCmdSequenceError("USER required before PASS"))
        credentials = UsernamePassword(user.encode("latin-1"), password.encode("latin-1"))
        del self._user
        self._tried = credentials.username.decode("utf-8", "replace")[:64]
        self._login_started = self._seconds()
        client = Client(str(ip_of(self._peer()) or self._peer()), "ftp")
        portal: Any = self.portal  # the factory's: the daemon's one Portal
        d: Deferred[Any] = portal.login(credentials, client, ftp.IFTPShell)
        return d.addCallbacks(self._authenticated, self._login_refused).addCallbacks(
            self._logged_in, self._login_broken)

    def _authenticated(self, result: tuple[Any, Any, Any]) -> str:
        _, self.shell, self.logout = result
        self.workingDirectory = list[str]()
        self.state = self.AUTHED
        return ftp.USR_LOGGED_IN_PROCEED

    def _login_refused(self, failure: Failure) -> Any:
        failure.trap(cred_error.UnauthorizedLogin, cred_error.UnhandledCredentials)
        self.state = self.UNAUTH
        if failure.check(LockedOut):
            # Locked out: say so and hang up (a 530 would invite the next guess).
            self.log.info("FTP login from {peer} refused: {reason}", peer=self._peer(), reason=str(failure.value))
            self._request("login", "421", self._seconds() - self._login_started, self._tried)
            self.sendLine(f"421 {failure.value}".encode())
            self.disconnected = True
            if self.transport is not None:
                self.transport.loseConnection()
                self.read_to_close()
            return None
        raise ftp.AuthorizationError()

    def ftp_RETR(self, path: str) -> Deferred[Any]:
        # The stock RETR logs every client that aborts a download as an
        # unhandled error with a traceback, and its TYPE A sending is broken.
        if self.dtpInstance is None:
            raise ftp.BadCmdSequenceError("PASV required before RETR")
        refusal = self.tls_refuses_data()
        if refusal is not None:
            return fail(refusal)
        try:
            segments = ftp.toSegments(self.workingDirectory, path)
        except ftp.InvalidPath:
            return fail(ftp.FileNotFoundError(path))
        self.setTimeout(None)  # the data connection has its own; back after the transfer
        dtp = self.dtpInstance
        consumer = dtp if self.binary else AsciiLines(dtp)

        def opened(file: Any) -> Deferred[Any]:
            self.reply(ftp.DATA_CNX_ALREADY_OPEN_START_XFR if dtp.isConnected else ftp.FILE_STATUS_OK_OPEN_DATA_CNX)
            sending: Deferred[Any] = file.send(consumer)
            return sending.addCallbacks(lambda _: self.after_data_closed(dtp, (ftp.TXFR_COMPLETE_OK,)), broken)

        def broken(failure: Failure) -> Any:
            if failure.check(ftp.FTPCmdError):
                return failure
            if getattr(dtp, "reuse_refused", False):  # ftp_tls_reuse = required: a full handshake
                return Failure(reuse_required())
            if not failure.check(*_CLIENT_GONE):
                self.log.failure("sending {path} to {peer} failed", failure, path=path, peer=self._peer())
            return (ftp.CNX_CLOSED_TXFR_ABORTED,)

        def not_opened(failure: Failure) -> Any:
            if failure.check(RedisUnavailable):
                return failure  # processCommand's 451
            if failure.check(ftp.FTPCmdError):
                return (failure.value.errorCode, "/".join(segments))
            self.log.failure("opening {path} failed", failure, path=path)
            return (ftp.FILE_NOT_FOUND, "/".join(segments))

        def timeout_again(result: object) -> object:
            self.setTimeout(self.factory.timeOut)
            return result

        assert self.shell is not None
        if isinstance(self.shell, ReadOnlyShell):
            self.shell.via = "ftps" if self._protected else "ftp"
        opening: Deferred[Any] = self.shell.openForReading(segments)
        return opening.addCallbacks(opened, not_opened).addBoth(timeout_again)

    def _logged_in(self, reply: object) -> object:
        if self.transport is None:  # gone while the password was checked: no session to count
            self.shell = None
            return reply
        if isinstance(self.shell, ReadOnlyShell):
            name = self.shell.account.name
            sessions: dict[str, int] = getattr(self.factory, "sessions_per_user", {})
            limit = getattr(self.factory, "max_sessions_per_user", 0)
            if limit and sessions.get(name, 0) >= limit:
                # Logged in, but one session too many: say so and hang up.
                self.log.info("FTP login {user} from {peer} refused: {limit} sessions already", user=name,
                              peer=self._peer(), limit=limit)
                self._request("login", "421", self._seconds() - self._login_started, name)
                self.shell = None
                self.disconnected = True
                assert self.transport is not None
                self.transport.loseConnection()
                return (ftp.SVC_NOT_AVAIL_CLOSING_CTRL_CNX,)
            sessions[name] = sessions.get(name, 0) + 1
            self._counted = name
            self.shell.client = self._peer()
            self.log.info("FTP login {user} from {peer}", user=name, peer=self._peer())
            self._request("login", "ok", self._seconds() - self._login_started, name)
            self._session_started = self._seconds()
        return reply

    _counted: str | None = None
    _tried = ""
    _login_started = 0.0
    _session_started = 0.0

    def _seconds(self) -> float:
        clock: IReactorTime | None = getattr(self.factory, "clock", None)
        if clock is None:
            from twisted.internet import reactor

            clock = reactor
        return float(clock.seconds())

    def _request(self, operation: str, outcome: str, seconds: float, user: str | None) -> None:
        """The session's request line (login, logout; each RETR has its
        transfer line from the results tree), as HTTP requests have theirs."""
        metrics = getattr(self.factory, "metrics", None)
        if metrics is not None:
            peer = self.transport.getPeer() if self.transport is not None else None
            metrics.record("ftp", operation, outcome, seconds, user, getattr(peer, "host", None))

    def _end_session(self) -> None:
        """The logged-in session ends (a new USER, or the connection's end):
        its count in the factory's sessions per user released, its avatar
        logged out."""
        if self._counted is not None:
            self._request("logout", "ok", self._seconds() - self._session_started, self._counted)
            sessions: dict[str, int] = getattr(self.factory, "sessions_per_user", {})
            left = sessions.get(self._counted, 1) - 1
            if left > 0:
                sessions[self._counted] = left
            else:
                sessions.pop(self._counted, None)
            self._counted = None
        logout, self.logout = getattr(self, "logout", None), None
        if self.shell is not None and logout is not None:
            logout()
        self.shell = None

    def connectionLost(self, reason: Failure) -> None:  # type: ignore[override]
        if self._login_deadline is not None and self._login_deadline.active():
            self._login_deadline.cancel()
        self._end_session()
        ftp.FTP.connectionLost(self, reason)

    def _login_broken(self, failure: Failure) -> Failure | tuple[str] | None:
        # A refused login is already an FTPCmdError (530). Anything else means
        # the check itself failed (Redis down...): the stock code would answer
        # "550 internal server error" and stay half logged in; say 421 and hang up.
        if isinstance(failure.value, ftp.FTPCmdError):
            code = str(getattr(failure.value, "errorCode", "530")).split(".")[0]  # "530.2": Twisted's second kind of 530
            self._request("login", code, self._seconds() - self._login_started, self._tried)
            return failure
        self._request("login", "421", self._seconds() - self._login_started, self._tried)
        self.disconnected = True  # stops lineReceived from reading more commands
        assert self.transport is not None
        if failure.check(RedisUnavailable):
            # Logged once for all sessions by the store's RedisWatch.
            self.sendLine(f"421 {UNAVAILABLE_TEXT}")
            self.transport.loseConnection()
            return None
        self.log.failure("FTP login from {peer} could not be checked", failure, LogLevel.error, peer=self._peer())
        self.transport.loseConnection()
        return (ftp.SVC_NOT_AVAIL_CLOSING_CTRL_CNX,)

    def ftp_NLST(self, path: str = "") -> Deferred[Any]:
        # Gap 2: the stock NLST requires an argument, so a bare NLST (ftplib's
        # nlst(), curl -l, mget in most clients) got "500 Syntax error". It
        # can't just be given a default: the stock one takes the last segment
        # of cwd + path for a glob whenever re.escape would change it (any
        # "-" or "."), so a bare NLST in /ORD-1 listed "/" filtered by "ORD-1";
        # and for a missing path it sent 226 without the 125 first.
        if self.dtpInstance is None or not self.dtpInstance.isConnected:
            return fail(ftp.BadCmdSequenceError("must send PASV or EPSV before NLST"))
        refusal = self.tls_refuses_data()
        if refusal is not None:
            return fail(refusal)
        try:
            segments = ftp.toSegments(self.workingDirectory, path)
        except ftp.InvalidPath:
            return fail(ftp.FileNotFoundError(path))
        pattern = None
        if segments and path and _GLOB_CHARS.intersection(segments[-1]):
            pattern = segments.pop().encode("latin-1").decode("utf-8", "replace")
        d: Deferred[Any] = self.shell.list(segments)
        return d.addCallbacks(self._send_names, self._send_no_names, callbackArgs=(pattern,))

    def _send_names(self, listing: list[tuple[str, object]], pattern: str | None) -> tuple[str]:
        dtp: Any = self.dtpInstance
        ftp.FTP.reply(self, ftp.DATA_CNX_ALREADY_OPEN_START_XFR)
        for name, _ in listing:
            if pattern is None or fnmatch.fnmatchcase(name, pattern):
                dtp.sendLine(name.encode("utf-8"))
        dtp.transport.loseConnection()
        return self.after_data_closed(dtp, (ftp.TXFR_COMPLETE_OK,))  # type: ignore[no-any-return]

    def _send_no_names(self, failure: Failure) -> Failure | tuple[str]:
        # RFC 959: NLST of a path that does not exist sends nothing.
        if not isinstance(failure.value, ftp.FileNotFoundError):
            return failure
        return self._send_names([], None)

    def ftp_LIST(self, path: str = "") -> Deferred[Any]:
        refusal = self.tls_refuses_data()
        if refusal is not None:
            return fail(refusal)
        dtp = self.dtpInstance
        listing: Deferred[Any] = ftp.FTP.ftp_LIST(self, path)
        return listing.addCallback(lambda reply: self.after_data_closed(dtp, reply))

    def ftp_PORT(self, address: str = "") -> Deferred[Any]:
        # Gap 5: active mode makes the server connect wherever the client says
        # (FTP bounce). This server is passive only.
        return fail(ftp.CmdNotImplementedError("PORT"))

    def ftp_EPRT(self, extendedAddress: str = "") -> Deferred[Any]:
        return fail(ftp.CmdNotImplementedError("EPRT"))

    def ftp_RNFR(self, fromName: str) -> Deferred[Any]:
        # Read only: refuse at once instead of answering 350 and waiting in the
        # RENAMING state for an RNTO that the shell would refuse anyway.
        return fail(ftp.PermissionDeniedError(fromName))

    def ftp_RNTO(self, toName: str) -> Deferred[Any]:
        # With RNFR always refused, RNTO is always out of sequence (the stock
        # one fails on the missing RNFR name with a traceback and a 550).
        return fail(ftp.BadCmdSequenceError("RNFR required before RNTO"))

    def ftp_APPE(self, path: str) -> Deferred[Any]:
        # Not in the stock server (it answers 502); it is a write like STOR.
        return fail(ftp.PermissionDeniedError(path))

    def ftp_REST(self, value: str) -> Any:
        # Gap: the stock server has no REST, so an interrupted download of a
        # big file started over from its first byte.
        if not value.isdigit():
            return fail(ftp.CmdArgSyntaxError(f"REST takes a byte offset, not {value!r}"))
        shell = self.shell
        if not isinstance(shell, ReadOnlyShell):
            return fail(ftp.BadCmdSequenceError("log in first"))
        shell.restart_offset = int(value)
        return (ftp.REQ_FILE_ACTN_PENDING_FURTHER_INFO,)

    def ftp_PASV(self) -> Any:
        return self._await_data_connection(ftp.FTP.ftp_PASV(self))

    def reply(self, key: str, *args: Any) -> None:
        # Behind NAT, PASV must announce the public address (the data port is
        # still bound to the control interface; the NAT forwards to it).
        public = getattr(self.factory, "public_host", "")
        if key == ftp.ENTERING_PASV_MODE and public and args:
            port = str(args[0]).split(",")[4:]
            args = (",".join([*public.split("."), *port]),)
        ftp.FTP.reply(self, key, *args)

    def ftp_EPSV(self, protocol: str = "") -> Any:
        return self._await_data_connection(ftp.FTP.ftp_EPSV(self, protocol))

    def _await_data_connection(self, result: Any) -> Any:
        # PASV/EPSV's Deferred fires when the client connects to the data
        # port. If it never does, the stock code logs a traceback and answers
        # "550 internal server error" while the port stays open: close the
        # port and answer 425 instead.
        if isinstance(result, Deferred):
            result.addErrback(self._no_data_connection)
        return result

    def _no_data_connection(self, failure: Failure) -> Failure:
        if not isinstance(failure.value, ftp.PortConnectionError):
            return failure
        if self.dtpFactory is not None:
            ftp.FTP.cleanupDTP(self)  # stops listening
        raise NoDataConnection()

    def getDTPPort(self, factory: Factory, interface: str = "") -> Any:
        # Gap 3: the stock PASV/EPSV listen on all interfaces ("" or "::"):
        # listen where the client reached us, which is also the address PASV
        # advertises. Gap 4: only the control peer may connect (see above).
        assert self.transport is not None
        control = _host(self.transport.getHost())
        # The guard stays outermost: it refuses by returning None, which a
        # TLS wrapper could not take.
        guarded = _ControlPeerOnly(self.data_factory(factory), self._peer())
        try:
            return ftp.FTP.getDTPPort(self, guarded, interface=control)
        except error.CannotListenError:
            # ftp_PASV has already stored a DTPFactory with a running timeout,
            # and cleanupDTP would later fail on the missing port: undo it.
            self.log.warn("FTP: no free passive port in {ports}", ports=self.passivePortRange)
            factory_ = self.dtpFactory
            self.dtpFactory = None
            if factory_ is not None:
                factory_.cancelTimeout()
            raise NoDataConnection() from None

    def _peer(self) -> str:
        assert self.transport is not None
        return _host(self.transport.getPeer())


def _store_away(failure: Failure) -> Any:
    failure.trap(RedisUnavailable)
    raise StoreAway()
