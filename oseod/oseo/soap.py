"""The SOAP 1.2 / SOAP 1.1 / bare-XML envelope around OSEO payloads.

OGC 06-141r6 asks for SOAP 1.2, but the official WSDL declares a SOAP 1.1
binding (so WSDL-driven clients such as zeep speak 1.1), and simple clients
post the bare payload. oseod accepts all three and answers in the form it
received: ``unwrap`` tells which one a request used, ``wrap`` and ``fault``
write the answer in the same one.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Collection, Mapping, Sequence
from types import MappingProxyType
from typing import BinaryIO

import attrs
from lxml import etree

from oseod.oseo.errors import ExceptionCode, OseoError, quote, render_exception_report, xml_safe
from oseod.oseo.namespaces import OSEO, OWS, SOAP11, SOAP12, WSNT, XML, qname
from oseod.oseo.xmlparse import DEFAULT_LIMITS, XmlLimits, parse_xml


class Encoding(enum.Enum):
    SOAP12 = "soap12"
    SOAP11 = "soap11"
    BARE = "bare"


@attrs.frozen
class Message:
    """A request as received: how it was wrapped, and what it carries.

    ``payload`` stays inside the parsed tree, so the in-scope namespace
    declarations of the envelope still apply to it (QName-valued content).
    """

    encoding: Encoding
    headers: tuple[etree._Element, ...]
    payload: etree._Element
    soap_action: str | None


_ENVELOPE_NS = {Encoding.SOAP12: SOAP12, Encoding.SOAP11: SOAP11}
_ENCODING_OF_NAMESPACE = {namespace: encoding for encoding, namespace in _ENVELOPE_NS.items()}
_ENVELOPE_TAGS = {encoding: (qname(namespace, "Envelope"), qname(namespace, "Header"), qname(namespace, "Body"))
                  for encoding, namespace in _ENVELOPE_NS.items()}
_VERSION_NAME = {Encoding.SOAP12: "SOAP 1.2", Encoding.SOAP11: "SOAP 1.1", Encoding.BARE: "bare XML"}

# Which encodings each media type may carry. SOAP 1.2 must travel as
# application/soap+xml and SOAP 1.1 as text/xml (their HTTP bindings say so);
# text/xml is also the historical type for plain XML. Any other or missing
# media type is accepted with whatever the body holds: the body is XML either
# way, and refusing e.g. curl's default form type helps nobody.
_ALLOWED = {
    "application/soap+xml": frozenset({Encoding.SOAP12}),
    "text/xml": frozenset({Encoding.SOAP11, Encoding.BARE}),
    "application/xml": frozenset({Encoding.BARE}),
}


def _sender_error(text: str) -> OseoError:
    return OseoError(ExceptionCode.NoApplicableCode, None, text)


_NO_PARAMETERS: Mapping[str, str] = MappingProxyType({})


# Every request's header is read twice (the encoding of a fault is guessed
# before the body is parsed), and a client sends the same value every time:
# kept, a few of them (a client may vary it at will: bounded).
@functools.lru_cache(maxsize=64)
def _parse_content_type(value: str | None) -> tuple[str | None, Mapping[str, str]]:
    """Media type (lower case) and parameters of a Content-Type header value."""
    if not value:
        return None, _NO_PARAMETERS
    media_type, *parts = value.split(";")
    params = {}
    for part in parts:
        name, sep, raw = part.partition("=")
        if sep:
            params[name.strip().lower()] = raw.strip().strip('"')
    return media_type.strip().lower() or None, MappingProxyType(params)


def _action(value: str | None) -> str | None:
    # SOAPAction is a quoted URI in SOAP 1.1; "" means "the request URI",
    # which tells us nothing more than no header at all.
    if value is None:
        return None
    value = value.strip().strip('"').strip()
    return value or None


def _elements(parent: etree._Element) -> list[etree._Element]:
    # Comments and PIs are removed by parse_xml, but an Entity or other node
    # type must not be mistaken for an element either.
    return [child for child in parent if isinstance(child.tag, str)]


def _local(element: etree._Element) -> str:
    return str(etree.QName(element).localname)


def _open_envelope(envelope: etree._Element, encoding: Encoding) -> tuple[tuple[etree._Element, ...], etree._Element]:
    """Header children and the one Body child of a SOAP envelope."""
    envelope_tag, header_tag, body_tag = _ENVELOPE_TAGS[encoding]
    version = _VERSION_NAME[encoding]
    if envelope.tag != envelope_tag:
        raise _sender_error(f"a {version} message must start with an Envelope, not {_local(envelope)}")
    children = _elements(envelope)
    header: etree._Element | None = None
    if children and children[0].tag == header_tag:
        header, children = children[0], children[1:]
    if not children or children[0].tag != body_tag:
        raise _sender_error(f"the {version} Envelope has no Body (expected Header? then Body)")
    if len(children) > 1:
        raise _sender_error(f"unexpected element {quote(_local(children[1]))} after the {version} Body")
    payloads = _elements(children[0])
    if not payloads:
        raise _sender_error(f"the {version} Body is empty: it must hold one OSEO request")
    if len(payloads) > 1:
        raise _sender_error(f"the {version} Body holds {len(payloads)} elements: it must hold exactly one OSEO request")
    headers = tuple(_elements(header)) if header is not None else ()
    return headers, payloads[0]


def guess_encoding(content_type: str | None) -> Encoding:
    """The encoding to answer in when a request could not be unwrapped (not
    XML, or a broken envelope): the one its content type announces."""
    media_type, _ = _parse_content_type(content_type)
    if media_type == "application/soap+xml":
        return Encoding.SOAP12
    if media_type == "text/xml":
        return Encoding.SOAP11
    return Encoding.BARE


def unwrap(body: bytes | BinaryIO, content_type: str | None, soap_action: str | None = None,
           limits: XmlLimits = DEFAULT_LIMITS) -> Message:
    """Parse a request body (bytes, or a binary file read from its start,
    within ``limits``) and take the OSEO payload out of its envelope.

    The encoding comes from the root element; ``content_type`` (the HTTP
    header value, parameters included) must agree with it. ``soap_action`` is
    the SOAPAction header; for SOAP 1.2 the ``action`` parameter of the
    content type takes its place.
    """
    root = parse_xml(body, limits)
    tag = str(root.tag)  # (a parsed document's root is an element: its tag is text)
    # The root's namespace, read off its Clark name ("{ns}local").
    encoding = _ENCODING_OF_NAMESPACE.get(tag[1:tag.find("}")] if tag[:1] == "{" else "", Encoding.BARE)

    media_type, params = _parse_content_type(content_type)
    allowed = _ALLOWED.get(media_type or "")
    if allowed is not None and encoding not in allowed:
        expected = " or ".join(sorted(_VERSION_NAME[e] for e in allowed))
        raise _sender_error(
            f"content type {quote(media_type or '')} carries {expected}, but the body is {_VERSION_NAME[encoding]}"
        )

    if encoding is Encoding.BARE:
        return Message(encoding, (), root, _action(soap_action))
    headers, payload = _open_envelope(root, encoding)
    action = soap_action
    if encoding is Encoding.SOAP12 and "action" in params:
        action = params["action"]
    return Message(encoding, headers, payload, _action(action))


_XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def serialise(element: etree._Element) -> bytes:
    # tostring() of an element declares every namespace it uses, so the
    # fragment is self-contained wherever it lands.
    data: bytes = etree.tostring(element, encoding="UTF-8", xml_declaration=False, with_tail=False)
    return data


def wrap(encoding: Encoding, payload: etree._Element | bytes, headers: Sequence[etree._Element] = ()) -> bytes:
    """Serialise ``payload`` (UTF-8, with an XML declaration) in the envelope
    of ``encoding``; ``headers`` go into soap:Header (ignored when BARE). A
    payload already serialised (by :func:`serialise`) goes in as it is.

    The envelope is written around the serialised payload instead of moving
    the payload into an envelope tree, which would take it out of the tree it
    belongs to (a cached or shared document) or cost a deep copy.
    """
    body = payload if isinstance(payload, bytes) else serialise(payload)
    if encoding is Encoding.BARE:
        return _XML_DECLARATION + body
    ns = _ENVELOPE_NS[encoding].encode()
    parts = [_XML_DECLARATION, b'<soap:Envelope xmlns:soap="', ns, b'">']
    if headers:
        parts.append(b"<soap:Header>")
        parts.extend(serialise(header) for header in headers)
        parts.append(b"</soap:Header>")
    parts += [b"<soap:Body>", body, b"</soap:Body></soap:Envelope>"]
    return b"".join(parts)


def _fault_envelope(encoding: Encoding) -> tuple[etree._Element, etree._Element]:
    """A new Envelope/Body/Fault tree; the Fault is returned for filling in.

    Faults are built as one tree (they are small and entirely ours) so that
    the soap and ows prefixes are declared once, on the Envelope: the
    fault code values are QNames that rely on them.
    """
    ns = _ENVELOPE_NS[encoding]
    envelope = etree.Element(qname(ns, "Envelope"), nsmap={"soap": ns, "ows": OWS})
    body = etree.SubElement(envelope, qname(ns, "Body"))
    return envelope, etree.SubElement(body, qname(ns, "Fault"))


def _fault12(error: OseoError) -> etree._Element:
    envelope, fault = _fault_envelope(Encoding.SOAP12)

    def sub(parent: etree._Element, local: str) -> etree._Element:
        return etree.SubElement(parent, qname(SOAP12, local))

    code = sub(fault, "Code")
    sub(code, "Value").text = "soap:Sender" if error.sender else "soap:Receiver"
    sub(sub(code, "Subcode"), "Value").text = f"ows:{error.code.value}"
    text = sub(sub(fault, "Reason"), "Text")
    text.set(qname(XML, "lang"), "en")
    text.text = xml_safe(error.text, 1000)
    sub(fault, "Detail").append(render_exception_report(error))
    return envelope


def _fault11(error: OseoError) -> etree._Element:
    envelope, fault = _fault_envelope(Encoding.SOAP11)
    # SOAP 1.1 fault children are unqualified.
    etree.SubElement(fault, "faultcode").text = "soap:Client" if error.sender else "soap:Server"
    etree.SubElement(fault, "faultstring").text = xml_safe(error.text, 1000)
    etree.SubElement(fault, "detail").append(render_exception_report(error))
    return envelope


def fault(encoding: Encoding, error: OseoError) -> bytes:
    """The complete response body reporting ``error`` in ``encoding``: a SOAP
    1.2 or 1.1 Fault whose detail holds the ows:ExceptionReport, or the bare
    report."""
    if encoding is Encoding.SOAP12:
        document = _fault12(error)
    elif encoding is Encoding.SOAP11:
        document = _fault11(error)
    else:
        document = render_exception_report(error)
    # The report was made with its own ows declaration; inside an envelope
    # that already declares ows, it is redundant. The two prefixes the fault
    # code QNames use in their text are kept whatever happens.
    etree.cleanup_namespaces(document, keep_ns_prefixes=["soap", "ows"])
    return _XML_DECLARATION + serialise(document)


_CONTENT_TYPES = {
    Encoding.SOAP12: "application/soap+xml; charset=utf-8",
    Encoding.SOAP11: "text/xml; charset=utf-8",
    Encoding.BARE: "application/xml; charset=utf-8",
}


def content_type(encoding: Encoding) -> str:
    """The Content-Type of a response in ``encoding``."""
    return _CONTENT_TYPES[encoding]


# Every request operation of OSEO 1.0; those a server has no handler for are
# answered with OperationNotSupported, so a client learns what it can rely on.
OSEO_OPERATIONS = ("GetCapabilities", "GetOptions", "GetQuotation", "Submit", "GetStatus",
                   "DescribeResultAccess", "Cancel")
# WS-Notification requests, served on the same endpoint.
WSN_OPERATIONS = ("Subscribe", "Unsubscribe")


def body_operation(payload: etree._Element, served: Collection[str]) -> str:
    """The operation a SOAP body (or bare XML request) holds, of those
    ``served``; OperationNotSupported for anything else."""
    name = etree.QName(payload)
    if name.namespace == WSNT and name.localname in WSN_OPERATIONS and name.localname in served:
        return name.localname
    if name.namespace != OSEO or name.localname not in OSEO_OPERATIONS:
        raise OseoError(ExceptionCode.OperationNotSupported, name.localname,
                        f'"{name.text}" is not an OSEO 1.0 request')
    if name.localname not in served:
        raise OseoError(ExceptionCode.OperationNotSupported, name.localname,
                        f"operation {name.localname} is not supported by this server")
    return name.localname
