"""oseod.oseo.acks: reading a client's answer to a call-back. Every answer,
however wrong or hostile, gives an outcome; none raises."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oseod.oseo.acks import ACKNOWLEDGED, AckOutcome, parse_ack
from oseod.oseo.addressing import render_headers
from oseod.oseo.callbacks import CallbackKind
from oseod.oseo.errors import ExceptionCode, OseoError
from oseod.oseo.namespaces import OSEO
from oseod.oseo.soap import Encoding, fault, wrap
from tests.oseo_schema import SCHEMAS_DIR, assert_valid, requires_schemas

SAMPLES = SCHEMAS_DIR / "oseo" / "1.0" / "SampleMessages"
K = CallbackKind
OSEO_KINDS = [K.SUBMIT_RESPONSE, K.CANCEL_RESPONSE, K.GET_QUOTATION_RESPONSE]
ENCODINGS = [Encoding.SOAP12, Encoding.SOAP11, Encoding.BARE]


def ack(kind: CallbackKind, status: str = "success", message: str | None = None) -> bytes:
    error = f"<errorMessage>{message}</errorMessage>" if message is not None else ""
    return (f'<{kind.ack} xmlns="{OSEO}"><status>{status}</status>{error}</{kind.ack}>').encode()


def refused(outcome: AckOutcome, *phrases: str) -> AckOutcome:
    assert not outcome.acknowledged, outcome
    assert str(outcome).startswith("not acknowledged: ")
    for phrase in phrases:
        assert phrase in outcome.reason, outcome.reason
    return outcome


@requires_schemas
@pytest.mark.parametrize("kind", OSEO_KINDS)
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_official_samples(kind: CallbackKind, encoding: Encoding) -> None:
    sample = (SAMPLES / f"{kind.ack}.xml").read_bytes()
    assert_valid(sample)
    body = sample if encoding is Encoding.BARE else wrap(encoding, sample.split(b"?>", 1)[-1].strip())
    assert parse_ack(kind, body) == ACKNOWLEDGED
    assert str(ACKNOWLEDGED) == "acknowledged"


def test_partial_with_a_message() -> None:
    outcome = parse_ack(K.SUBMIT_RESPONSE, wrap(Encoding.SOAP12, ack(K.SUBMIT_RESPONSE, "partial", " queue  full ")))
    assert outcome == AckOutcome(True, "queue full", partial=True)
    assert str(outcome) == "acknowledged, partially: queue full"
    assert parse_ack(K.SUBMIT_RESPONSE, ack(K.SUBMIT_RESPONSE, "partial")) == AckOutcome(True, partial=True)


def test_success_keeps_the_clients_message() -> None:
    assert parse_ack(K.CANCEL_RESPONSE, ack(K.CANCEL_RESPONSE, message="noted")) == AckOutcome(True, "noted")


@pytest.mark.parametrize("kind", OSEO_KINDS)
def test_another_ack_is_no_ack(kind: CallbackKind) -> None:
    for other in OSEO_KINDS:
        if other is not kind:
            refused(parse_ack(kind, wrap(Encoding.SOAP11, ack(other))), f"expected oseo:{kind.ack}",
                    f"oseo:{other.ack}")


@pytest.mark.parametrize(("body", "phrases"), [
    (b"", ("empty",)),
    (b"  \r\n ", ("empty",)),
    (b"OK", ("unreadable",)),
    (b"<html><body><h1>500 Internal Server Error</h1></body></html>", ("expected oseo:SubmitResponseAck", "html")),
    (b"<SubmitResponseAck><status>success</status></SubmitResponseAck>", ("expected oseo:SubmitResponseAck",)),
    (b"\xff\xfe\x00garbage", ("unreadable",)),
    (b"<a>unclosed", ("unreadable", "well-formed")),
    (f'<SubmitResponseAck xmlns="{OSEO}"/>'.encode(), ("has no status",)),
    (f'<SubmitResponseAck xmlns="{OSEO}"><errorMessage>x</errorMessage></SubmitResponseAck>'.encode(),
     ("has no status",)),
    (f'<SubmitResponseAck xmlns="{OSEO}"><status>failure</status></SubmitResponseAck>'.encode(),
     ('"failure"', "neither success nor partial")),
    (f'<SubmitResponseAck xmlns="{OSEO}"><status/></SubmitResponseAck>'.encode(), ('""',)),
    (b'<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"/>', ("no Body",)),
    (b'<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Header/></soap:Envelope>',
     ("no Body",)),
    (b'<soap:Body xmlns:soap="http://www.w3.org/2003/05/soap-envelope"/>', ("not an Envelope",)),
    (b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body/></soap:Envelope>',
     ("Body of the answer is empty",)),
    (wrap(Encoding.SOAP12, ack(K.SUBMIT_RESPONSE) + ack(K.SUBMIT_RESPONSE)), ("holds 2 elements",)),
    # A SOAP 1.1 body in a SOAP 1.2 envelope is no acknowledgement either.
    (b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope">'
     b'<b:Body xmlns:b="http://schemas.xmlsoap.org/soap/envelope/"/></s:Envelope>', ("no Body",)),
])
def test_wrong_answers(body: bytes, phrases: tuple[str, ...]) -> None:
    refused(parse_ack(K.SUBMIT_RESPONSE, body), *phrases)


def test_hostile_documents() -> None:
    xxe = (b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
           b'<SubmitResponseAck xmlns="http://www.opengis.net/oseo/1.0"><status>&x;</status></SubmitResponseAck>')
    refused(parse_ack(K.SUBMIT_RESPONSE, xxe), "DOCTYPE")
    laughs = (b'<!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
              b"<l>&b;&b;&b;</l>")
    refused(parse_ack(K.NOTIFY, laughs), "DOCTYPE")
    many = "".join(f' xmlns:p{i}="urn:{i}"' for i in range(200))
    refused(parse_ack(K.SUBMIT_RESPONSE, f"<a{many}/>".encode()), "namespaces")
    deep = b"<a>" * 100_000 + b"</a>" * 100_000
    refused(parse_ack(K.SUBMIT_RESPONSE, deep), "unreadable")


def test_a_long_message_is_cut() -> None:
    outcome = parse_ack(K.SUBMIT_RESPONSE, ack(K.SUBMIT_RESPONSE, "partial", "x" * 100_000))
    assert outcome.acknowledged and len(outcome.reason) == 300
    outcome = parse_ack(K.SUBMIT_RESPONSE, ack(K.SUBMIT_RESPONSE, "no\x01" + "y" * 10_000))
    assert not outcome.acknowledged and len(outcome.reason) <= 300


@pytest.mark.parametrize(("encoding", "code"), [(Encoding.SOAP12, "Sender"), (Encoding.SOAP11, "Client")])
def test_soap_faults(encoding: Encoding, code: str) -> None:
    body = fault(encoding, OseoError(ExceptionCode.InvalidParameterValue, "orderId", 'unknown order "o-1"'))
    outcome = refused(parse_ack(K.SUBMIT_RESPONSE, body), "SOAP Fault", code, 'unknown order "o-1"',
                      "InvalidParameterValue")
    assert outcome.fault == code
    # Faults end a Notify too.
    assert parse_ack(K.NOTIFY, body).fault == code


def test_receiver_fault_and_bare_faults() -> None:
    outcome = parse_ack(K.CANCEL_RESPONSE, fault(Encoding.SOAP12, OseoError.internal("disk full")))
    assert outcome.fault == "Receiver" and "disk full" in outcome.reason
    report = fault(Encoding.BARE, OseoError.missing("status"))
    refused(parse_ack(K.CANCEL_RESPONSE, report), "exception report", "MissingParameterValue")
    refused(parse_ack(K.NOTIFY, report), "exception report")
    terse = (b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault/>'
             b"</s:Body></s:Envelope>")
    assert refused(parse_ack(K.SUBMIT_RESPONSE, terse), "unknown", "no reason given").fault == "unknown"


def test_relates_to() -> None:
    def answer(relates_to: str) -> bytes:
        headers = render_headers(action="SubmitResponseAck", relates_to=relates_to)
        return wrap(Encoding.SOAP12, ack(K.SUBMIT_RESPONSE), headers)

    assert parse_ack(K.SUBMIT_RESPONSE, answer("urn:uuid:1"), "urn:uuid:1") == ACKNOWLEDGED
    assert parse_ack(K.SUBMIT_RESPONSE, answer("urn:uuid:2")) == ACKNOWLEDGED
    refused(parse_ack(K.SUBMIT_RESPONSE, answer("urn:uuid:2"), "urn:uuid:1"), '"urn:uuid:2"', '"urn:uuid:1"')


def test_notify_is_one_way() -> None:
    empty_body = b'<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body/></soap:Envelope>'
    for body in (b"", empty_body, b"<anything/>", wrap(Encoding.SOAP11, b"<x:NotifyResponse xmlns:x='urn:x'/>")):
        assert parse_ack(K.NOTIFY, body) == ACKNOWLEDGED, body
    refused(parse_ack(K.NOTIFY, b"<a>"), "unreadable")


_SEEDS = [ack(kind) for kind in OSEO_KINDS] + [
    wrap(Encoding.SOAP12, ack(K.SUBMIT_RESPONSE, "partial", "m")),
    fault(Encoding.SOAP11, OseoError.missing("x")),
]


@settings(max_examples=300, derandomize=True, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(seed=st.sampled_from(_SEEDS), cut=st.integers(0, 400), junk=st.binary(max_size=40),
       kind=st.sampled_from(list(CallbackKind)))
def test_never_raises(seed: bytes, cut: int, junk: bytes, kind: CallbackKind) -> None:
    outcome = parse_ack(kind, seed[:cut] + junk + seed[cut:])
    assert isinstance(outcome, AckOutcome) and len(outcome.reason) <= 300
