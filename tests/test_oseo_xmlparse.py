"""oseod.oseo.xmlparse: hostile and broken request bodies."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from lxml import etree

from oseod.oseo.errors import ExceptionCode, OseoError
from oseod.oseo.namespaces import OSEO
from oseod.oseo.xmlparse import parse_xml

DTD_REFUSED = "DTDs are not allowed"


def refused(body: bytes) -> OseoError:
    with pytest.raises(OseoError) as info:
        parse_xml(body)
    error = info.value
    assert error.code is ExceptionCode.NoApplicableCode
    assert error.sender is True
    assert error.locator is None
    return error


def test_parses_a_request() -> None:
    body = b'<?xml version="1.0"?><GetStatus xmlns="%s" service="OS"><orderId>1</orderId></GetStatus>'
    root = parse_xml(body % OSEO.encode())
    assert root.tag == f"{{{OSEO}}}GetStatus"
    assert root.get("service") == "OS"
    assert root[0].text == "1"


def test_comments_and_processing_instructions_are_dropped() -> None:
    root = parse_xml(b"<?pi before?><!-- c --><a><!--Optional:--><?pi inside?><b/><!-- x --></a>")
    assert [child.tag for child in root] == ["b"]
    assert root.getprevious() is None


def test_utf16_document_without_doctype_parses() -> None:
    body = '<?xml version="1.0" encoding="UTF-16"?><a>\u00e9t\u00e9</a>'.encode("utf-16")
    assert parse_xml(body).text == "\u00e9t\u00e9"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "Document is empty"),
        (b"   ", "Start tag expected"),
        (b"<a><b></a>", "Opening and ending tag mismatch"),
        (b"<a>", "Premature end of data"),
        (b"not xml at all", "Start tag expected"),
        (b"<a/><b/>", "Extra content at the end of the document"),
        (b"<a>&undeclared;</a>", "Entity 'undeclared' not defined"),
        (b"<a xmlns:p='urn:x'><q:b/></a>", "Namespace prefix q on b is not defined"),
    ],
)
def test_malformed_xml_names_the_problem(body: bytes, fragment: str) -> None:
    text = refused(body).text
    assert text.startswith("the request is not well-formed XML: ")
    assert fragment in text
    assert "\n" not in text and "Traceback" not in text and "<string>" not in text


def test_too_deep_nesting_is_refused_without_huge_tree() -> None:
    depth = 300  # libxml2's limit without huge_tree is 256
    body = b"<a>" * depth + b"</a>" * depth
    assert "not well-formed" in refused(body).text


def test_xxe_external_entity_is_refused_unread(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    for target in ("file:///etc/passwd", secret.as_uri()):
        body = (
            b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "' + target.encode() + b'">]>'
            b'<r xmlns="' + OSEO.encode() + b'">&xxe;</r>'
        )
        error = refused(body)
        assert DTD_REFUSED in error.text
        assert "TOP-SECRET" not in error.text and "root:" not in error.text


LOLS = b"".join(
    b'<!ENTITY lol%d "%s">' % (n, b"&lol%d;" % (n - 1) * 10 if n else b"lol") for n in range(10)
)


@pytest.mark.parametrize(
    "body",
    [
        b'<?xml version="1.0"?><!DOCTYPE lolz [' + LOLS + b"]><lolz>&lol9;</lolz>",
        b'<?xml version="1.0"?><!DOCTYPE lolz [' + LOLS + b']><lolz a="&lol9;"/>',
        # Quadratic blowup: one big entity referenced many times.
        b'<!DOCTYPE q [<!ENTITY a "' + b"x" * 50_000 + b'">]><q>' + b"&a;" * 50_000 + b"</q>",
    ],
    ids=["content", "attribute", "quadratic"],
)
def test_entity_expansion_is_refused_quickly(body: bytes) -> None:
    started = time.monotonic()
    error = refused(body)
    assert DTD_REFUSED in error.text
    assert time.monotonic() - started < 0.5


def test_external_dtd_is_refused_without_fetching(tmp_path: Path) -> None:
    # A DTD that would be read if loaded: its default attribute would show up.
    dtd = tmp_path / "evil.dtd"
    dtd.write_text('<!ATTLIST r injected CDATA "yes">')
    for system_id in (dtd.as_uri(), "http://127.0.0.1:9/evil.dtd"):
        body = b'<!DOCTYPE r SYSTEM "' + system_id.encode() + b'"><r/>'
        assert DTD_REFUSED in refused(body).text
    public = b'<!DOCTYPE r PUBLIC "-//EVIL//DTD//EN" "http://127.0.0.1:9/evil.dtd"><r/>'
    assert DTD_REFUSED in refused(public).text


def test_parameter_entities_are_refused() -> None:
    body = b'<!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;]><r/>'
    assert DTD_REFUSED in refused(body).text


def test_bare_doctype_is_refused() -> None:
    assert DTD_REFUSED in refused(b"<!DOCTYPE r><r/>").text
    assert DTD_REFUSED in refused(b"<?xml version='1.0'?>\n<!-- hi -->\n<!DOCTYPE r []><r/>").text


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_doctype_in_other_encodings_is_refused(codec: str) -> None:
    text = '<?xml version="1.0" encoding="%s"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'
    declared = codec.upper().replace("-LE", "LE").replace("-BE", "BE")
    body = (text % declared).encode(codec)
    if codec in ("utf-16-le", "utf-16-be"):
        body = ("\ufeff" + text % "UTF-16").encode(codec)  # BOM announces the byte order
    error = refused(body)
    assert DTD_REFUSED in error.text


def test_xinclude_is_not_processed(tmp_path: Path) -> None:
    included = tmp_path / "inc.xml"
    included.write_text("<secret>TOP</secret>")
    body = (
        b'<r xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="' + included.as_uri().encode() + b'"/></r>'
    )
    root = parse_xml(body)
    assert root[0].tag == "{http://www.w3.org/2001/XInclude}include"
    assert b"TOP" not in etree.tostring(root)


def test_parsing_is_independent_between_calls() -> None:
    # A refused document must not leave state behind for the next caller.
    refused(b"<!DOCTYPE r><r/>")
    refused(b"<a>")
    assert parse_xml(b"<ok/>").tag == "ok"


def test_internal_subset_is_never_read() -> None:
    # If libxml2 read the subset, this garbage would be reported as malformed
    # XML; the refusal proves parsing stopped at the DOCTYPE itself.
    assert DTD_REFUSED in refused(b"<!DOCTYPE r [ garbage <!ENTITY broken> ]><r/>").text


def test_utf7_doctype_is_refused() -> None:
    # In UTF-7 "!" may be written "+ACE-": no "<!" bytes, yet a DOCTYPE that
    # libxml2 reads. A byte scan must not let it through.
    body = b'<?xml version="1.0" encoding="UTF-7"?><+ACE-DOCTYPE r [<+ACE-ENTITY x "boom">]><r>&x;</r>'
    assert DTD_REFUSED in refused(body).text


@pytest.mark.parametrize(
    "body",
    [
        b'<?xml version="1.0" encoding="UTF-8"?>\n<r a="x">text</r>',
        b"<?xml version='1.0' encoding='iso-8859-1'?><r>\xe9</r>",
        b"\xef\xbb\xbf<?xml version='1.0'?><r>\xc3\xa9</r>",
        b"  \n<r/>",
        b"<r><![CDATA[<!DOCTYPE is only text here>]]></r>",
    ],
)
def test_documents_without_a_doctype_parse(body: bytes) -> None:
    assert parse_xml(body).tag == "r"
