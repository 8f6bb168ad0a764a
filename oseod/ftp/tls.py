# mypy: untyped-calls-exclude=twisted.protocols.ftp
"""FTPS for the FTP listener (notes/secure-delivery.md §1; Twisted has none):
explicit (RFC 4217: AUTH TLS, PBSZ, PROT) with the server's certificate read
here, or implicit on an ``ssl:`` endpoint; the commands and the wrapping of
data connections in TLS that :class:`OseodFTP` takes in."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL
from OpenSSL._util import lib as _ssl_lib  # SSL_session_reused: a private binding, pinned by tests/test_ftps.py
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IHandshakeListener, IOpenSSLServerConnectionCreator, IReactorFromThreads
from twisted.internet.protocol import Factory, ServerFactory
from twisted.internet.ssl import CertificateOptions
from twisted.logger import Logger
from twisted.protocols import ftp
from twisted.protocols.tls import BufferingTLSTransport, TLSMemoryBIOFactory
from twisted.python.failure import Failure
from zope.interface import alsoProvides, implementer

log = Logger()

MODES = ("off", "optional", "required")


class TLSFileError(Exception):
    """The certificate or key cannot be used; the message names the file."""


class CertificatePair:
    """The server certificate (PEM, with its chain) and private key (PEM),
    read at start and again on :meth:`reload` (SIGHUP). Each control
    connection gets options of its own (:meth:`options`), so that only its
    own TLS sessions resume on its data connections, and a reloaded
    certificate applies to the sessions that start after it."""

    def __init__(self, certificate: str, key: str) -> None:
        self.certificate_path = certificate
        self.key_path = key
        self._loaded: tuple[Any, x509.Certificate, list[x509.Certificate]] | None = None

    def load(self) -> None:
        """Read both files; :class:`TLSFileError` with one line if either is
        missing, unreadable, not PEM, or the key is not the certificate's."""
        certs = _read_certificates(self.certificate_path)
        key = _read_key(self.key_path)
        context = SSL.Context(SSL.TLS_SERVER_METHOD)
        context.use_privatekey(key)
        context.use_certificate(certs[0])
        try:
            context.check_privatekey()
        except SSL.Error:
            raise TLSFileError(f"the key {self.key_path} does not match the certificate "
                               f"{self.certificate_path}") from None
        self._loaded = key, certs[0], certs[1:]

    def reload(self) -> None:
        """:meth:`load` again; a failure keeps the certificate in use."""
        try:
            self.load()
        except TLSFileError as e:
            log.error("TLS certificate not reloaded, the one in use stays: {reason}", reason=str(e))
            return
        log.info("TLS certificate reloaded from {path}", path=self.certificate_path)

    def options(self) -> CertificateOptions:
        """Options for one control connection and its data connections:
        session IDs and tickets on (Twisted's defaults turn both off, and
        data connections could not resume the control connection's session)."""
        if self._loaded is None:
            raise RuntimeError("the TLS certificate was not loaded")
        key, certificate, chain = self._loaded
        # cryptography's objects, which pyOpenSSL 26 takes (its own are
        # deprecated), though Twisted's hints still name pyOpenSSL's.
        return CertificateOptions(privateKey=key, certificate=certificate, extraCertChain=chain,  # type: ignore[arg-type]
                                  enableSessions=True, enableSessionTickets=True)


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise TLSFileError(f"cannot read the TLS {what} {path}: {e.strerror}") from None


def _read_certificates(path: str) -> list[x509.Certificate]:
    """The certificate first, then its chain."""
    try:
        return x509.load_pem_x509_certificates(_read(path, "certificate"))
    except ValueError:
        raise TLSFileError(f"the TLS certificate {path} holds no PEM certificate") from None


def _read_key(path: str) -> Any:
    try:
        return serialization.load_pem_private_key(_read(path, "key"), None)
    except (ValueError, TypeError):  # TypeError: it has a passphrase
        raise TLSFileError(f"the TLS key {path} is not a PEM private key (or has a passphrase)") from None


def reload_on_sighup(pair: CertificatePair, reactor: IReactorFromThreads) -> Callable[[], None]:
    """SIGHUP reloads ``pair`` (on the reactor thread); returns the undo.
    (twistd leaves SIGHUP alone; its default would end the process.)"""
    previous = signal.getsignal(signal.SIGHUP)
    signal.signal(signal.SIGHUP, lambda number, frame: reactor.callFromThread(pair.reload))

    def undo() -> None:
        signal.signal(signal.SIGHUP, previous)

    return undo


@attrs.frozen
class FTPSSettings:
    """``mode``: [server] ftp_tls; ``reuse_required``: ftp_tls_reuse = "required"."""

    mode: str
    pair: CertificatePair | None = None
    reuse_required: bool = False

    def __attrs_post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"ftp_tls must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.mode != "off" and self.pair is None:
            raise ValueError(f"ftp_tls = {self.mode!r} needs a certificate and a key")

    @property
    def on(self) -> bool:
        return self.mode != "off"


class FTPSReply(ftp.FTPCmdError):
    """An FTPS refusal with its own code and vsftpd's wording."""

    def __init__(self, code: str, text: str) -> None:
        ftp.FTPCmdError.__init__(self, text)
        self.errorCode = code
        self._text = text

    def response(self) -> str:
        return f"{self.errorCode} {self._text}"


def must_encrypt_login() -> FTPSReply:
    return FTPSReply("530", "Non-anonymous sessions must use encryption.")


def must_encrypt_data() -> FTPSReply:
    return FTPSReply("522", "Data connections must be encrypted.")


def reuse_required() -> FTPSReply:
    return FTPSReply("522", "SSL connection failed: session reuse required.")


class _DataTLS(BufferingTLSTransport):
    """A data connection's TLS, closed cleanly also when nothing was sent:
    the client starts its handshake only after the 150 reply, so an empty
    listing or file is sent (and the connection closed) before it; Twisted
    aborts a TLS connection closed before its handshake (a reset, and the
    client fails). Here the close waits for the handshake."""

    close_after_handshake = False

    def loseConnection(self) -> None:
        if not self._handshakeDone and not self._appSendBuffer and not self.disconnecting:
            self.close_after_handshake = True
            return
        BufferingTLSTransport.loseConnection(self)


@implementer(IOpenSSLServerConnectionCreator)
class SameContext:
    """TLS connections from one existing context (an ``ssl:`` listener's)."""

    def __init__(self, context: SSL.Context) -> None:
        self._context = context

    def serverConnectionForTLS(self, protocol: Any) -> SSL.Connection:
        return SSL.Connection(self._context, None)


class ProtectedData(ServerFactory):
    """PROT P: wraps each data connection the stock DTPFactory builds in TLS
    with the control connection's options (so its session may resume), and
    with ``reuse_required`` aborts one whose handshake did not resume it."""

    noisy = False

    def __init__(self, dtp: Factory, options: CertificateOptions | SameContext, reuse_required: bool) -> None:
        self._dtp = dtp
        self._tls = TLSMemoryBIOFactory(options, False, dtp)
        self._tls.protocol = _DataTLS
        self._reuse_required = reuse_required

    def buildProtocol(self, addr: Any) -> Any:
        protocol: Any = self._dtp.buildProtocol(addr)
        if protocol is None:  # a second connection to the port: refused
            return None
        # The stock DTPFactory builds a plain DTP: it learns of the handshake's
        # end this way, to check the session's reuse.
        alsoProvides(protocol, IHandshakeListener)
        protocol.handshakeCompleted = lambda: self._handshake_done(protocol)
        return self._tls.protocol(self._tls, protocol)

    def _handshake_done(self, dtp: Any) -> None:
        connection = dtp.transport._tlsConnection  # noqa: SLF001 - the one place that has the SSL*
        reused = bool(_ssl_lib.SSL_session_reused(connection._ssl))  # noqa: SLF001
        dtp.tls_session_reused = reused
        peer = dtp.transport.getPeer()
        if reused:
            pass
        elif self._reuse_required:
            log.info("FTPS data connection from {peer} refused: it did not resume the control connection's "
                     "TLS session (ftp_tls_reuse = required)", peer=getattr(peer, "host", peer))
            dtp.reuse_refused = True
            dtp.transport.abortConnection()
        else:
            log.debug("FTPS data connection from {peer} did not resume the TLS session",
                      peer=getattr(peer, "host", peer))
        if getattr(dtp.transport, "close_after_handshake", False) and not dtp.transport.disconnecting:
            dtp.transport.loseConnection()


_MECHANISMS = ("TLS", "TLS-C", "SSL")  # curl 7.88 sends AUTH SSL first


class FTPSCommands:
    """AUTH, PBSZ and PROT for :class:`OseodFTP` (mixed in before
    ``ftp.FTP``), and the rules of ``ftp_tls = "required"``. Reads the
    factory's ``ftps`` (:class:`FTPSSettings`, or None: off)."""

    factory: Any
    transport: Any
    FEATURES: list[str]
    # The control connection's options once AUTH succeeded (the data
    # connections' too); PBSZ seen; PROT P in force.
    _tls_options: CertificateOptions | SameContext | None = None
    _pbsz = False
    _protected = False

    if TYPE_CHECKING:  # LineReceiver's, through OseodFTP (not defined here: they would hide them)
        def sendLine(self, line: Any) -> None: ...

        def clearLineBuffer(self) -> bytes: ...

    def _ftps(self) -> FTPSSettings | None:
        settings: FTPSSettings | None = getattr(self.factory, "ftps", None)
        return settings if settings is not None and settings.on else None

    def ftp_AUTH(self, mechanism: str = "") -> Any:
        settings = self._ftps()
        if settings is None:
            raise ftp.CmdNotImplementedError("AUTH")  # 502
        if self._tls_options is not None:
            raise ftp.BadCmdSequenceError("TLS is on already")
        if mechanism.upper() not in _MECHANISMS:
            raise FTPSReply("504", f"AUTH {mechanism} not supported: use AUTH TLS.")
        assert settings.pair is not None
        options = settings.pair.options()
        self.sendLine(f"234 AUTH {mechanism.upper()} successful.")
        # STARTTLS injection: whatever the client pipelined after AUTH in
        # plaintext (already read, waiting in the line buffer) is dropped;
        # only what comes over TLS counts.
        self.clearLineBuffer()
        self.transport.startTLS(options)
        self._tls_options = options
        return None

    def ftp_PBSZ(self, size: str = "") -> Any:
        if self._tls_options is None:
            raise ftp.BadCmdSequenceError("PBSZ needs AUTH TLS first")
        self._pbsz = True
        self.sendLine("200 PBSZ=0")  # TLS has no buffer size (RFC 4217 §9)
        return None

    def ftp_PROT(self, level: str = "") -> Any:
        if not self._pbsz:
            raise ftp.BadCmdSequenceError("PBSZ required before PROT")
        level = level.upper()
        if level in ("S", "E"):
            raise FTPSReply("536", f"PROT {level} not supported: use PROT P or C.")
        if level not in ("C", "P"):
            raise FTPSReply("504", f"Unknown PROT level {level!r}.")
        self._protected = level == "P"
        self.sendLine(f"200 PROT now {'Private' if self._protected else 'Clear'}.")
        return None

    def ftp_FEAT(self) -> None:
        features = [*self.FEATURES, "EPSV", "REST STREAM"]
        if self._ftps() is not None or self._tls_options is not None:
            features += ["AUTH TLS", "PBSZ", "PROT"]
        self.sendLine("211-Features:")
        for feature in sorted(features):
            self.sendLine(" " + feature)
        self.sendLine("211 End")

    def ftp_QUIT(self) -> None:
        ftp.FTP.ftp_QUIT(self)  # type: ignore[arg-type]  # mixed into an FTP
        self.read_to_close()

    def read_to_close(self) -> None:
        """After a loseConnection with reading paused (the stock FTP pauses
        while a command runs, and not again once it hangs up): under TLS the
        connection closes only once the client's close_notify or FIN is read,
        so the transport reads on (no more commands: lines stay paused)."""
        if self._tls_options is not None and self.transport is not None:
            self.transport.resumeProducing()

    def tls_refuses_login(self) -> FTPSReply | None:
        """Under ``required``: the refusal of a USER sent before AUTH."""
        settings = self._ftps()
        if settings is not None and settings.mode == "required" and self._tls_options is None:
            return must_encrypt_login()
        return None

    def tls_refuses_data(self) -> FTPSReply | None:
        """Under ``required``: the refusal of a transfer under PROT C."""
        settings = self._ftps()
        if settings is not None and settings.mode == "required" and not self._protected:
            return must_encrypt_data()
        return None

    def after_data_closed(self, dtp: Any, reply: Any) -> Any:
        """The final reply of a transfer, ``reply``; under PROT P only once
        the data connection has ended: the client starts its handshake after
        the 1xx reply, so a listing or a small file is all written (and
        ``reply`` due) before the reuse check may refuse the connection,
        which is then answered 522."""
        if not self._protected or dtp is None or not dtp.isConnected:
            return Failure(reuse_required()) if getattr(dtp, "reuse_refused", False) else reply
        closed: Deferred[None] = Deferred()
        dtp._onConnLost = closed  # noqa: SLF001 - the stock DTP fires it in connectionLost
        return closed.addCallback(lambda _: Failure(reuse_required()) if getattr(dtp, "reuse_refused", False)
                                  else reply)

    def data_factory(self, dtp: Factory) -> Factory:
        """The data port's factory: under PROT P, its connections in TLS."""
        if not self._protected or self._tls_options is None:
            return dtp
        settings = self._ftps()
        return ProtectedData(dtp, self._tls_options, settings is not None and settings.reuse_required)

    def implicit_tls(self) -> None:
        """At connectionMade: on an ``ssl:`` listener (implicit FTPS, port
        990 style) TLS is on from the first byte, with the endpoint's own
        certificate; the data connections get TLS from its context. That
        context has no session cache (Twisted's default, and pyOpenSSL
        forbids changing a context in use), so they cannot resume the
        session: ``ftp_tls_reuse = "required"`` is refused with such a
        listener (a configuration error)."""
        connection = getattr(self.transport, "_tlsConnection", None)  # through the wrappers to the TLS one
        if connection is None:
            return
        self._tls_options = SameContext(connection.get_context())
