"""OSEO errors: the exception codes, the one exception type, the OWS report.

Every failure a client may see is an ``OseoError``: parsers raise it, the core
raises it, and the HTTP layer turns it into a SOAP Fault (``soap.fault``) or a
bare ``ows:ExceptionReport``. Anything else escaping a handler is a bug, and the
HTTP layer answers it with ``OseoError.internal()`` - never with a traceback.
"""

from __future__ import annotations

import enum
import re

from lxml import etree

from oseod.oseo.namespaces import OWS, XML, qname


class ExceptionCode(enum.Enum):
    """The ``exceptionCode`` values of OGC 06-141r6 §7 and OWS Common 2.0."""

    MissingParameterValue = "MissingParameterValue"
    InvalidParameterValue = "InvalidParameterValue"
    NoApplicableCode = "NoApplicableCode"
    InvalidNotificationValue = "InvalidNotificationValue"
    AuthenticationFailed = "AuthenticationFailed"
    AuthorizationFailed = "AuthorizationFailed"
    InvalidOrderIdentifier = "InvalidOrderIdentifier"
    UnsupportedCollection = "UnsupportedCollection"
    ProductOrderingNotSupported = "ProductOrderingNotSupported"
    SubscriptionNotSupported = "SubscriptionNotSupported"
    FutureProductNotSupported = "FutureProductNotSupported"
    OperationNotSupported = "OperationNotSupported"
    OptionNotSupported = "OptionNotSupported"
    VersionNegotiationFailed = "VersionNegotiationFailed"
    InvalidUpdateSequence = "InvalidUpdateSequence"

    @property
    def is_sender_fault(self) -> bool:
        """Whether a request check raising this code blames the sender.

        Always true: each code, including NoApplicableCode (e.g. a body that
        is not XML), describes something wrong with the request. The one
        receiver-side fault is our own failure, and a code cannot tell that
        apart: it is an ``OseoError`` built by ``OseoError.internal()``, whose
        ``sender`` is False. The HTTP layer must look at ``OseoError.sender``.
        """
        return True

    @property
    def default_text(self) -> str:
        """The ExceptionText the standard gives, for errors raised without one."""
        return _DEFAULT_TEXTS[self]


_DEFAULT_TEXTS = {
    ExceptionCode.MissingParameterValue: "Missing value for Parameter",
    ExceptionCode.InvalidParameterValue: "Invalid value for Parameter",
    ExceptionCode.NoApplicableCode: "Code not applicable",
    ExceptionCode.InvalidNotificationValue: "Invalid value for notification",
    ExceptionCode.AuthenticationFailed: "Invalid or missing identity information",
    ExceptionCode.AuthorizationFailed: "The client is not authorized to call the operation.",
    ExceptionCode.InvalidOrderIdentifier: "Invalid value for order",
    ExceptionCode.UnsupportedCollection: "Collection not supported",
    ExceptionCode.ProductOrderingNotSupported: "Ordering not supported",
    ExceptionCode.SubscriptionNotSupported: "Subscription not supported",
    ExceptionCode.FutureProductNotSupported: "Programming not supported",
    ExceptionCode.OperationNotSupported: "Operation not supported",
    ExceptionCode.OptionNotSupported: "Option not supported",
    ExceptionCode.VersionNegotiationFailed: "Version negotiation failed",
    ExceptionCode.InvalidUpdateSequence: "Invalid update sequence",
}


class OseoError(Exception):
    """An error reported to the client as an OWS exception.

    ``text`` names the offending value (build it with ``quote``); when empty,
    the standard's generic text for the code is used. ``sender`` picks the
    fault side: True (soap:Sender / soap:Client) when the request is to blame,
    False (soap:Receiver / soap:Server) for our own failures - use
    ``internal()`` for those rather than passing ``sender=False`` by hand.
    """

    code: ExceptionCode
    locator: str | None
    text: str
    sender: bool

    def __init__(
        self,
        code: ExceptionCode,
        locator: str | None = None,
        text: str = "",
        *,
        sender: bool = True,
    ) -> None:
        self.code = code
        self.locator = locator
        self.text = text or code.default_text
        self.sender = sender
        super().__init__(self.text)

    @classmethod
    def internal(cls, text: str = "internal error") -> OseoError:
        """Our own failure: NoApplicableCode on the receiver side.

        The text goes to the client, so it must not carry details of the
        failure (paths, tracebacks); log those instead.
        """
        return cls(ExceptionCode.NoApplicableCode, None, text, sender=False)

    @classmethod
    def missing(cls, locator: str, text: str = "") -> OseoError:
        """MissingParameterValue for the parameter ``locator``."""
        return cls(ExceptionCode.MissingParameterValue, locator, text or f"missing value for {locator}")

    @classmethod
    def invalid(cls, locator: str, text: str = "") -> OseoError:
        """InvalidParameterValue for the parameter ``locator``."""
        return cls(ExceptionCode.InvalidParameterValue, locator, text or f"invalid value for {locator}")

    @property
    def is_sender_fault(self) -> bool:
        """Same as ``sender``: whether the fault blames the client."""
        return self.sender

    def __repr__(self) -> str:
        side = "sender" if self.sender else "receiver"
        return f"OseoError({self.code.value}, locator={self.locator!r}, text={self.text!r}, {side})"


# Characters XML 1.0 cannot carry at all (C0 controls but tab/LF/CR, lone
# surrogates, U+FFFE/U+FFFF). An error text often quotes what the client sent,
# and lxml refuses to serialise these, so rendering an error must not fail on them.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# A report is for humans; a client that sends a megabyte-long value does not
# need it echoed back.
_MAX_TEXT = 1000
_MAX_LOCATOR = 200


def xml_safe(text: str, limit: int | None = None) -> str:
    """``text`` with characters XML cannot carry replaced by U+FFFD, and cut
    to ``limit`` characters (ending in an ellipsis) when it is longer."""
    text = _NOT_XML.sub("\ufffd", text)
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "\u2026"
    return text


def quote(value: str, limit: int = 80) -> str:
    """A client-supplied value in double quotes, fit for an error text:
    ``OseoError.invalid("orderId", f"unknown order {quote(order_id)}")``."""
    return f'"{xml_safe(value, limit)}"'


_REPORT = qname(OWS, "ExceptionReport")
_EXCEPTION = qname(OWS, "Exception")
_EXCEPTION_TEXT = qname(OWS, "ExceptionText")
_LANG = qname(XML, "lang")


def render_exception_report(error: OseoError) -> etree._Element:
    """The OWS 2.0 ``ows:ExceptionReport`` for ``error``, schema-valid."""
    report = etree.Element(_REPORT, nsmap={"ows": OWS})
    report.set("version", "2.0.0")
    report.set(_LANG, "en")
    exception = etree.SubElement(report, _EXCEPTION)
    exception.set("exceptionCode", error.code.value)
    if error.locator:
        exception.set("locator", xml_safe(error.locator, _MAX_LOCATOR))
    etree.SubElement(exception, _EXCEPTION_TEXT).text = xml_safe(error.text, _MAX_TEXT)
    return report
