"""oseod.oseo.xmlparse: hostile and broken request bodies."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import BinaryIO

import pytest
from lxml import etree

from oseod.oseo.errors import ExceptionCode, OseoError
from oseod.oseo.namespaces import OSEO, SOAP12
from oseod.oseo.soap import unwrap
from oseod.oseo.submit import parse_submit
from oseod.oseo.xmlparse import CHUNK_BYTES, UNCOUNTED, XmlLimits, parse_xml

DTD_REFUSED = "DTDs are not allowed"


def refused(body: bytes | BinaryIO, limits: XmlLimits = XmlLimits()) -> OseoError:
    with pytest.raises(OseoError) as info:
        parse_xml(body, limits)
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
    # Even for XML that is not a request (parsed without counting).
    assert "not well-formed" in refused(body, UNCOUNTED).text
    assert parse_xml(body[:255 * 3] + body[-255 * 4:]).tag == "a"


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


# ------------------------------------------------------------------- limits
#
# Each limit is checked on both paths: bytes small enough to be proved
# within the limits by their length are parsed whole; other bytes, and every
# file (how the HTTP layer passes a large body), go through the pull parser.

TOO_BIG = "the request is too big to be an OSEO request: "


def both(body: bytes) -> list[bytes | BinaryIO]:
    return [body, io.BytesIO(body)]


def nested(depth: int) -> bytes:
    return b"<a>" * depth + b"</a>" * depth


@pytest.mark.parametrize("as_file", [False, True], ids=["bytes", "file"])
def test_element_limit(as_file: bool) -> None:
    limits = XmlLimits(max_elements=100)
    within = b"<r>" + b"<a/>" * 99 + b"</r>"
    over = b"<r>" + b"<a/>" * 100 + b"</r>"
    assert len(parse_xml(io.BytesIO(within) if as_file else within, limits)) == 99
    error = refused(io.BytesIO(over) if as_file else over, limits)
    assert error.text == TOO_BIG + "more than 100 XML elements"


@pytest.mark.parametrize("as_file", [False, True], ids=["bytes", "file"])
def test_depth_limit(as_file: bool) -> None:
    limits = XmlLimits(max_depth=10)
    assert parse_xml(io.BytesIO(nested(10)) if as_file else nested(10), limits).tag == "a"
    error = refused(io.BytesIO(nested(11)) if as_file else nested(11), limits)
    assert error.text == TOO_BIG + "elements nested more than 10 deep"
    # The fewest "<" an element 11 deep takes: 11 start tags, the last one
    # empty, and 10 end tags (fewer "<" than that prove a document within).
    tightest = b"<a>" * 10 + b"<a/>" + b"</a>" * 10
    error = refused(io.BytesIO(tightest) if as_file else tightest, limits)
    assert error.text == TOO_BIG + "elements nested more than 10 deep"
    # With the default limits: deeper than any OSEO request, within libxml2's
    # (past libxml2's, in the same words).
    assert parse_xml(nested(64), XmlLimits()).tag == "a"
    for depth in (65, 300, 100_000):
        for source in both(nested(depth)):
            assert refused(source).text == TOO_BIG + "elements nested more than 64 deep"


@pytest.mark.parametrize("as_file", [False, True], ids=["bytes", "file"])
def test_attribute_limit(as_file: bool) -> None:
    limits = XmlLimits(max_attributes=100)

    def document(count: int) -> bytes:
        # Spread over elements: the limit is on the whole request.
        return b"<r>" + b"".join(b'<a n="%d"/>' % n for n in range(count)) + b"</r>"

    assert len(parse_xml(io.BytesIO(document(100)) if as_file else document(100), limits)) == 100
    error = refused(io.BytesIO(document(101)) if as_file else document(101), limits)
    assert error.text == TOO_BIG + "more than 100 XML attributes"


def test_text_limit() -> None:
    limits = XmlLimits(max_text_bytes=100_000)
    # A text or tag is seen whole once it ends: it may pass the limit by the
    # chunks it spans before being refused, never be refused within it.
    for body in both(b"<r>" + b"t" * 99_000 + b"</r>"):
        assert len(parse_xml(body, limits).text or "") == 99_000
    over = 100_000 + 2 * CHUNK_BYTES + 1
    hostile = [
        b"<r>" + b"t" * over + b"</r>",
        b"<r><a b='" + b"v" * over + b"'/></r>",
        b"<r><a " + b" ".join(b"a%d=''" % n for n in range(over // 8)) + b"/></r>",
        b"<r><!--" + b"c" * over + b"--></r>",
        b"<r><![CDATA[" + b"<" * over + b"]]></r>",
    ]
    for body in hostile:
        for source in both(body):
            error = refused(source, limits)
            assert error.text == TOO_BIG + "a text, attribute or tag longer than 100000 bytes"


def test_namespace_and_doctype_refusals_hold_for_files() -> None:
    declarations = b"".join(b' xmlns:p%d="urn:%d"' % (n, n) for n in range(101))
    assert "more than 100 XML namespaces" in refused(io.BytesIO(b"<r" + declarations + b"/>")).text
    doctype = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'
    assert DTD_REFUSED in refused(io.BytesIO(doctype)).text
    assert DTD_REFUSED in refused(io.BytesIO(doctype.decode().encode("utf-16"))).text
    assert DTD_REFUSED in refused(io.BytesIO(b"<!DOCTYPE r [ garbage <!ENTITY broken> ]><r/>")).text
    assert DTD_REFUSED in refused(io.BytesIO(b"<!-- " + b"c" * 3 * CHUNK_BYTES + b" --><!DOCTYPE r><r/>")).text
    assert "Premature end of data" in refused(io.BytesIO(b"<a><b>")).text
    assert "no element found" in refused(io.BytesIO(b"")).text


@pytest.mark.parametrize(
    "body",
    [
        b"<r>" + b"<a/>" * (10 * 1024 * 1024 // 4) + b"</r>",  # 2.6 million empty elements
        b"<r>" + b"<a n=''>" * 64 + b"</a>" * 64 + b"<b/>" * (10 * 1024 * 1024 // 4) + b"</r>",
        nested(10 * 1024 * 1024 // 7),
        b"<r " + b" ".join(b"a%d=''" % n for n in range(10 * 1024 * 1024 // 10)) + b"/>",
        b"<r>" + b"t" * (10 * 1024 * 1024) + b"</r>",
    ],
    ids=["elements", "elements-after-attributes", "depth", "attributes", "text"],
)
def test_hostile_10_mib_bodies_are_refused_early(body: bytes) -> None:
    # The default limits stop each at its first megabyte or so: parsing stops
    # within a few chunks of the limit, not at the end of the body.
    read: list[int] = []

    class Counting(io.BytesIO):
        def read(self, size: int | None = -1, /) -> bytes:
            chunk = super().read(size)
            read.append(len(chunk))
            return chunk

    error = refused(Counting(body))
    assert error.text.startswith(TOO_BIG)
    assert sum(read) <= 2 * 1024 * 1024


# A Submit of max_items_per_order items, each as rich as OSEO allows a
# client to make it: options, a scene selection with a 100-point polygon,
# delivery options, payment, an extension.
ITEM = """<orderItem>
  <itemId>item-{n}</itemId>
  <productOrderOptionsId>Level-1 options</productOrderOptionsId>
  <orderItemRemark>item {n} of a big order</orderItemRemark>
  <option><ParameterData><encoding>XMLEncoding</encoding><values>
    <d:format>GeoTIFF</d:format><d:bands unit="index">1 2 3</d:bands>
    <d:resampling method="cubic">true</d:resampling></values></ParameterData></option>
  <option><ParameterData><encoding>XMLEncoding</encoding><values>
    <d:processingLevel>1B</d:processingLevel></values></ParameterData></option>
  <sceneSelection><ParameterData><encoding>XMLEncoding</encoding><values>
    <d:sceneType>FloatingScene</d:sceneType>
    <d:aoi><d:Polygon d:id="aoi-{n}" srsName="EPSG:4326"><d:exterior><d:LinearRing>
      <d:posList srsDimension="2">{polygon}</d:posList>
    </d:LinearRing></d:exterior></d:Polygon></d:aoi>
    <d:period><d:TimePeriod d:id="t-{n}"><d:beginPosition>2024-01-01T00:00:00Z</d:beginPosition>
      <d:endPosition>2024-01-31T00:00:00Z</d:endPosition></d:TimePeriod></d:period>
  </values></ParameterData></sceneSelection>
  <deliveryOptions>
    <onlineDataDelivery><protocol>ftp</protocol></onlineDataDelivery>
    <numberOfCopies>1</numberOfCopies><productAnnotation>annotation {n}</productAnnotation>
    <specialInstructions>none</specialInstructions>
  </deliveryOptions>
  <payment><paymentMethod>quota</paymentMethod><orderAccount>project-9</orderAccount></payment>
  <extension>item-ext-{n}</extension>
  <productId><identifier>urn:product:{n:06d}</identifier><collectionId>urn:oseod:demo</collectionId></productId>
</orderItem>"""

POLYGON = " ".join(f"{10 + n / 100:.4f} {40 + n / 100:.4f}" for n in range(100))


def big_submit(items: int) -> bytes:
    order = "".join(ITEM.format(n=n, polygon=POLYGON) for n in range(items))
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope xmlns:soap="{SOAP12}"><soap:Body>
<Submit xmlns="{OSEO}" xmlns:d="urn:dataset"
        service="OS" version="1.0.0">
  <orderSpecification>
    <orderReference>big</orderReference>
    <deliveryInformation><onlineAddress><protocol>ftp</protocol>
      <serverAddress>ftp.client.example</serverAddress></onlineAddress></deliveryInformation>
    <packaging>zip</packaging>
    <orderType>PRODUCT_ORDER</orderType>
    {order}
  </orderSpecification>
  <statusNotification>All</statusNotification>
</Submit></soap:Body></soap:Envelope>""".encode()


@pytest.mark.parametrize("as_file", [False, True], ids=["bytes", "file"])
def test_an_order_of_max_items_per_order_rich_items_parses(as_file: bool) -> None:
    items = 200  # the default [orders] max_items_per_order
    limits = XmlLimits.for_orders_of(items)
    assert limits == XmlLimits()  # the defaults are those of the default config
    body = big_submit(items)
    root = parse_xml(body)
    elements = sum(1 for _ in root.iter())
    attributes = sum(len(e.attrib) for e in root.iter())
    # The limits leave a wide margin over the richest real order.
    assert elements * 5 < limits.max_elements and attributes * 10 < limits.max_attributes
    message = unwrap(io.BytesIO(body) if as_file else body, "application/soap+xml", None, limits)
    spec = parse_submit(message.payload).spec
    assert spec is not None and len(spec.items) == items
    assert spec.items[-1].item_id == f"item-{items - 1}"


def test_limits_scale_with_the_order_size() -> None:
    assert XmlLimits.for_orders_of(1000).max_elements > 5 * XmlLimits.for_orders_of(200).max_elements // 2
    body = big_submit(1500)  # 43 elements an item
    assert refused(body).text == TOO_BIG + "more than 60000 XML elements"
    assert len(parse_xml(io.BytesIO(body), XmlLimits.for_orders_of(1500))) == 1
