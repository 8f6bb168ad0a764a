"""E-mail: templates, recipients, and delivery to a real SMTP server (Twisted's
own ESMTP on loopback, tests/smtp_server.py) with STARTTLS, AUTH, refusals,
a server down and one that never answers (on a Clock)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task
from zope.interface.verify import verifyObject

from oseod.auth.account import Account
from oseod.config import CollectionConfig, Config, ConfigError, EmailConfig, parse_config
from oseod.model.orders import ItemSpec, Order, OrderSpec, OrderStatus, OrderType, StatusInfo
from oseod.notify.mail import IMailSender, MailConfigError, MailError, MailMessage, SmtpMailSender
from oseod.model.mailevents import MAIL_EVENTS, MailEvent
from oseod.notify.mailtext import (PLACEHOLDERS, MailTemplateError, MailTemplates, MailText, console_url,
                                   order_values)
from oseod.notify.recipients import mail_recipients
from tests.polling import eventually
from tests.smtp_server import SilentServer, SmtpServer, Tls, make_tls

# The test server's TLS context comes from Twisted's CertificateOptions,
# which still hands pyOpenSSL objects to pyOpenSSL (the client side does not).
pytestmark = pytest.mark.filterwarnings("ignore:Passing pyOpenSSL (X509|PKey) objects is deprecated:DeprecationWarning")

ADMINS = ("ops@eo.example", "boss@eo.example")
ALICE = Account("alice", email="alice@users.example")
SENDER = "oseod service <oseod@eo.example>"
COLLECTION = "urn:eo:s2"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def wrong_name_tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("tls-elsewhere"), names=("mail.elsewhere.example",))


@pytest_twisted.async_yield_fixture
async def servers() -> AsyncIterator[list[Any]]:
    """Started servers to stop after the test."""
    started: list[Any] = []
    yield started
    for server in started:
        await server.stop()


async def smtp_server(servers: list[Any], **options: Any) -> SmtpServer:
    server = await SmtpServer(**options).start()
    servers.append(server)
    return server


def email_settings(port: int, **changes: Any) -> EmailConfig:
    settings: dict[str, Any] = {"smtp_host": "127.0.0.1", "smtp_port": port, "starttls": "off", "sender": SENDER,
                                "admins": ADMINS, "timeout": 10.0}
    return EmailConfig(**{**settings, **changes})


def sender_for(settings: EmailConfig, clock: Any = None) -> SmtpMailSender:
    # Each reply is awaited on a Clock nobody advances: no test depends on time.
    sender = SmtpMailSender(settings, reactor, clock=clock or task.Clock())
    sender.start()
    return sender


def a_message(settings: EmailConfig, recipients: tuple[str, ...] = ("alice@users.example",),
              text: MailText = MailText("A subject", "A body.\n")) -> MailMessage:
    return MailMessage.compose(settings, recipients, text, date=1_700_000_000.0)


def an_order(order_type: OrderType = OrderType.PRODUCT_ORDER, status: OrderStatus = OrderStatus.Submitted) -> Order:
    spec = OrderSpec(order_type=order_type, reference="my ref",
                     items=(ItemSpec(item_id="i1", product_id="S2A_1", collection_id=COLLECTION),))
    return Order(order_id="1234", owner="alice", spec=spec, status=StatusInfo(status, "status words"),
                 created_at=1_700_000_000.0)


def password_file(where: Path, password: str = "s3cret pass", mode: int = 0o600) -> Path:
    path = where / "smtp-password"
    path.write_text(password + "\n")
    path.chmod(mode)
    return path


# --- Delivery -----------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_each_kind_of_mail_reaches_its_recipients(servers: list[Any]) -> None:
    server = await smtp_server(servers)
    settings = email_settings(server.port)
    config = attrs.evolve(Config(), email=settings)
    templates = MailTemplates.load()
    sender = sender_for(settings)
    assert verifyObject(IMailSender, sender)
    extras = {"console_url": console_url("https://eo.example/svc/", "1234"), "item_count": 1,
              "reason": "the reason why", "batch": "2024-05-01", "expires": "2024-05-11T00:00:00Z",
              "urls": ["https://eo.example/results/1234/i1/a.tif", "ftp://eo.example/1234/i1/a.tif"]}
    for event in MailEvent:
        values = {**order_values(an_order(), service="EO service"), **extras}
        recipients = mail_recipients(event, ALICE, config, [COLLECTION])
        await sender.send(MailMessage.compose(settings, recipients, templates.render(event, values), 1.7e9))

    assert len(server.received) == len(MailEvent)
    for event, received in zip(MailEvent, server.received):
        mail = received.parsed()
        expected = list(ADMINS) if event.to_admins else ["alice@users.example"]
        assert received.recipients == expected and mail["To"] == ", ".join(expected), event
        assert received.mail_from == "oseod@eo.example" and mail["From"] == SENDER
        assert mail["Subject"].startswith("[EO service] ") and "1234" in mail["Subject"], event
        body = mail.get_content()
        assert "1234" in body and "${" not in body, event
        if "reason" in PLACEHOLDERS[event]:
            assert "the reason why" in body, event
        if "urls" in PLACEHOLDERS[event]:
            assert "https://eo.example/results/1234/i1/a.tif\nftp://eo.example/1234/i1/a.tif\n" in body
            assert "2024-05-11T00:00:00Z" in body
    moderation = server.received[0].parsed().get_content()
    assert "https://eo.example/svc/console/orders/1234" in moderation
    assert "oseoctl order approve 1234" in moderation
    assert "batch 2024-05-01" in server.received[4].parsed()["Subject"]


@pytest_twisted.ensureDeferred
async def test_the_message_has_the_headers_of_an_automatic_utf8_mail(servers: list[Any]) -> None:
    server = await smtp_server(servers)
    settings = email_settings(server.port)
    text = MailText("Commande « été » prête", "Bonjour Zoë,\n.a line that starts with a dot\nvotre commande\n")
    message = a_message(settings, ("zoe@bücher.example",), text)
    await sender_for(settings).send(message)
    (received,) = server.received
    assert received.recipients == ["zoe@xn--bcher-kva.example"]
    mail = received.parsed()
    assert mail["To"] == "zoe@xn--bcher-kva.example"
    assert mail["Subject"] == "Commande « été » prête"
    assert mail.get_content() == text.body
    assert mail.get_content_charset() == "utf-8"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["Message-ID"] == message.message_id and message.message_id.endswith("@eo.example>")
    assert mail["Date"].datetime.timestamp() == 1_700_000_000.0
    assert all(byte < 128 for byte in received.data), "7-bit on the wire: no 8BITMIME needed"


@pytest_twisted.ensureDeferred
async def test_an_address_no_plain_smtp_server_takes_is_a_permanent_error(servers: list[Any]) -> None:
    server = await smtp_server(servers)
    settings = email_settings(server.port)
    with pytest.raises(MailError) as raised:
        await sender_for(settings).send(a_message(settings, ("zoë@users.example",)))
    assert raised.value.permanent and "not ASCII" in str(raised.value)
    await sender_for(settings).send(a_message(settings, ("zoe@bücher.example",)))
    assert server.received[0].recipients == ["zoe@xn--bcher-kva.example"]


@pytest.mark.parametrize(("starttls", "offered", "encrypted"), [
    ("required", True, True),
    ("optional", True, True),
    ("optional", False, False),
    ("off", True, False),
])  # fmt: skip
@pytest_twisted.ensureDeferred
async def test_starttls_as_configured(servers: list[Any], tls: Tls, starttls: str, offered: bool,
                                      encrypted: bool) -> None:
    server = await smtp_server(servers, tls=tls if offered else None)
    settings = email_settings(server.port, starttls=starttls, ca_file=str(tls.ca))
    await sender_for(settings).send(a_message(settings))
    (received,) = server.received
    assert received.tls is encrypted


@pytest_twisted.ensureDeferred
async def test_starttls_required_refuses_a_server_without_it(servers: list[Any], tls: Tls) -> None:
    server = await smtp_server(servers)
    settings = email_settings(server.port, starttls="required", ca_file=str(tls.ca))
    with pytest.raises(MailError, match="does not offer STARTTLS") as raised:
        await sender_for(settings).send(a_message(settings))
    assert not raised.value.permanent
    assert server.received == []


@pytest.mark.parametrize("trouble", ["certificate for another name", "unknown CA"])
@pytest_twisted.ensureDeferred
async def test_a_certificate_that_does_not_verify_stops_the_mail(
        servers: list[Any], tls: Tls, wrong_name_tls: Tls, tmp_path: Path, trouble: str) -> None:
    if trouble == "unknown CA":
        server = await smtp_server(servers, tls=tls)
        ca = make_tls(tmp_path / "other").ca
    else:
        server = await smtp_server(servers, tls=wrong_name_tls)
        ca = wrong_name_tls.ca
    settings = email_settings(server.port, starttls="optional", ca_file=str(ca))
    with pytest.raises(MailError, match="STARTTLS handshake") as raised:
        await sender_for(settings).send(a_message(settings))
    assert not raised.value.permanent
    assert server.received == []


@pytest.mark.parametrize("mechanism", [b"PLAIN", b"LOGIN"])
@pytest_twisted.ensureDeferred
async def test_auth_with_the_password_from_a_file(servers: list[Any], tls: Tls, tmp_path: Path,
                                                  mechanism: bytes) -> None:
    server = await smtp_server(servers, tls=tls, users={"mailer": "s3cret pass"}, mechanisms=(mechanism,))
    settings = email_settings(server.port, starttls="optional", ca_file=str(tls.ca), username="mailer",
                              password_file=str(password_file(tmp_path, mode=0o640)))
    await sender_for(settings).send(a_message(settings))
    (received,) = server.received
    assert received.user == "mailer" and received.tls


@pytest_twisted.ensureDeferred
async def test_the_server_refuses_anonymous_mail_without_auth(servers: list[Any], tls: Tls) -> None:
    server = await smtp_server(servers, tls=tls, users={"mailer": "s3cret pass"})
    settings = email_settings(server.port, starttls="optional", ca_file=str(tls.ca))
    with pytest.raises(MailError, match="550") as raised:
        await sender_for(settings).send(a_message(settings))
    assert raised.value.permanent and raised.value.code == 550


@pytest_twisted.ensureDeferred
async def test_a_wrong_password_is_a_clear_temporary_error(servers: list[Any], tls: Tls, tmp_path: Path) -> None:
    server = await smtp_server(servers, tls=tls, users={"mailer": "s3cret pass"})
    settings = email_settings(server.port, starttls="optional", ca_file=str(tls.ca), username="mailer",
                              password_file=str(password_file(tmp_path, "not the password")))
    with pytest.raises(MailError, match="refused the login") as raised:
        await sender_for(settings).send(a_message(settings))
    assert raised.value.code == 535 and not raised.value.permanent
    assert "not the password" not in str(raised.value)
    assert server.received == []


@pytest_twisted.ensureDeferred
async def test_a_password_never_goes_in_clear(servers: list[Any], tls: Tls, tmp_path: Path) -> None:
    """starttls = "optional" with a username: a server (or someone in the way)
    that offers no STARTTLS gets no password."""
    server = await smtp_server(servers, users={"mailer": "s3cret pass"})
    settings = email_settings(server.port, starttls="optional", ca_file=str(tls.ca), username="mailer",
                              password_file=str(password_file(tmp_path)))
    with pytest.raises(MailError, match="does not offer STARTTLS"):
        await sender_for(settings).send(a_message(settings))
    assert server.logins == [] and server.received == []


def test_a_password_file_others_can_read_or_missing_stops_the_start(tmp_path: Path) -> None:
    settings = email_settings(25, username="mailer", password_file=str(password_file(tmp_path, mode=0o644)))
    with pytest.raises(MailConfigError, match="readable by every user"):
        SmtpMailSender(settings, reactor).start()
    with pytest.raises(MailConfigError, match="cannot read"):
        SmtpMailSender(attrs.evolve(settings, password_file=str(tmp_path / "none")), reactor).start()
    with pytest.raises(MailConfigError, match="email.ca_file"):
        SmtpMailSender(email_settings(25, ca_file=str(tmp_path / "none")), reactor).start()
    empty = password_file(tmp_path, "")
    with pytest.raises(MailConfigError, match="empty"):
        SmtpMailSender(attrs.evolve(settings, password_file=str(empty)), reactor).start()


@pytest_twisted.ensureDeferred
async def test_a_mail_server_down_is_a_clear_temporary_error(servers: list[Any]) -> None:
    server = await SmtpServer().start()
    port = server.port
    await server.stop()  # nobody listens there any more
    settings = email_settings(port)
    with pytest.raises(MailError, match=f"cannot connect to the SMTP server 127.0.0.1:{port}") as raised:
        await sender_for(settings).send(a_message(settings))
    assert not raised.value.permanent


@pytest.mark.parametrize(("refuse_from", "refuse_to", "permanent", "code"), [
    (550, {}, True, 550),
    (451, {}, False, 451),
    (None, {"alice@users.example": 550}, True, 550),
    (None, {"alice@users.example": 450}, False, 450),
])  # fmt: skip
@pytest_twisted.ensureDeferred
async def test_4xx_and_5xx_replies_raise(servers: list[Any], refuse_from: int | None, refuse_to: dict[str, int],
                                         permanent: bool, code: int) -> None:
    server = await smtp_server(servers, refuse_from=refuse_from, refuse_to=refuse_to)
    settings = email_settings(server.port)
    with pytest.raises(MailError, match=str(code)) as raised:
        await sender_for(settings).send(a_message(settings))
    assert raised.value.permanent is permanent and raised.value.code == code
    assert server.received == []


@pytest_twisted.ensureDeferred
async def test_a_recipient_refused_among_others_does_not_hold_back_the_mail(servers: list[Any]) -> None:
    server = await smtp_server(servers, refuse_to={"boss@eo.example": 550})
    settings = email_settings(server.port)
    await sender_for(settings).send(a_message(settings, ADMINS))
    (received,) = server.received
    assert received.recipients == ["ops@eo.example"]


async def session_started(silent: SilentServer, clock: task.Clock) -> None:
    """Until both ends have the connection: the server's side, and the
    client's, which then waits for the greeting on ``clock``."""
    await silent.connected

    async def waiting() -> bool:
        return bool(clock.getDelayedCalls())

    await eventually(waiting, 10, "the client waiting for the greeting")


@pytest_twisted.ensureDeferred
async def test_a_server_that_never_answers_times_out_on_the_clock(servers: list[Any]) -> None:
    silent = await SilentServer().start()
    servers.append(silent)
    clock = task.Clock()
    settings = email_settings(silent.port, timeout=30.0)
    sending = defer.Deferred.fromCoroutine(sender_for(settings, clock).send(a_message(settings)))
    await session_started(silent, clock)
    clock.advance(29.9)
    assert not sending.called
    clock.advance(0.2)
    with pytest.raises(MailError, match="did not answer in time"):
        await sending

    async def closed() -> bool:
        return silent.closed == 1

    await eventually(closed, 10, "the silent connection closed")


@pytest_twisted.ensureDeferred
async def test_cancelling_a_send_closes_its_connection(servers: list[Any]) -> None:
    silent = await SilentServer().start()
    servers.append(silent)
    settings = email_settings(silent.port)
    clock = task.Clock()
    sending = defer.Deferred.fromCoroutine(sender_for(settings, clock).send(a_message(settings)))
    await session_started(silent, clock)
    sending.cancel()
    with pytest.raises(defer.CancelledError):
        await sending

    async def closed() -> bool:
        return silent.closed == 1

    await eventually(closed, 10, "the cancelled connection closed")


@pytest_twisted.ensureDeferred
async def test_no_smtp_host_sends_nothing() -> None:
    settings = attrs.evolve(email_settings(25), smtp_host="")
    with pytest.raises(MailError, match="smtp_host is empty"):
        await sender_for(settings).send(a_message(settings))


# --- Templates ----------------------------------------------------------------------------------------


def test_every_built_in_template_documents_its_placeholders() -> None:
    templates = MailTemplates.load()
    for event in MailEvent:
        assert templates.source(event) == f"built-in {event.value}.txt"
        source = (Path(__file__).parent.parent / "oseod" / "notify" / "templates" / f"{event.value}.txt").read_text()
        comments = "".join(line for line in source.splitlines(keepends=True) if line.startswith("#"))
        for placeholder in PLACEHOLDERS[event]:
            assert f"${{{placeholder}}}" in comments, (event, placeholder)
        text = templates.render(event, {name: f"<{name}>" for name in PLACEHOLDERS[event]})
        assert "<order_id>" in text.subject and text.body.endswith("\n")


def test_an_operator_template_replaces_the_built_in_one(tmp_path: Path) -> None:
    (tmp_path / "accepted.txt").write_text(
        "# our own words\nSubject: Commande ${order_id} acceptée\n\nBonjour ${owner}, ça coûte 5 $$.\n")
    (tmp_path / "README").write_text("not a template")
    templates = MailTemplates.load(str(tmp_path))
    assert templates.source(MailEvent.ACCEPTED) == str(tmp_path / "accepted.txt")
    assert templates.source(MailEvent.REJECTED) == "built-in rejected.txt"
    text = templates.render(MailEvent.ACCEPTED, order_values(an_order(), service="S"))
    assert text == MailText("Commande 1234 acceptée", "Bonjour alice, ça coûte 5 $.\n")


@pytest.mark.parametrize(("name", "content", "complaint"), [
    ("accepted.txt", "Subject: ${order_id} ${urls}\n\nbody\n", "unknown placeholder ${urls}"),
    ("accepted.txt", "Subject: x\n\ncosts 5 $\n", "write $$"),
    ("accepted.txt", "# no subject\n\nbody\n", "Subject"),
    ("accepted.txt", "Subject: x\nbody at once\n", "empty line"),
    ("acepted.txt", "Subject: x\n\nbody\n", "no e-mail is called 'acepted'"),
    ("accepted.txt", b"Subject: \xff\n\n", "not UTF-8"),
])  # fmt: skip
def test_mistakes_in_a_template_stop_the_load(tmp_path: Path, name: str, content: str | bytes,
                                              complaint: str) -> None:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(MailTemplateError) as raised:
        MailTemplates.load(str(tmp_path))
    assert complaint in str(raised.value) and name in str(raised.value)


def test_templates_dir_that_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(MailTemplateError, match="email.templates_dir"):
        MailTemplates.load(str(tmp_path / "nowhere"))


def test_a_missing_value_renders_empty_and_a_subject_stays_one_line() -> None:
    templates = MailTemplates.load()
    values = {**order_values(an_order(), service="S"), "reference": "two\r\nlines"}
    text = templates.render(MailEvent.REJECTED, values)  # no reason given
    assert "\n" not in text.subject
    assert "\n    \n" in text.body  # where the reason would be
    assert "two\r\nlines" in text.body


def test_console_url_quotes_the_id() -> None:
    assert console_url("https://eo.example", "a/b c") == "https://eo.example/console/orders/a%2Fb%20c"


# --- Recipients and configuration ---------------------------------------------------------------------


def config_with(*collections: CollectionConfig, **email: Any) -> Config:
    return attrs.evolve(Config(), collections=collections or Config().collections,
                        email=EmailConfig(**{"smtp_host": "mail.eo.example", "admins": ADMINS, **email}))


def test_recipients_by_event() -> None:
    config = config_with()
    for event in MailEvent:
        expected = list(ADMINS) if event.to_admins else ["alice@users.example"]
        assert mail_recipients(event, ALICE, config, [COLLECTION]) == expected
    assert mail_recipients(MailEvent.FAILED, Account("bob"), config) == []  # no address
    assert mail_recipients(MailEvent.FAILED, Account("eve", email="eve@x\r\nRCPT TO:<a@b>"), config) == []
    assert mail_recipients(MailEvent.FAILED, None, config) == []
    doubled = config_with(admins=("ops@eo.example", "ops@eo.example"))
    assert mail_recipients(MailEvent.MODERATION, ALICE, doubled) == ["ops@eo.example"]
    assert mail_recipients(MailEvent.MODERATION, ALICE, config_with(smtp_host="")) == []


def test_recipients_honour_each_collections_email_events() -> None:
    quiet = CollectionConfig(id="urn:quiet", email_events=("moderation", "failed"))
    loud = CollectionConfig(id="urn:loud")
    config = config_with(quiet, loud)
    assert mail_recipients(MailEvent.ORDER_READY, ALICE, config, ["urn:quiet"]) == []
    assert mail_recipients(MailEvent.FAILED, ALICE, config, ["urn:quiet"]) == ["alice@users.example"]
    assert mail_recipients(MailEvent.MODERATION, ALICE, config, ["urn:quiet"]) == list(ADMINS)
    assert mail_recipients(MailEvent.FAILED_ADMIN, ALICE, config, ["urn:quiet"]) == []
    # Any of the order's collections that wants the mail; one no longer configured wants them all.
    assert mail_recipients(MailEvent.ORDER_READY, ALICE, config, ["urn:quiet", "urn:loud"]) == ["alice@users.example"]
    assert mail_recipients(MailEvent.ORDER_READY, ALICE, config, ["urn:gone"]) == ["alice@users.example"]


def test_email_configuration() -> None:
    assert CollectionConfig(id="x").email_events == MAIL_EVENTS == tuple(e.value for e in MailEvent)
    config = parse_config({"email": {"sender": "EO service <eo@eo.example>", "admins": ["a@eo.example"],
                                     "username": "u", "password_file": "/etc/oseod/smtp"},
                           "collection": [{"id": "c", "email_events": ["failed"]}]})
    assert config.collections[0].email_events == ("failed",)
    assert config.email.username == "u"


@pytest.mark.parametrize(("document", "key", "fragment"), [
    ({"collection": [{"id": "c", "email_events": ["spam"]}]}, "collection[0].email_events[0]", '"moderation"'),
    ({"email": {"admins": ["Ops <ops@eo.example>"]}}, "email.admins[0]", "local@domain"),
    ({"email": {"admins": ["ops@eo.example, eve@x"]}}, "email.admins[0]", "one e-mail address"),
    ({"email": {"sender": "oseod"}}, "email.sender", "local@domain"),
    ({"email": {"username": "u"}}, "email.password_file", "required"),
    ({"email": {"password_file": "/p"}}, "email.username", "required"),
    ({"email": {"timeout": 0}}, "email.timeout", "at least"),
])  # fmt: skip
def test_bad_email_configuration(document: dict[str, Any], key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(document)
    assert raised.value.key == key and fragment in raised.value.problem


def test_password_file_mode_is_checked_at_each_mail(tmp_path: Path) -> None:
    path = password_file(tmp_path)
    sender = SmtpMailSender(email_settings(25, username="mailer", password_file=str(path)), reactor)
    sender.start()
    os.chmod(path, 0o604)
    with pytest.raises(MailError, match="readable by every user"):
        sender._password()
