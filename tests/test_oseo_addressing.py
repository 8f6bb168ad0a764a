"""oseod.oseo.addressing: the WS-Addressing headers oseod writes, read back
by the parser of the headers clients send."""

from __future__ import annotations

from lxml import etree

from oseod.model.orders import Fragment
from oseod.oseo.addressing import IS_REFERENCE_PARAMETER, reference_parameter, render_headers
from oseod.oseo.namespaces import WSA
from oseod.oseo.security import Addressing, parse_addressing, parse_reply_to_parameters
from oseod.oseo.soap import Encoding, unwrap, wrap
from oseod.oseo.submit import render_submit_ack
from tests.oseo_schema import assert_valid, requires_schemas

ENVELOPE = b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://www.w3.org/2005/08/addressing">'
PARAMETER = Fragment("key", '<k:key xmlns:k="urn:client">abc<k:part>1</k:part></k:key>')


def names(headers: list[etree._Element]) -> list[str]:
    return [str(etree.QName(header).localname) for header in headers]


def test_all_headers_in_order() -> None:
    headers = render_headers(action="urn:a", to="http://client.example/cb", message_id="urn:uuid:1",
                             relates_to="urn:uuid:0", reference_parameters=(PARAMETER,))
    assert names(headers) == ["To", "Action", "MessageID", "RelatesTo", "key"]
    assert [etree.QName(header).namespace for header in headers[:4]] == [WSA] * 4
    assert [header.text for header in headers[:4]] == ["http://client.example/cb", "urn:a", "urn:uuid:1", "urn:uuid:0"]
    # Nothing the receiver must understand: a client without WS-Addressing still takes the message.
    assert not any(key.endswith("mustUnderstand") for header in headers for key in header.attrib)


def test_only_the_action_is_required() -> None:
    assert names(render_headers(action="urn:a")) == ["Action"]


def test_reference_parameter_is_marked_and_kept_whole() -> None:
    element = reference_parameter(PARAMETER)
    assert element.get(IS_REFERENCE_PARAMETER) == "true"
    assert element.tag == "{urn:client}key" and element.text == "abc"
    assert element.findtext("{urn:client}part") == "1"


@requires_schemas
def test_headers_are_valid_and_read_back() -> None:
    headers = render_headers(action="urn:a", to="http://client.example/cb", message_id="urn:uuid:1",
                             relates_to="urn:uuid:0", reference_parameters=(PARAMETER,))
    for encoding in (Encoding.SOAP12, Encoding.SOAP11):
        body = wrap(encoding, render_submit_ack("o-1", None), headers)
        assert_valid(body)
        message = unwrap(body, None)
        assert parse_addressing(message.headers) == Addressing(
            reply_to=None, message_id="urn:uuid:1", to="http://client.example/cb", action="urn:a",
            relates_to="urn:uuid:0")
        assert message.headers[-1].get(IS_REFERENCE_PARAMETER) == "true"


def test_reply_to_parameters_come_back_as_headers() -> None:
    """A client's ReplyTo may carry reference parameters; the call-back to it
    carries them back (WS-Addressing 1.0 SOAP Binding §2.3)."""
    request = unwrap(
        ENVELOPE +
        b"<s:Header><wsa:MessageID>urn:uuid:9</wsa:MessageID><wsa:ReplyTo><wsa:Address>http://client.example/cb"
        b'</wsa:Address><wsa:ReferenceParameters><c:session xmlns:c="urn:client">s-7</c:session>'
        b"</wsa:ReferenceParameters></wsa:ReplyTo></s:Header>"
        b'<s:Body><Cancel xmlns="http://www.opengis.net/oseo/1.0"/></s:Body></s:Envelope>', None)
    parameters = parse_reply_to_parameters(request.headers)
    assert parameters == (Fragment("session", '<c:session xmlns:c="urn:client">s-7</c:session>'),)
    headers = render_headers(action="CancelResponse", reference_parameters=parameters)
    assert (headers[-1].tag, headers[-1].text, headers[-1].get(IS_REFERENCE_PARAMETER)) == (
        "{urn:client}session", "s-7", "true")
    assert parse_reply_to_parameters([]) == ()
    no_parameters = unwrap(
        ENVELOPE +
        b"<s:Header><wsa:ReplyTo><wsa:Address>http://client.example/cb</wsa:Address></wsa:ReplyTo></s:Header>"
        b'<s:Body><Cancel xmlns="http://www.opengis.net/oseo/1.0"/></s:Body></s:Envelope>', None)
    assert parse_reply_to_parameters(no_parameters.headers) == ()
