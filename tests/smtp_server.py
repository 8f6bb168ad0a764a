"""A real SMTP server for the e-mail tests: Twisted's own ESMTP, on a
loopback port of this reactor, with STARTTLS (a CA and certificate made
here with ``cryptography``), AUTH PLAIN/LOGIN through a cred portal, and
refusals on demand. It keeps what it receives in memory."""

from __future__ import annotations

import datetime
import email
import email.policy
import ipaddress
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.cred import checkers, portal
from twisted.internet import defer, endpoints, protocol, reactor, ssl
from twisted.internet.interfaces import IListeningPort
from twisted.mail import smtp
from twisted.mail.imap4 import PLAINCredentials
from zope.interface import implementer


@attrs.frozen
class Tls:
    """PEM files: the test CA, and the server's key and certificate."""

    ca: Path
    key: Path
    cert: Path


def make_tls(where: Path, *, names: tuple[str, ...] = ("127.0.0.1", "localhost")) -> Tls:
    """A CA, and a certificate it signs for ``names`` (IP addresses or DNS names)."""
    where.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    valid = (now - datetime.timedelta(hours=1), now + datetime.timedelta(days=1))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "oseod mail test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(valid[0]).not_valid_after(valid[1])
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))

    def alt_name(name: str) -> x509.GeneralName:
        try:
            return x509.IPAddress(ipaddress.ip_address(name))
        except ValueError:
            return x509.DNSName(name)

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(valid[0]).not_valid_after(valid[1])
            .add_extension(x509.SubjectAlternativeName([alt_name(n) for n in names]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    tls = Tls(where / "ca.pem", where / "server.key", where / "server.pem")
    tls.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    tls.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    tls.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return tls


@attrs.define
class Received:
    """One message as the server took it, with the session it came in."""

    mail_from: str
    recipients: list[str]
    data: bytes
    user: str | None  # the AUTH login; None: anonymous
    tls: bool  # after STARTTLS

    def parsed(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)


@implementer(smtp.IMessage)
class _Message:
    def __init__(self, server: SmtpServer, delivery: _Delivery, recipient: str, tls: bool) -> None:
        self._server, self._delivery, self._recipient, self._tls = server, delivery, recipient, tls
        self._lines: list[bytes] = []

    def lineReceived(self, line: bytes) -> None:
        self._lines.append(line)

    def eomReceived(self) -> defer.Deferred[None]:
        # Each recipient gets a copy: the copies of one message make one Received.
        data = b"\n".join(self._lines) + b"\n"
        for received in self._server.received:
            if received.data == data:
                received.recipients.append(self._recipient)
                break
        else:
            self._server.received.append(Received(self._delivery.origin, [self._recipient], data,
                                                  self._delivery.user, self._tls))
        return defer.succeed(None)

    def connectionLost(self) -> None:
        pass


@implementer(smtp.IMessageDelivery)
class _Delivery:
    def __init__(self, server: SmtpServer, user: str | None) -> None:
        self._server = server
        self.user = user
        self.origin = ""

    def receivedHeader(self, helo: Any, origin: Any, recipients: Any) -> bytes:
        return b"Received: by the oseod test server"

    def validateFrom(self, helo: Any, origin: smtp.Address) -> smtp.Address:
        if self._server.refuse_from is not None:
            raise smtp.SMTPBadSender(origin, self._server.refuse_from, "not from you")
        self.origin = str(origin)
        return origin

    def validateTo(self, user: smtp.User) -> Any:
        address = str(user.dest)
        code = self._server.refuse_to.get(address)
        if code is not None:
            raise smtp.SMTPBadRcpt(address, code, "no such mailbox" if code >= 500 else "try later")
        tls = bool(user.protocol.startedTLS)
        return lambda: _Message(self._server, self, address, tls)


@implementer(portal.IRealm)
class _Realm:
    def __init__(self, server: SmtpServer) -> None:
        self._server = server

    def requestAvatar(self, avatar_id: Any, mind: Any, *interfaces: Any) -> tuple[Any, Any, Any]:
        if smtp.IMessageDelivery not in interfaces:
            raise NotImplementedError(interfaces)
        user = avatar_id.decode() if isinstance(avatar_id, bytes) else None
        if user is not None:
            self._server.logins.append(user)
        return smtp.IMessageDelivery, _Delivery(self._server, user), lambda: None


class _Factory(smtp.SMTPFactory):
    """smtp.SMTPFactory speaking ESMTP (twisted.mail.protocols' ESMTPFactory
    wants a whole MailService): STARTTLS with ``context``, AUTH with ``challengers``."""

    protocol = smtp.ESMTP
    domain = b"mail.test"

    def __init__(self, portal: portal.Portal, challengers: dict[bytes, Any], context: Any) -> None:
        super().__init__(portal)
        self.challengers = challengers
        self.context = context

    def buildProtocol(self, addr: Any) -> smtp.ESMTP:
        server = cast(smtp.ESMTP, super().buildProtocol(addr))
        server.challengers = self.challengers
        server.ctx = self.context
        return server


@attrs.define
class SmtpServer:
    """``users``: AUTH accounts (then only they may send, else anyone);
    ``mechanisms``: the AUTH mechanisms offered; ``tls``: offer STARTTLS."""

    tls: Tls | None = None
    users: dict[str, str] = attrs.Factory(dict)
    mechanisms: tuple[bytes, ...] = (b"PLAIN", b"LOGIN")
    refuse_from: int | None = None  # reply code to MAIL FROM
    refuse_to: dict[str, int] = attrs.Factory(dict)  # address -> reply code to RCPT TO
    received: list[Received] = attrs.Factory(list)
    logins: list[str] = attrs.Factory(list)
    port: int = 0
    _listening: IListeningPort | None = None

    async def start(self) -> SmtpServer:
        if self.users:
            access: checkers.ICredentialsChecker = checkers.InMemoryUsernamePasswordDatabaseDontUse(
                **{name: password.encode() for name, password in self.users.items()})
        else:
            access = checkers.AllowAnonymousAccess()
        known = {b"PLAIN": PLAINCredentials, b"LOGIN": smtp.LOGINCredentials}
        context = None
        if self.tls is not None:
            pem = self.tls.key.read_bytes() + self.tls.cert.read_bytes()
            context = ssl.PrivateCertificate.loadPEM(pem).options()
        factory = _Factory(portal.Portal(_Realm(self), [access]), {name: known[name] for name in self.mechanisms},
                           context)
        endpoint = endpoints.TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
        self._listening = await endpoint.listen(factory)
        self.port = cast(Any, self._listening.getHost()).port
        return self

    async def stop(self) -> None:
        if self._listening is not None:
            await defer.maybeDeferred(self._listening.stopListening)
            self._listening = None


class _Silent(protocol.Protocol):
    """Accepts a connection and never says a word."""

    def connectionMade(self) -> None:
        factory = cast(SilentServer, self.factory)
        factory.connections.append(self)
        if not factory.connected.called:
            factory.connected.callback(None)

    def connectionLost(self, reason: Any = protocol.connectionDone) -> None:
        cast(SilentServer, self.factory).closed += 1


class SilentServer(protocol.ServerFactory):
    """A server that takes connections and answers nothing (not even the greeting)."""

    protocol = _Silent

    def __init__(self) -> None:
        self.connected: defer.Deferred[None] = defer.Deferred()
        self.connections: list[_Silent] = []
        self.closed = 0
        self.port = 0
        self._listening: IListeningPort | None = None

    async def start(self) -> SilentServer:
        endpoint = endpoints.TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
        self._listening = await endpoint.listen(self)
        self.port = cast(Any, self._listening.getHost()).port
        return self

    async def stop(self) -> None:
        for connection in self.connections:
            if connection.transport is not None:
                connection.transport.loseConnection()
        if self._listening is not None:
            await defer.maybeDeferred(self._listening.stopListening)
