"""The client's answer to a call-back: was it acknowledged, and if not, why.

An OSEO call-back is acknowledged by the matching ``…Ack`` element
(StatusNotificationAckType, GetQuotationResponseAckType: a status, success or
partial, and an optional errorMessage) in a SOAP 1.2 or 1.1 envelope, or bare.
``wsnt:Notify`` is one-way: any answer but a fault acknowledges it, an empty
one included.

The answer comes from a server the client runs, so it is read like any
untrusted input (the hardened parser, lengths capped in what is reported),
and every kind of wrong answer - not XML, a DTD, a SOAP Fault, another
element, a status that is neither success nor partial, an answer to another
message - is an outcome, never an exception.
"""

from __future__ import annotations

from typing import Final

import attrs
from lxml import etree

from oseod.oseo.callbacks import CallbackKind
from oseod.oseo.errors import OseoError, quote, xml_safe
from oseod.oseo.namespaces import OSEO, OWS, SOAP11, SOAP12, WSA, qname
from oseod.oseo.xmlparse import parse_xml

# How much of what the client said ends up in a reason (and so in logs).
_REASON_LIMIT: Final = 300


@attrs.frozen
class AckOutcome:
    """``acknowledged``: the client took the call-back (``partial``: with
    non-blocking problems). ``reason``: the client's errorMessage, or why the
    answer acknowledges nothing. ``fault``: the code of the SOAP Fault the
    client answered with (Sender, Receiver, Client, Server...), if it did."""

    acknowledged: bool
    reason: str = ""
    partial: bool = False
    fault: str | None = None

    def __str__(self) -> str:
        if not self.acknowledged:
            return f"not acknowledged: {self.reason}"
        if self.partial:
            return f"acknowledged, partially: {self.reason}" if self.reason else "acknowledged, partially"
        return "acknowledged"


ACKNOWLEDGED: Final = AckOutcome(True)


def _refused(reason: str, fault: str | None = None) -> AckOutcome:
    return AckOutcome(False, xml_safe(reason, _REASON_LIMIT), fault=fault)


def _elements(parent: etree._Element) -> list[etree._Element]:
    return [child for child in parent if isinstance(child.tag, str)]


def _name(element: etree._Element) -> str:
    name = etree.QName(element)
    if name.namespace == OSEO:
        return f"oseo:{name.localname}"
    return f"{{{name.namespace}}}{name.localname}" if name.namespace else name.localname


def _text(element: etree._Element | None) -> str:
    if element is None:
        return ""
    return " ".join("".join(element.itertext()).split())


def _local_code(element: etree._Element | None) -> str:
    """The local part of a QName-valued fault code ("soap:Sender": Sender)."""
    return _text(element).rpartition(":")[2]


def _first(parent: etree._Element | None, tag: str) -> etree._Element | None:
    if parent is None:
        return None
    return next((child for child in parent if child.tag == tag), None)


def _exception(detail: etree._Element | None) -> str:
    """The first ows:Exception of an ExceptionReport in a fault detail, as
    "code: text"; empty when there is none."""
    if detail is None:
        return ""
    for exception in detail.iter(qname(OWS, "Exception")):
        code = exception.get("exceptionCode", "")
        text = _text(_first(exception, qname(OWS, "ExceptionText")))
        return f"{code}: {text}" if text else code
    return ""


def _fault(fault: etree._Element, namespace: str) -> AckOutcome:
    if namespace == SOAP12:
        code_element = _first(fault, qname(SOAP12, "Code"))
        value = _local_code(_first(code_element, qname(SOAP12, "Value")))
        subcode = _local_code(_first(_first(code_element, qname(SOAP12, "Subcode")), qname(SOAP12, "Value")))
        reason = _text(_first(_first(fault, qname(SOAP12, "Reason")), qname(SOAP12, "Text")))
        detail = _exception(_first(fault, qname(SOAP12, "Detail")))
    else:
        # SOAP 1.1 fault children are unqualified.
        value = _local_code(_first(fault, "faultcode"))
        subcode = ""
        reason = _text(_first(fault, "faultstring"))
        detail = _exception(_first(fault, "detail"))
    code = value or "unknown"
    described = f"{code} ({subcode})" if subcode else code
    said = "; ".join(part for part in (reason, detail) if part) or "no reason given"
    return _refused(f"the client answered with a SOAP Fault {described}: {said}", fault=code)


def _open(envelope: etree._Element, namespace: str) -> tuple[list[etree._Element], etree._Element | None] | str:
    """The header blocks and the body element (None: empty Body) of a SOAP
    envelope, or what is wrong with it."""
    if envelope.tag != qname(namespace, "Envelope"):
        return f"the answer is a SOAP {etree.QName(envelope).localname}, not an Envelope"
    children = _elements(envelope)
    headers: list[etree._Element] = []
    if children and children[0].tag == qname(namespace, "Header"):
        headers = _elements(children[0])
        children = children[1:]
    if not children or children[0].tag != qname(namespace, "Body"):
        return "the SOAP Envelope of the answer has no Body"
    payloads = _elements(children[0])
    if len(payloads) > 1:
        return f"the SOAP Body of the answer holds {len(payloads)} elements, not one"
    return headers, payloads[0] if payloads else None


def _relates_to_other(headers: list[etree._Element], message_id: str) -> str | None:
    for header in headers:
        if header.tag == qname(WSA, "RelatesTo"):
            related = _text(header)
            if related and related != message_id:
                return f"the answer relates to the message {quote(related)}, not to {quote(message_id)}"
    return None


def _ack(payload: etree._Element, expected: str) -> AckOutcome:
    if payload.tag != qname(OSEO, expected):
        return _refused(f"expected oseo:{expected}, not {quote(_name(payload))}")
    children = _elements(payload)
    if not children or children[0].tag != qname(OSEO, "status"):
        return _refused(f"the oseo:{expected} has no status")
    status = _text(children[0])
    message_element = _first(payload, qname(OSEO, "errorMessage"))
    message = xml_safe(_text(message_element), _REASON_LIMIT)
    if status == "success":
        return AckOutcome(True, message)
    if status == "partial":
        return AckOutcome(True, message, partial=True)
    return _refused(f"the oseo:{expected} has the status {quote(status)}, neither success nor partial")


def parse_ack(kind: CallbackKind, body: bytes, message_id: str | None = None) -> AckOutcome:
    """What the answer ``body`` to the call-back ``kind`` says. With
    ``message_id`` (the call-back's wsa:MessageID), an answer whose
    wsa:RelatesTo names another message acknowledges nothing."""
    if not body.strip():
        if kind.ack is None:
            return ACKNOWLEDGED
        return _refused(f"the answer is empty, not an oseo:{kind.ack}")
    try:
        root = parse_xml(body)
    except OseoError as error:
        return _refused(f"the answer is unreadable: {error.text}")
    namespace = etree.QName(root).namespace
    headers: list[etree._Element] = []
    payload: etree._Element | None = root
    if namespace in (SOAP12, SOAP11):
        assert namespace is not None
        opened = _open(root, namespace)
        if isinstance(opened, str):
            return _refused(opened)
        headers, payload = opened
        if payload is not None and payload.tag == qname(namespace, "Fault"):
            return _fault(payload, namespace)
    if message_id is not None and (other := _relates_to_other(headers, message_id)):
        return _refused(other)
    if payload is not None and payload.tag == qname(OWS, "ExceptionReport"):
        return _refused(f"the client answered with an exception report: {_exception(payload) or 'empty'}")
    if kind.ack is None:
        return ACKNOWLEDGED
    if payload is None:
        return _refused(f"the SOAP Body of the answer is empty, not an oseo:{kind.ack}")
    return _ack(payload, kind.ack)
