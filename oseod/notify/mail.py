"""Sending one e-mail over SMTP: STARTTLS and AUTH as [email] says.

The outbox decides what to send and when, and retries; this module only
delivers one message and says clearly when it could not. ``send`` returns
once the server has accepted the message for at least one recipient, and
raises MailError for anything else: no connection, a TLS or AUTH failure,
a refusal, no answer within ``timeout``. ``MailError.permanent`` marks the
one kind of failure that sending the same message again cannot cure: the
server refused this message (5xx to MAIL FROM, to every RCPT TO, or to
its DATA). A server that is down, a certificate or password to fix: all
temporary, worth retrying.

Twisted's ESMTPClient speaks the protocol; the session below only feeds it
one message and turns its outcome into a Deferred. Twisted's own
ESMTPSenderFactory is not used because it reports a connection lost after
the STARTTLS handshake failed (a certificate refused) only through
ClientFactory.clientConnectionLost, which connections made by endpoints
never call; and it keeps a line log of the session, AUTH exchange
included, which ends up in its exceptions' text.
"""

from __future__ import annotations

import email.policy
import io
import os
import stat
from collections.abc import Awaitable, Callable, Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, cast

import attrs
from twisted.internet import defer, endpoints, protocol, ssl
from twisted.internet.interfaces import IDelayedCall, IReactorTime, ITCPTransport
from twisted.logger import Logger
from twisted.mail import smtp
from twisted.python.failure import Failure
from zope.interface import Interface, implementer

from ..config import EmailConfig
from ..model.addresses import mail_address, smtp_address
from ..reactors import IDaemonReactor
from ..trust import trust_root
from .mailtext import MailText

log = Logger()

# Plain 7-bit text on the wire: Twisted's client does not negotiate 8BITMIME,
# so non-ASCII bodies go quoted-printable (or base64) and headers as encoded
# words. "\n" line ends: the client turns them into CRLF itself.
_POLICY = email.policy.default.clone(cte_type="7bit")


class MailError(Exception):
    """One message could not be delivered. ``permanent``: the server refused
    this message for good (5xx), sending it again would fail again;
    otherwise the failure is worth a retry. ``code``: the server's reply
    code, when there was one."""

    def __init__(self, message: str, *, permanent: bool = False, code: int | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code


class MailConfigError(ValueError):
    """The [email] settings cannot work (an unreadable CA or password
    file): the daemon refuses to start, naming the key."""


@attrs.frozen
class MailMessage:
    """One e-mail, ready to send and to keep in an outbox (plain values)."""

    sender: str  # the From header: "address" or "Name <address>"
    recipients: tuple[str, ...]
    subject: str
    body: str
    date: float  # Unix time: the Date header
    # Kept with the message, so that a retried mail is the same mail to the
    # recipients' software (which may then show it once).
    message_id: str

    @classmethod
    def compose(cls, settings: EmailConfig, recipients: Sequence[str], text: MailText, date: float) -> MailMessage:
        return cls(sender=settings.sender, recipients=tuple(recipients), subject=text.subject, body=text.body,
                   date=date, message_id=new_message_id(settings.sender))

    def as_bytes(self) -> bytes:
        """The message as it goes on the wire (MailError, permanent, for an
        address no plain SMTP server can take)."""
        message = EmailMessage(policy=_POLICY)
        message["From"] = self.sender
        message["To"] = ", ".join(_envelope(address) for address in self.recipients)
        message["Subject"] = self.subject
        message["Date"] = formatdate(self.date, usegmt=True)
        message["Message-ID"] = self.message_id
        # RFC 3834: tells auto-responders (holiday replies) not to answer.
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(self.body, charset="utf-8")
        return message.as_bytes()


def new_message_id(sender: str) -> str:
    domain = mail_address(sender, display_name=True).rpartition("@")[2]
    return make_msgid(domain=domain.encode("idna").decode("ascii"))


def _envelope(address: str) -> str:
    try:
        return smtp_address(address)
    except ValueError as e:
        raise MailError(f"cannot send to {e}", permanent=True) from None


class IMailSender(Interface):
    """Delivers e-mails (the outbox's plug-in point; tests may stand in)."""

    def send(message: MailMessage) -> Awaitable[None]:
        """Deliver ``message``; MailError when it could not be."""


@implementer(IMailSender)
class SmtpMailSender:
    """Sends each message on a connection of its own to [email] smtp_host."""

    def __init__(self, settings: EmailConfig, reactor: IDaemonReactor, clock: IReactorTime | None = None) -> None:
        self._settings = settings
        self._reactor = reactor
        self._clock: IReactorTime = clock if clock is not None else reactor
        self._trust: Any = None

    def start(self) -> None:
        """Check what can be checked before the first mail (CA file, password
        file): MailConfigError stops the daemon's start. The server itself
        is not asked: a mail server down must not keep orders from flowing."""
        self._trust = self._trust_root()
        if self._settings.username:
            try:
                self._password()
            except MailError as e:
                raise MailConfigError(str(e)) from None

    def _trust_root(self) -> Any:
        try:
            return trust_root(self._settings.ca_file, "email.ca_file")
        except ValueError as e:
            raise MailConfigError(str(e)) from None

    def _password(self) -> bytes:
        """The SMTP password, read again for each mail so that a changed
        password applies at once. A file others may read is refused: the
        password of a mail account lets anyone send as the service."""
        path = self._settings.password_file
        try:
            with open(path, "rb") as f:
                mode = os.fstat(f.fileno()).st_mode
                secret = f.read()
        except OSError as e:
            raise MailError(f"email.password_file: cannot read {path}: {e.strerror}") from None
        if mode & stat.S_IROTH:
            raise MailError(f"email.password_file: {path} is readable by every user; chmod o-r it")
        # The line break `echo` and editors add is not part of the password.
        secret = secret.removesuffix(b"\n").removesuffix(b"\r")
        if not secret:
            raise MailError(f"email.password_file: {path} is empty")
        return secret

    async def send(self, message: MailMessage) -> None:
        settings = self._settings
        if not settings.smtp_host:
            raise MailError("no SMTP server: [email] smtp_host is empty")
        data = message.as_bytes()
        try:
            sender = smtp_address(mail_address(message.sender, display_name=True))
        except ValueError as e:
            raise MailError(f"cannot send from {e}", permanent=True) from None
        recipients = [_envelope(address) for address in message.recipients]
        if not recipients:
            raise MailError("the message has no recipient", permanent=True)
        tls: Any = None
        if settings.starttls != "off":
            if self._trust is None:
                try:
                    self._trust = self._trust_root()
                except MailConfigError as e:
                    raise MailError(str(e)) from None
            tls = ssl.optionsForClientTLS(settings.smtp_host, trustRoot=self._trust)
        secret = self._password() if settings.username else None
        session = _Session(
            identity=smtp.DNSNAME, sender=sender, recipients=recipients, data=data,
            username=settings.username, secret=secret, tls=tls,
            require_tls=settings.starttls == "required" or (settings.starttls == "optional" and bool(secret)),
            timeout=settings.timeout, clock=self._clock,
        )  # fmt: skip
        where = f"{settings.smtp_host}:{settings.smtp_port}"
        endpoint = endpoints.HostnameEndpoint(self._reactor, settings.smtp_host, settings.smtp_port,
                                              timeout=settings.timeout)
        try:
            await endpoints.connectProtocol(endpoint, session)
        except defer.CancelledError:
            raise
        except Exception as e:  # refused, unreachable, no such name, no answer
            raise MailError(f"cannot connect to the SMTP server {where}: {e}") from None
        try:
            refused = await session.finished
        except smtp.SMTPClientError as e:
            raise _mail_error(e, where) from None
        except MailError as e:
            raise MailError(f"SMTP server {where}: {e}", permanent=e.permanent, code=e.code) from None
        if refused:
            log.warn("mail {message_id} refused for {refused} by {server}", message_id=message.message_id,
                     refused=refused, server=where)
        log.info("mail {message_id} sent to {recipients} through {server}", message_id=message.message_id,
                 recipients=[r for r in recipients if r not in refused], server=where)


def _reply(resp: bytes | str) -> str:
    text = resp.decode("utf-8", "replace") if isinstance(resp, bytes) else resp
    return " ".join(text.split())


def _mail_error(e: smtp.SMTPClientError, where: str) -> MailError:
    """What went wrong, in words an operator can act on."""
    reply = _reply(e.resp)
    if isinstance(e, smtp.TLSRequiredError):
        return MailError(f"SMTP server {where} does not offer STARTTLS, and TLS is required "
                         f"([email] starttls, or a username is set)")
    if isinstance(e, smtp.AUTHRequiredError):
        return MailError(f"SMTP server {where} offers no AUTH mechanism oseod speaks (PLAIN, LOGIN): {reply}")
    if isinstance(e, smtp.EHLORequiredError):
        return MailError(f"SMTP server {where} does not speak ESMTP, needed for STARTTLS and AUTH")
    if isinstance(e, (smtp.AUTHDeclinedError, smtp.AuthenticationError)):
        return MailError(f"SMTP server {where} refused the login of [email] username: {e.code} {reply}", code=e.code)
    if isinstance(e, smtp.SMTPTimeoutError):
        return MailError(f"SMTP server {where} did not answer in time")
    if isinstance(e, smtp.TLSError):
        return MailError(f"SMTP server {where}: STARTTLS failed: {e.code} {reply}", code=e.code)
    code = e.code if e.code > 0 else None
    return MailError(f"SMTP server {where}: {e.code} {reply}" if code else f"SMTP server {where}: {reply}", code=code)


class _Session(smtp.ESMTPClient):
    """One SMTP session that sends one message: ``finished`` fires with the
    recipients the server refused (if it took the message for others), or
    fails with an SMTPClientError or MailError."""

    # Keeps no line log of the session: its AUTH lines hold the password,
    # and the log is part of every SMTPClientError's text.
    debug = False

    def __init__(self, *, identity: bytes, sender: str, recipients: Sequence[str], data: bytes, username: str,
                 secret: bytes | None, tls: Any, require_tls: bool, timeout: float, clock: IReactorTime) -> None:
        super().__init__(secret, tls, identity)
        self._sender: str | None = sender
        self._recipients = [r.encode("ascii") for r in recipients]
        self._data = data
        self.requireTransportSecurity = require_tls
        self.requireAuthentication = bool(secret)
        # Plain HELO, without extensions, only when neither is needed.
        self.heloFallback = not require_tls and not secret
        if secret is not None:
            user = username.encode("utf-8")
            self.registerAuthenticator(smtp.PLAINAuthenticator(user))
            self.registerAuthenticator(smtp.LOGINAuthenticator(user))
        # TimeoutMixin's wait for each reply (SMTPClient types it as None: never).
        self.timeout = timeout  # type: ignore[assignment]
        self._clock = clock
        self._tls_asked = False
        self.finished: defer.Deferred[list[str]] = defer.Deferred(lambda _: self._abort())

    def callLater(self, period: float, func: Callable[[], object]) -> IDelayedCall:
        """TimeoutMixin's timer, on the sender's clock."""
        return self._clock.callLater(period, func)

    def _abort(self) -> None:
        if self.transport is not None:
            cast(ITCPTransport, self.transport).abortConnection()

    def _fail(self, reason: Exception | Failure) -> None:
        if not self.finished.called:
            self.finished.errback(reason)

    # What SMTPClient asks for: one sender, its recipients, the message.
    def getMailFrom(self) -> str | None:
        sender, self._sender = self._sender, None
        return sender

    def getMailTo(self) -> list[bytes]:
        return self._recipients

    def getMailData(self) -> io.BytesIO:
        return io.BytesIO(self._data)

    def esmtpState_starttls(self, code: int, resp: bytes) -> None:
        self._tls_asked = True
        super().esmtpState_starttls(code, resp)

    def sentMail(self, code: int, resp: bytes, numOk: int, addresses: list[tuple[bytes, int, bytes]],
                 session_log: Any) -> None:
        if self.finished.called:
            return
        refusals = [(address.decode("ascii", "replace"), rcode, _reply(rresp))
                    for address, rcode, rresp in addresses if rcode not in smtp.SUCCESS]
        if code in smtp.SUCCESS:
            self.finished.callback([address for address, _, _ in refusals])
            return
        if code < 0:  # no RCPT TO was accepted
            permanent = bool(refusals) and all(rcode >= 500 for _, rcode, _ in refusals)
            detail = "; ".join(f"{address}: {rcode} {text}" for address, rcode, text in refusals)
            self._fail(MailError(f"every recipient refused ({detail})", permanent=permanent,
                                 code=refusals[-1][1] if refusals else None))
        else:  # MAIL FROM or DATA refused
            self._fail(MailError(f"message refused: {code} {_reply(resp)}", permanent=code >= 500, code=code))

    def sendError(self, exc: Exception) -> None:
        self._fail(exc)  # first: hanging up may report the connection lost at once
        super().sendError(exc)

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        super().connectionLost(reason)
        if not self.finished.called:
            during = " during the STARTTLS handshake (certificate?)" if self._tls_asked else ""
            self._fail(MailError(f"connection lost{during}: {reason.getErrorMessage()}"))
