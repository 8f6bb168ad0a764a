"""SOAP header blocks: the WS-Security UsernameToken that says who calls, and
the WS-Addressing headers that say where call-backs go.

UsernameToken follows the OASIS Web Services Security UsernameToken Profile
1.0: a Username, a Password whose Type is #PasswordText (the default) or
#PasswordDigest, and for digests the Nonce and wsu:Created that went into it.
Checking the password, the freshness of Created and the reuse of a Nonce is
the business of the authentication layer; this module only reads the token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from typing import Final

import attrs
from lxml import etree

from oseod.model.orders import Fragment
from oseod.oseo.common import verbatim
from oseod.oseo.errors import ExceptionCode, OseoError, quote
from oseod.oseo.namespaces import WSA, WSSE, WSU, qname

_SECURITY: Final = qname(WSSE, "Security")
_USERNAME_TOKEN: Final = qname(WSSE, "UsernameToken")
_USERNAME: Final = qname(WSSE, "Username")
_PASSWORD: Final = qname(WSSE, "Password")
_NONCE: Final = qname(WSSE, "Nonce")
_CREATED: Final = qname(WSU, "Created")
# Some WSS 1.0 toolkits put Created in the secext namespace.
_CREATED_WSSE: Final = qname(WSSE, "Created")

_PROFILE: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
PASSWORD_TEXT: Final = _PROFILE + "#PasswordText"
PASSWORD_DIGEST: Final = _PROFILE + "#PasswordDigest"
BASE64_BINARY: Final = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
)

ANONYMOUS: Final = "http://www.w3.org/2005/08/addressing/anonymous"
NONE_ADDRESS: Final = "http://www.w3.org/2005/08/addressing/none"


@attrs.frozen
class UsernameToken:
    """A ``wsse:UsernameToken``. ``password`` is the PasswordText, or the
    base64 PasswordDigest when ``digest``; ``nonce`` is decoded."""

    username: str
    password: str = attrs.field(repr=False)
    digest: bool
    nonce: bytes | None
    created: str | None


def _failed(text: str) -> OseoError:
    return OseoError(ExceptionCode.AuthenticationFailed, "identity_token", text)


def _password_kind(value: str | None) -> bool:
    """Whether a Password Type names a digest. The profile's URIs are the
    norm; a bare "#PasswordDigest" or a "wsse:PasswordText" QName (from
    drafts of the profile) ends the same way and is read the same."""
    if value is None or not value.strip():
        return False
    kind = value.strip().rpartition("#")[2].rpartition(":")[2]
    if kind == "PasswordText":
        return False
    if kind == "PasswordDigest":
        return True
    raise _failed(f"unsupported password Type {quote(value)}: use #PasswordText or #PasswordDigest")


def _base64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise _failed(f"the UsernameToken {what} is not valid base64") from None


def _read_token(token: etree._Element) -> UsernameToken:
    username = password = nonce_el = created_el = None
    for child in token:
        if child.tag == _USERNAME and username is None:
            username = child
        elif child.tag == _PASSWORD and password is None:
            password = child
        elif child.tag == _NONCE and nonce_el is None:
            nonce_el = child
        elif child.tag in (_CREATED, _CREATED_WSSE) and created_el is None:
            created_el = child
        # Anything else is an extension the profile allows; it is ignored.
    name = (username.text or "").strip() if username is not None else ""
    if not name:
        raise _failed("the UsernameToken has no Username")
    if password is None:
        raise _failed("the UsernameToken has no Password")
    # The standard attribute is Type; pyoseo-era clients wrote a lower-case
    # "type" with a site-specific value, which is not the profile's attribute
    # and leaves the password plain text.
    digest = _password_kind(password.get("Type"))
    secret = password.text or ""
    if digest:
        secret = "".join(secret.split())
        _base64(secret, "PasswordDigest")
    nonce = None
    if nonce_el is not None:
        encoding = (nonce_el.get("EncodingType") or BASE64_BINARY).strip()
        if encoding.rpartition("#")[2] != "Base64Binary":
            raise _failed(f"unsupported Nonce EncodingType {quote(encoding)}: use #Base64Binary")
        nonce = _base64(nonce_el.text or "", "Nonce")
    created = ((created_el.text or "").strip() or None) if created_el is not None else None
    return UsernameToken(name, secret, digest, nonce, created)


def parse_username_token(headers: Sequence[etree._Element]) -> UsernameToken | None:
    """The first ``wsse:Security/wsse:UsernameToken`` of the SOAP headers;
    None when no Security header carries one (another kind of token, or no
    identity at all). A malformed token is AuthenticationFailed."""
    for header in headers:
        if header.tag != _SECURITY:
            continue
        for child in header:
            if child.tag == _USERNAME_TOKEN:
                return _read_token(child)
    return None


def password_digest(nonce: bytes, created: str, password: str) -> str:
    """Base64(SHA-1(nonce + created + password)), UsernameToken Profile 1.0
    §3.1: what a client sends as a #PasswordDigest."""
    sha1 = hashlib.sha1(nonce + created.encode("utf-8") + password.encode("utf-8"))
    return base64.b64encode(sha1.digest()).decode("ascii")


# ------------------------------------------------------------- WS-Addressing


@attrs.frozen
class Addressing:
    """WS-Addressing 1.0 headers of a request. ``reply_to`` is None when the
    client gave no ReplyTo, or the anonymous or none address (no call-back)."""

    reply_to: str | None = None
    message_id: str | None = None
    to: str | None = None
    action: str | None = None
    relates_to: str | None = None


_REPLY_TO: Final = qname(WSA, "ReplyTo")
_ADDRESS: Final = qname(WSA, "Address")
_SIMPLE: Final = {qname(WSA, "MessageID"): "message_id", qname(WSA, "To"): "to", qname(WSA, "Action"): "action",
                  qname(WSA, "RelatesTo"): "relates_to"}


def _address_error(text: str) -> OseoError:
    return OseoError(ExceptionCode.InvalidNotificationValue, "ws-address", text)


def parse_addressing(headers: Sequence[etree._Element]) -> Addressing:
    """The WS-Addressing 1.0 headers among the SOAP headers. Each may be given
    once (WS-Addressing 1.0 SOAP Binding §6.4.1); a repeated one, or a
    ReplyTo without an Address, is InvalidNotificationValue (``ws-address``)."""
    values: dict[str, str | None] = {}
    reply_to: str | None = None
    seen_reply_to = False
    for header in headers:
        tag = header.tag
        if tag == _REPLY_TO:
            if seen_reply_to:
                raise _address_error("wsa:ReplyTo is given twice")
            seen_reply_to = True
            address = header.find(_ADDRESS)
            if address is None or not (address.text or "").strip():
                raise _address_error("wsa:ReplyTo has no wsa:Address")
            reply_to = (address.text or "").strip()
        elif isinstance(tag, str) and tag in _SIMPLE:
            field = _SIMPLE[tag]
            if field in values:
                raise _address_error(f"wsa:{etree.QName(header).localname} is given twice")
            values[field] = (header.text or "").strip() or None
    if reply_to in (ANONYMOUS, NONE_ADDRESS):
        reply_to = None
    return Addressing(reply_to=reply_to, **values)


_REFERENCE_PARAMETERS: Final = qname(WSA, "ReferenceParameters")


def parse_reply_to_parameters(headers: Sequence[etree._Element]) -> tuple[Fragment, ...]:
    """The reference parameters of the wsa:ReplyTo, kept verbatim: a message
    sent to that address must carry each back as a header block
    (WS-Addressing 1.0 SOAP Binding §2.3); none without a ReplyTo."""
    for header in headers:
        if header.tag == _REPLY_TO:
            parameters = header.find(_REFERENCE_PARAMETERS)
            if parameters is None:
                return ()
            return tuple(verbatim(child) for child in parameters if isinstance(child.tag, str))
    return ()
