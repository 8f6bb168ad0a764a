"""oseod.oseo.security: the WS-Security UsernameToken and WS-Addressing
headers of SOAP requests."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from lxml import etree

from oseod.oseo.errors import ExceptionCode, OseoError
from oseod.oseo.namespaces import SOAP11, SOAP12, WSA, WSSE, WSU
from oseod.oseo.security import (
    PASSWORD_DIGEST,
    PASSWORD_TEXT,
    Addressing,
    UsernameToken,
    parse_addressing,
    parse_username_token,
    password_digest,
)
from oseod.oseo.soap import unwrap
from tests.oseo_schema import SCHEMAS_DIR

EXAMPLES = SCHEMAS_DIR / "examples"
SOAPUI = SCHEMAS_DIR.parent / "samples" / "pyoseo" / "derived" / "soapui-requests"
BODY = b'<o:GetStatus xmlns:o="http://www.opengis.net/oseo/1.0" service="OS" version="1.0.0"/>'


def headers(xml: str, soap: str = SOAP12) -> tuple[etree._Element, ...]:
    body = (
        f'<s:Envelope xmlns:s="{soap}" xmlns:wsse="{WSSE}" xmlns:wsu="{WSU}" xmlns:wsa="{WSA}">'
        f"<s:Header>{xml}</s:Header><s:Body>{BODY.decode()}</s:Body></s:Envelope>"
    )
    return unwrap(body.encode(), None).headers


def token_xml(inner: str) -> str:
    return f"<wsse:Security><wsse:UsernameToken>{inner}</wsse:UsernameToken></wsse:Security>"


def error_of(call: Callable[..., object], *args: object) -> OseoError:
    with pytest.raises(OseoError) as info:
        call(*args)
    assert info.value.sender
    return info.value


def auth_error(inner: str) -> OseoError:
    error = error_of(parse_username_token, headers(token_xml(inner)))
    assert error.code is ExceptionCode.AuthenticationFailed
    assert error.locator == "identity_token"
    return error


# ----------------------------------------------------------------- digest


def test_password_digest_matches_the_published_example() -> None:
    # The UsernameToken example of the WS-Security literature (Wikipedia's
    # WS-Security article): nonce, created and password give this digest.
    nonce = base64.b64decode("LKqI6G/AikKCQrN0zqZFlg==")
    assert password_digest(nonce, "2010-09-16T07:50:45Z", "userpassword") == "tuOSpGlFlIXsozq4HFNeeGeFLEI="


def test_password_digest_encodes_text_as_utf8() -> None:
    assert password_digest(b"\x00\x01", "2024-01-01T00:00:00Z", "pässwörd") != password_digest(
        b"\x00\x01", "2024-01-01T00:00:00Z", "passwoerd"
    )
    assert len(base64.b64decode(password_digest(b"", "", ""))) == 20


# ------------------------------------------------------------------ token


def test_plain_text_token_from_the_handwritten_sample() -> None:
    message = unwrap((EXAMPLES / "handwritten" / "soap12-submit-async-wsa-wsse.xml").read_bytes(), None)
    assert parse_username_token(message.headers) == UsernameToken("alice", "secret", False, None, None)


def test_pyoseo_token_with_lower_case_type_is_plain_text() -> None:
    # pyoseo clients wrote type="BBBB#VITO" (lower case, not the profile's
    # Type attribute): the password is read as plain text.
    message = unwrap((EXAMPLES / "pyoseo-samples" / "soap_ui_get_status_user.xml").read_bytes(), None)
    token = parse_username_token(message.headers)
    assert token == UsernameToken("AAAA", "CCCC", False, None, None)


def test_soapui_tokens_with_domain_attribute() -> None:
    message = unwrap((SOAPUI / "testsuite__IpmaTestSuite__Submit__03_ProductOrder_illegal_packaging.xml").read_bytes(),
                     None)
    assert parse_username_token(message.headers) == UsernameToken("ricardogsilva", "CCCC", False, None, None)


def test_password_is_not_in_the_repr() -> None:
    inner = "<wsse:Username>u</wsse:Username><wsse:Password>s3cr3t</wsse:Password>"
    token = parse_username_token(headers(token_xml(inner)))
    assert "s3cr3t" not in repr(token)


@pytest.mark.parametrize("soap", [SOAP11, SOAP12])
def test_digest_token(soap: str) -> None:
    nonce = b"0123456789abcdef"
    created = "2024-05-01T10:00:00Z"
    digest = password_digest(nonce, created, "pw")
    inner = (
        f"<wsse:Username> bob </wsse:Username>"
        f'<wsse:Password Type="{PASSWORD_DIGEST}">{digest}</wsse:Password>'
        f'<wsse:Nonce EncodingType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0'
        f'#Base64Binary">{base64.b64encode(nonce).decode()}</wsse:Nonce>'
        f"<wsu:Created>{created}</wsu:Created>"
    )
    token = parse_username_token(headers(token_xml(inner), soap))
    assert token == UsernameToken("bob", digest, True, nonce, created)
    assert token is not None and password_digest(token.nonce or b"", token.created or "", "pw") == token.password


def test_text_type_nonce_without_encoding_type_and_wsse_created() -> None:
    nonce = base64.b64encode(b"n" * 16).decode()
    inner = (
        f'<wsse:Username>carol</wsse:Username><wsse:Password Type="{PASSWORD_TEXT}"> spaced pw </wsse:Password>'
        f"<wsse:Nonce>\n {nonce[:8]}\n {nonce[8:]} </wsse:Nonce><wsse:Created>2024-01-01T00:00:00Z</wsse:Created>"
        f'<x:Extra xmlns:x="urn:x"/>'
    )
    token = parse_username_token(headers(token_xml(inner)))
    # The password is taken exactly as sent; the nonce's line breaks are not part of it.
    assert token == UsernameToken("carol", " spaced pw ", False, b"n" * 16, "2024-01-01T00:00:00Z")


def test_short_type_names_are_understood() -> None:
    for kind, digest in (("#PasswordText", False), ("wsse:PasswordDigest", True)):
        inner = f'<wsse:Username>u</wsse:Username><wsse:Password Type="{kind}">cGFzcw==</wsse:Password>'
        token = parse_username_token(headers(token_xml(inner)))
        assert token is not None and token.digest is digest


def test_no_token() -> None:
    assert parse_username_token(()) is None
    assert parse_username_token(headers('<wsa:MessageID>urn:x</wsa:MessageID>')) is None
    # Another kind of token (SAML, binary): not ours to read.
    assert parse_username_token(headers('<wsse:Security><wsse:BinarySecurityToken>AA==</wsse:BinarySecurityToken>'
                                        "</wsse:Security>")) is None


def test_first_security_header_with_a_token_wins() -> None:
    xml = ("<wsse:Security/>" + token_xml("<wsse:Username>one</wsse:Username><wsse:Password>1</wsse:Password>")
           + token_xml("<wsse:Username>two</wsse:Username><wsse:Password>2</wsse:Password>"))
    token = parse_username_token(headers(xml))
    assert token is not None and token.username == "one"


@pytest.mark.parametrize(
    ("inner", "phrase"),
    [
        ("<wsse:Password>x</wsse:Password>", "no Username"),
        ("<wsse:Username>  </wsse:Username><wsse:Password>x</wsse:Password>", "no Username"),
        ("<wsse:Username>u</wsse:Username>", "no Password"),
        ('<wsse:Username>u</wsse:Username><wsse:Password Type="BBBB#VITO">CCCC</wsse:Password>', "BBBB#VITO"),
        (f'<wsse:Username>u</wsse:Username><wsse:Password Type="{PASSWORD_DIGEST}">not base64!</wsse:Password>',
         "PasswordDigest"),
        ("<wsse:Username>u</wsse:Username><wsse:Password>p</wsse:Password><wsse:Nonce>@@@</wsse:Nonce>", "Nonce"),
        ('<wsse:Username>u</wsse:Username><wsse:Password>p</wsse:Password>'
         '<wsse:Nonce EncodingType="urn:hex#HexBinary">00ff</wsse:Nonce>', "HexBinary"),
    ],
)
def test_malformed_tokens(inner: str, phrase: str) -> None:
    assert phrase in auth_error(inner).text


# ------------------------------------------------------------- addressing


def test_addressing_from_the_handwritten_submit() -> None:
    message = unwrap((EXAMPLES / "handwritten" / "soap12-submit-async-wsa-wsse.xml").read_bytes(), None)
    assert parse_addressing(message.headers) == Addressing(
        reply_to="http://127.0.0.1:8081/oseo-client-callback",
        message_id="urn:uuid:6b1c7a9e-1f0e-4c57-9d0a-3f7c1c2a0001",
        to=None,
        action="Submit",
        relates_to=None,
    )


def test_addressing_of_a_callback() -> None:
    message = unwrap((EXAMPLES / "handwritten" / "soap12-submitresponse-callback.xml").read_bytes(), None)
    addressing = parse_addressing(message.headers)
    assert addressing.to == "http://127.0.0.1:8081/oseo-client-callback"
    assert addressing.relates_to == "urn:uuid:6b1c7a9e-1f0e-4c57-9d0a-3f7c1c2a0001"
    assert addressing.reply_to is None


def test_no_addressing() -> None:
    assert parse_addressing(()) == Addressing(None, None, None, None, None)


@pytest.mark.parametrize("address", ["http://www.w3.org/2005/08/addressing/anonymous",
                                     " http://www.w3.org/2005/08/addressing/none "])
def test_anonymous_reply_to_means_no_callback(address: str) -> None:
    xml = f"<wsa:MessageID>urn:uuid:1</wsa:MessageID><wsa:ReplyTo><wsa:Address>{address}</wsa:Address></wsa:ReplyTo>"
    assert parse_addressing(headers(xml)) == Addressing(None, "urn:uuid:1", None, None, None)


def test_reply_to_with_reference_parameters() -> None:
    xml = ("<wsa:ReplyTo><wsa:Address>\n https://client.example/cb \n</wsa:Address>"
           "<wsa:ReferenceParameters><x:k xmlns:x='urn:x'>1</x:k></wsa:ReferenceParameters></wsa:ReplyTo>")
    assert parse_addressing(headers(xml)).reply_to == "https://client.example/cb"


@pytest.mark.parametrize(
    "xml",
    [
        "<wsa:ReplyTo/>",
        "<wsa:ReplyTo><wsa:Address> </wsa:Address></wsa:ReplyTo>",
        "<wsa:ReplyTo><wsa:Address>http://a/</wsa:Address></wsa:ReplyTo>"
        "<wsa:ReplyTo><wsa:Address>http://b/</wsa:Address></wsa:ReplyTo>",
        "<wsa:MessageID>urn:1</wsa:MessageID><wsa:MessageID>urn:2</wsa:MessageID>",
    ],
)
def test_bad_addressing(xml: str) -> None:
    error = error_of(parse_addressing, headers(xml))
    assert error.code is ExceptionCode.InvalidNotificationValue
    assert error.locator == "ws-address"
