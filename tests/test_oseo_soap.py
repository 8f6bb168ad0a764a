"""oseod.oseo.soap: taking requests out of their envelope, writing answers and
faults back in the same form; and the test suite's own validator."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from oseod.oseo.errors import ExceptionCode, OseoError
from oseod.oseo.namespaces import OSEO, OWS, SOAP11, SOAP12, WSA, WSSE, XML
from oseod.oseo.soap import Encoding, Message, content_type, fault, guess_encoding, unwrap, wrap
from tests.oseo_schema import SCHEMAS_DIR, assert_valid, requires_schemas

SAMPLE_MESSAGES = SCHEMAS_DIR / "oseo" / "1.0" / "SampleMessages"
HANDWRITTEN = SCHEMAS_DIR / "examples" / "handwritten"
SOAPUI = SCHEMAS_DIR.parent / "samples" / "pyoseo" / "derived" / "soapui-requests"

GET_STATUS = (
    b'<oseo:GetStatus xmlns:oseo="%s" service="OS" version="1.0.0">'
    b"<oseo:orderId>42</oseo:orderId><oseo:presentation>brief</oseo:presentation>"
    b"</oseo:GetStatus>" % OSEO.encode()
)
S12 = b'<s:Envelope xmlns:s="%s">' % SOAP12.encode()


def envelope(ns: str, body: bytes, header: bytes | None = None) -> bytes:
    head = b"<s:Header>%s</s:Header>" % header if header is not None else b""
    return b'<s:Envelope xmlns:s="%s">%s<s:Body>%s</s:Body></s:Envelope>' % (ns.encode(), head, body)


def c14n(element: etree._Element) -> bytes:
    # Exclusive canonical form: the same payload compares equal whether or
    # not it sits in an envelope that declares other prefixes.
    data: bytes = etree.tostring(element, method="c14n", exclusive=True)
    return data


def sender_error(call: object, *args: object) -> OseoError:
    with pytest.raises(OseoError) as info:
        call(*args)  # type: ignore[operator]
    assert info.value.sender is True
    return info.value


# --------------------------------------------------------------------- unwrap


def test_unwrap_soap12_with_headers_and_action() -> None:
    header = b'<wsa:MessageID xmlns:wsa="%s">urn:uuid:1</wsa:MessageID><x:Other xmlns:x="urn:x"/>' % WSA.encode()
    message = unwrap(
        envelope(SOAP12, GET_STATUS, header),
        'application/soap+xml; charset=utf-8; action="urn:GetStatus"',
    )
    assert message.encoding is Encoding.SOAP12
    assert message.payload.tag == f"{{{OSEO}}}GetStatus"
    assert [h.tag for h in message.headers] == [f"{{{WSA}}}MessageID", "{urn:x}Other"]
    assert message.soap_action == "urn:GetStatus"


def test_unwrap_soap11_uses_the_soapaction_header() -> None:
    message = unwrap(envelope(SOAP11, GET_STATUS), "text/xml; charset=UTF-8", '"GetStatus"')
    assert (message.encoding, message.headers, message.soap_action) == (Encoding.SOAP11, (), "GetStatus")
    assert message.payload.tag == f"{{{OSEO}}}GetStatus"


@pytest.mark.parametrize("ctype", ["application/xml", "text/xml", None, "application/x-www-form-urlencoded", ""])
def test_unwrap_bare(ctype: str | None) -> None:
    message = unwrap(GET_STATUS, ctype)
    assert (message.encoding, message.headers, message.soap_action) == (Encoding.BARE, (), None)
    assert message.payload.tag == f"{{{OSEO}}}GetStatus"
    assert message.payload.getparent() is None


def test_soap12_action_parameter_wins_over_soapaction_header() -> None:
    body = envelope(SOAP12, GET_STATUS)
    assert unwrap(body, "application/soap+xml;action=A", "B").soap_action == "A"
    assert unwrap(body, "application/soap+xml", '"B"').soap_action == "B"
    assert unwrap(body, "application/soap+xml").soap_action is None
    assert unwrap(body, "application/soap+xml", '""').soap_action is None


def test_content_type_is_read_case_insensitively_with_parameters() -> None:
    message = unwrap(envelope(SOAP12, GET_STATUS), ' Application/SOAP+XML ; Charset="UTF-8" ; Action="urn:x" ')
    assert (message.encoding, message.soap_action) == (Encoding.SOAP12, "urn:x")


@pytest.mark.parametrize(
    ("body", "ctype"),
    [
        (envelope(SOAP11, GET_STATUS), "application/soap+xml"),
        (envelope(SOAP12, GET_STATUS), "text/xml"),
        (GET_STATUS, "application/soap+xml; charset=utf-8"),
        (envelope(SOAP11, GET_STATUS), "application/xml"),
        (envelope(SOAP12, GET_STATUS), "application/xml"),
    ],
    ids=["1.1-as-1.2", "1.2-as-1.1", "bare-as-1.2", "1.1-as-xml", "1.2-as-xml"],
)
def test_content_type_and_envelope_must_agree(body: bytes, ctype: str) -> None:
    error = sender_error(unwrap, body, ctype)
    assert "content type" in error.text and "but the body is" in error.text


@pytest.mark.parametrize("ns", [SOAP12, SOAP11])
@pytest.mark.parametrize(
    ("inner", "fragment"),
    [
        (b"", "Body is empty"),
        (b"   <!-- only a comment -->  ", "Body is empty"),
        (GET_STATUS + GET_STATUS, "holds 2 elements"),
    ],
)
def test_body_must_hold_exactly_one_request(ns: str, inner: bytes, fragment: str) -> None:
    ctype = "application/soap+xml" if ns == SOAP12 else "text/xml"
    error = sender_error(unwrap, envelope(ns, inner), ctype)
    assert error.code is ExceptionCode.NoApplicableCode
    assert fragment in error.text


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'<s:Envelope xmlns:s="%s"/>' % SOAP12.encode(), "has no Body"),
        (b'<s:Envelope xmlns:s="%s"><s:Header/></s:Envelope>' % SOAP12.encode(), "has no Body"),
        (S12 + b"<s:Body/><s:Header/></s:Envelope>", 'unexpected element "Header"'),
        (S12 + b"<s:Body><a/></s:Body><s:Body><b/></s:Body></s:Envelope>", 'unexpected element "Body"'),
        (S12 + b"<s:Body><a/></s:Body><x/></s:Envelope>", 'unexpected element "x"'),
        (b'<s:Envelope xmlns:s="%s"><x/><s:Body><a/></s:Body></s:Envelope>' % SOAP12.encode(), "has no Body"),
        (b'<s:Body xmlns:s="%s"><a/></s:Body>' % SOAP12.encode(), "must start with an Envelope, not Body"),
    ],
)
def test_broken_envelopes(body: bytes, fragment: str) -> None:
    assert fragment in sender_error(unwrap, body, "application/soap+xml").text


def test_whitespace_and_comments_around_the_payload_are_fine() -> None:
    body = envelope(SOAP12, b"\n  <!-- the request -->\n  " + GET_STATUS + b"\n", b"\n  ")
    message = unwrap(body, "application/soap+xml")
    assert message.payload.tag == f"{{{OSEO}}}GetStatus" and message.headers == ()


def test_unwrap_refuses_malformed_and_hostile_bodies() -> None:
    assert "not well-formed" in sender_error(unwrap, b"<s:Envelope", "application/soap+xml").text
    hostile = b'<!DOCTYPE s [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + envelope(SOAP12, b"<a>&x;</a>")
    assert "DTDs are not allowed" in sender_error(unwrap, hostile, "application/soap+xml").text


def test_message_is_frozen() -> None:
    message = unwrap(GET_STATUS, None)
    with pytest.raises(AttributeError):
        message.soap_action = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("ctype", "expected"),
    [
        ("application/soap+xml; charset=utf-8", Encoding.SOAP12),
        ("TEXT/XML", Encoding.SOAP11),
        ("application/xml", Encoding.BARE),
        (None, Encoding.BARE),
        ("text/plain", Encoding.BARE),
    ],
)
def test_guess_encoding(ctype: str | None, expected: Encoding) -> None:
    assert guess_encoding(ctype) is expected


# ----------------------------------------------------------------------- wrap


@pytest.mark.parametrize("encoding", list(Encoding))
def test_wrap_unwrap_round_trip(encoding: Encoding) -> None:
    payload = etree.fromstring(GET_STATUS)
    payload[0].text = "ordre-\u00e9t\u00e9-\u2603"
    header = etree.fromstring(b'<wsa:RelatesTo xmlns:wsa="%s">urn:uuid:9</wsa:RelatesTo>' % WSA.encode())
    data = wrap(encoding, payload, [header])
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert "ordre-\u00e9t\u00e9-\u2603".encode() in data  # UTF-8, not character references
    message = unwrap(data, content_type(encoding))
    assert message.encoding is encoding
    assert c14n(message.payload) == c14n(payload)
    if encoding is Encoding.BARE:
        assert message.headers == ()
    else:
        assert [c14n(h) for h in message.headers] == [c14n(header)]


def test_wrap_leaves_the_payload_where_it_was() -> None:
    document = etree.fromstring(b"<holder>" + GET_STATUS + b"</holder>")
    payload = document[0]
    wrap(Encoding.SOAP12, payload)
    assert payload.getparent() is document and len(document) == 1


def test_wrap_without_headers_writes_no_header() -> None:
    root = etree.fromstring(wrap(Encoding.SOAP12, etree.fromstring(GET_STATUS)))
    assert [child.tag for child in root] == [f"{{{SOAP12}}}Body"]


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [
        (Encoding.SOAP12, "application/soap+xml; charset=utf-8"),
        (Encoding.SOAP11, "text/xml; charset=utf-8"),
        (Encoding.BARE, "application/xml; charset=utf-8"),
    ],
)
def test_content_type(encoding: Encoding, expected: str) -> None:
    assert content_type(encoding) == expected


def _sample(path: Path) -> bytes:
    if not path.is_file():
        pytest.skip(f"sample {path} not found")
    return path.read_bytes()


SAMPLES = [
    (SAMPLE_MESSAGES / "GetCapabilities.xml", "application/xml", Encoding.BARE, "GetCapabilities"),
    *[(path, "text/xml", Encoding.SOAP11, "GetCapabilities") for path in sorted(SOAPUI.glob("*GetCapabilities*"))],
    (HANDWRITTEN / "soap12-submit-async-wsa-wsse.xml", "application/soap+xml", Encoding.SOAP12, "Submit"),
]


@pytest.mark.parametrize(("path", "ctype", "encoding", "operation"), SAMPLES, ids=[s[0].name for s in SAMPLES])
def test_samples_round_trip(path: Path, ctype: str, encoding: Encoding, operation: str) -> None:
    message = unwrap(_sample(path), ctype)
    assert message.encoding is encoding
    assert message.payload.tag == f"{{{OSEO}}}{operation}"
    again = unwrap(wrap(message.encoding, message.payload, message.headers), content_type(encoding))
    assert again.encoding is encoding
    assert c14n(again.payload) == c14n(message.payload)
    assert [c14n(h) for h in again.headers] == [c14n(h) for h in message.headers]


def test_handwritten_sample_headers() -> None:
    message = unwrap(_sample(HANDWRITTEN / "soap12-submit-async-wsa-wsse.xml"), "application/soap+xml")
    assert [etree.QName(h).namespace for h in message.headers] == [WSSE, WSA, WSA, WSA]
    assert [etree.QName(h).localname for h in message.headers] == ["Security", "Action", "MessageID", "ReplyTo"]


# --------------------------------------------------------------------- faults

ERRORS = [
    OseoError(ExceptionCode.InvalidOrderIdentifier, "orderId", 'unknown order "42"'),
    OseoError(ExceptionCode.NoApplicableCode, None, "the request is not well-formed XML: oops"),
    OseoError.internal(),
]
ERROR_IDS = ["sender-with-locator", "sender-no-locator", "receiver"]


@requires_schemas
@pytest.mark.parametrize("error", ERRORS, ids=ERROR_IDS)
def test_soap12_fault(error: OseoError) -> None:
    data = fault(Encoding.SOAP12, error)
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    payload = assert_valid(data)
    assert payload.tag == f"{{{SOAP12}}}Fault"  # the Body child, not the report
    root = etree.fromstring(data)
    ns = {"s": SOAP12, "ows": OWS}
    assert root.xpath("string(s:Body/s:Fault/s:Code/s:Value)", namespaces=ns) == (
        "soap:Sender" if error.sender else "soap:Receiver"
    )
    assert root.xpath("string(s:Body/s:Fault/s:Code/s:Subcode/s:Value)", namespaces=ns) == f"ows:{error.code.value}"
    text = root.find("s:Body/s:Fault/s:Reason/s:Text", ns)
    assert text is not None and text.text == error.text and text.get(f"{{{XML}}}lang") == "en"
    exception = payload.find("s:Detail/ows:ExceptionReport/ows:Exception", ns)
    assert exception is not None and exception.get("exceptionCode") == error.code.value
    assert exception.get("locator") == error.locator


@requires_schemas
@pytest.mark.parametrize("error", ERRORS, ids=ERROR_IDS)
def test_soap11_fault(error: OseoError) -> None:
    data = fault(Encoding.SOAP11, error)
    assert_valid(data)
    root = etree.fromstring(data)
    ns = {"s": SOAP11, "ows": OWS}
    assert root.xpath("string(s:Body/s:Fault/faultcode)", namespaces=ns) == (
        "soap:Client" if error.sender else "soap:Server"
    )
    assert root.xpath("string(s:Body/s:Fault/faultstring)", namespaces=ns) == error.text
    codes = root.xpath("s:Body/s:Fault/detail/ows:ExceptionReport/ows:Exception/@exceptionCode", namespaces=ns)
    assert codes == [error.code.value]


@requires_schemas
@pytest.mark.parametrize("error", ERRORS, ids=ERROR_IDS)
def test_bare_fault_is_the_report(error: OseoError) -> None:
    data = fault(Encoding.BARE, error)
    report = assert_valid(data)
    assert report.tag == f"{{{OWS}}}ExceptionReport"
    assert report[0].get("exceptionCode") == error.code.value


@requires_schemas
@pytest.mark.parametrize("encoding", list(Encoding))
def test_fault_with_hostile_text_is_still_valid(encoding: Encoding) -> None:
    error = OseoError(ExceptionCode.InvalidParameterValue, "x\x00y", 'unknown operation "\x01\ud800</x>"')
    assert_valid(fault(encoding, error))


# ------------------------------------------------------ the validator itself


@requires_schemas
@pytest.mark.parametrize(
    "path", sorted(SAMPLE_MESSAGES.rglob("*.xml")), ids=lambda p: str(p.relative_to(SAMPLE_MESSAGES))
)
def test_validator_accepts_every_official_sample(path: Path) -> None:
    assert_valid(path.read_bytes())


@requires_schemas
@pytest.mark.parametrize(
    "name", ["getstatus-full-by-id.xml", "soap12-submit-async-wsa-wsse.xml", "soap12-submitresponse-callback.xml"]
)
def test_validator_accepts_handwritten_envelopes(name: str) -> None:
    payload = assert_valid((HANDWRITTEN / name).read_bytes())
    assert etree.QName(payload).namespace == OSEO


@requires_schemas
def test_validator_rejects_an_invalid_document() -> None:
    with pytest.raises(AssertionError, match="presentation"):
        assert_valid((HANDWRITTEN / "invalid-getstatus-missing-presentation.xml").read_bytes())


@requires_schemas
def test_validator_rejects_an_invalid_payload_inside_an_envelope() -> None:
    bad = (HANDWRITTEN / "invalid-getstatus-missing-presentation.xml").read_bytes().split(b"?>", 1)[-1]
    with pytest.raises(AssertionError, match="SOAP Body payload"):
        assert_valid(envelope(SOAP12, bad))


@requires_schemas
def test_validator_checks_known_headers_and_skips_unknown_ones() -> None:
    wsse = b'<wsse:Security xmlns:wsse="%s"><anything/></wsse:Security>' % WSSE.encode()
    assert_valid(envelope(SOAP12, GET_STATUS, wsse))
    bad_wsa = b'<wsa:ReplyTo xmlns:wsa="%s"><wsa:Nonsense/></wsa:ReplyTo>' % WSA.encode()
    with pytest.raises(AssertionError, match="header"):
        assert_valid(envelope(SOAP12, GET_STATUS, bad_wsa))


@requires_schemas
def test_validator_checks_envelope_structure() -> None:
    with pytest.raises(AssertionError, match="exactly one"):
        assert_valid(envelope(SOAP12, GET_STATUS + GET_STATUS))
    with pytest.raises(AssertionError, match="Header"):
        assert_valid(b'<s:Envelope xmlns:s="%s"><s:Body/><s:Header/></s:Envelope>' % SOAP12.encode())


@requires_schemas
def test_validator_requires_the_full_soap12_fault() -> None:
    # The project's hand-written fault sample has no Subcode; ours always do.
    with pytest.raises(AssertionError, match="Fault children|Subcode"):
        assert_valid((HANDWRITTEN / "soap12-fault-exceptionreport.xml").read_bytes())
    wrong_side = fault(Encoding.SOAP12, ERRORS[0]).replace(b"soap:Sender", b"soap:Client")
    with pytest.raises(AssertionError, match="Code/Value"):
        assert_valid(wrong_side)
    wrong_code = fault(Encoding.SOAP12, ERRORS[0]).replace(b"ows:InvalidOrderIdentifier<", b"ows:Other<")
    with pytest.raises(AssertionError, match="Subcode"):
        assert_valid(wrong_code)


@requires_schemas
def test_validator_requires_the_full_soap11_fault() -> None:
    wrong_side = fault(Encoding.SOAP11, ERRORS[0]).replace(b"soap:Client", b"soap:Sender")
    with pytest.raises(AssertionError, match="faultcode"):
        assert_valid(wrong_side)
    no_detail = fault(Encoding.SOAP11, ERRORS[0])
    no_detail = no_detail[: no_detail.index(b"<detail>")] + b"</soap:Fault></soap:Body></soap:Envelope>"
    with pytest.raises(AssertionError, match="Fault children"):
        assert_valid(no_detail)


@requires_schemas
def test_validator_validates_fault_detail() -> None:
    broken = fault(Encoding.SOAP12, ERRORS[0]).replace(b'version="2.0.0"', b'version="banana"')
    with pytest.raises(AssertionError, match="fault detail"):
        assert_valid(broken)
