"""Parsing untrusted request bodies into lxml trees, safely.

OSEO requests never need a DTD, so a document that declares one is refused
outright instead of being parsed with the dangerous parts turned off: that
closes XXE (external entities), billion laughs (entity expansion) and external
DTD fetches in one rule that does not depend on libxml2's defaults.

How: a first pass runs libxml2 with a SAX target that raises at the DOCTYPE
(before libxml2 reads a single declaration of the internal subset) or at the
root start tag, whichever comes first, so it costs only the prolog. Only then
is the document parsed into a tree, by a parser hardened as well (no entity
substitution, no DTD loading, no network, default size limits) in case the
first pass is ever bypassed. libxml2 detects the encoding itself in both passes,
so a UTF-16 or UTF-32 DOCTYPE is caught like any other.

Parsers are kept per thread: an lxml parser may be reused but not shared between
threads (the HTTP layer parses large bodies in a thread pool), and creating one
costs more than parsing a typical request (lxml inspects the target's methods),
so each thread builds its two parsers once. A body parsed in chunks (below)
gets two fresh ones, the first pass fed each chunk just before the tree parser:
their cost is nothing beside such a body's.

The body size is capped by the HTTP layer before this module sees it, and
libxml2's default limits bound depth, name and text lengths. One thing they do
not bound is the number of namespace declarations, which costs later (lxml
copies an element's in-scope declarations in quadratic time, and the kept
fragments of a Submit carry the ones they use): a request may declare at most
``MAX_NAMESPACE_DECLARATIONS``, far more than any client writes.

Nor do they bound the tree a body builds before anyone knows who sent it: 10
MiB of ``<a/>`` is 2.6 million elements, half a gigabyte of tree. ``XmlLimits``
caps elements, depth, attributes and the length of one text or tag, at sizes
no real request reaches (an order of ``max_items_per_order`` items sets the
scale). A body that provably stays within them by its size and a byte count
is parsed in one call as before (the common case costs an XPath probe for the
depth); any other body, and every file, is fed to a pull parser in chunks and
counted as it goes, so parsing stops at the first chunk past a limit and the
partial tree never grows much beyond the limits.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any, BinaryIO

import attrs
from lxml import etree

from oseod.oseo.errors import ExceptionCode, OseoError


class _DoctypeSeen(Exception):
    pass


class _RootSeen(Exception):
    pass


class _PrologTarget:
    """SAX target of the first pass: stops the parser at the first decisive
    event. lxml only calls the methods a target has; the others are here to
    satisfy the target protocol of the lxml type stubs."""

    def doctype(self, root_tag: str | None, public_id: str | None, system_id: str | None, /) -> None:
        raise _DoctypeSeen()

    def start(self, tag: str, attrib: dict[str, str], /) -> None:
        raise _RootSeen()

    def end(self, tag: str, /) -> None:
        pass

    def data(self, data: str, /) -> None:
        pass

    def comment(self, text: str, /) -> None:
        pass

    def pi(self, target: str, data: str, /) -> None:
        pass

    def start_ns(self, prefix: str, uri: str, /) -> None:
        pass

    def end_ns(self, prefix: str, /) -> None:
        pass

    def close(self) -> None:
        return None


class _Parsers(threading.local):
    def __init__(self) -> None:
        # Same hardening as the tree parser; only the target differs.
        self.prolog = etree.XMLParser(
            target=_PrologTarget(),
            resolve_entities=False,
            load_dtd=False,
            dtd_validation=False,
            no_network=True,
            huge_tree=False,
        )
        self.tree = _tree_parser()
        # XPath probes "is any element deeper than N?", per N (compiled once;
        # like parsers, XPath evaluators are kept per thread).
        self.too_deep: dict[int, etree.XPath] = {}



def _check_prolog(body: bytes, ascii_names: bool) -> None:
    """Raise _DoctypeSeen if a DOCTYPE comes before the root element
    (``ascii_names``: what :func:`_ascii_compatible` says of ``body``)."""
    if _without_markup_declarations(body, ascii_names):
        return
    try:
        etree.fromstring(body, _parsers.prolog)
    except _RootSeen:
        pass  # the expected outcome: a root element and no DOCTYPE before it


def _tree_parser() -> etree.XMLParser[etree._Element]:
    return etree.XMLParser(
        resolve_entities=False,
        load_dtd=False,
        dtd_validation=False,
        no_network=True,
        huge_tree=False,
        # Comments and processing instructions carry no meaning in a request
        # (SoapUI fills requests with <!--Optional:-->), and dropping them means
        # request code can walk element children without skipping them.
        remove_comments=True,
        remove_pis=True,
        # xml:id lookups are never used; do not build their hash table.
        collect_ids=False,
    )


_parsers = _Parsers()


def _malformed(exc: etree.XMLSyntaxError) -> OseoError:
    # .msg is libxml2's message without lxml's "(<string>, line N)" suffix.
    lines = (exc.msg or str(exc)).splitlines()
    message = lines[0] if lines else "unreadable document"
    return OseoError(ExceptionCode.NoApplicableCode, None, f"the request is not well-formed XML: {message}")


def _refused() -> OseoError:
    return OseoError(
        ExceptionCode.NoApplicableCode,
        None,
        "DTDs are not allowed: the request must not contain a DOCTYPE declaration",
    )


MAX_NAMESPACE_DECLARATIONS = 100

# Encodings in which "<!" can only be written as those two bytes. UTF-7, for
# one, may spell "!" as "+ACE-".
_LITERAL_ENCODINGS = frozenset({b"utf-8", b"utf8", b"us-ascii", b"ascii", b"iso-8859-1", b"latin1", b"latin-1"})
_DECLARED_ENCODING = re.compile(rb"""<\?xml[^>]*?encoding\s*=\s*["']([^"']*)""")


def _ascii_compatible(body: bytes) -> bool:
    """Whether every ASCII name of ``body`` is spelled in ASCII bytes: not
    UTF-16/32 (NUL bytes or a BOM up front) nor EBCDIC (no "<" up front)."""
    head = body[:64].lstrip(b" \t\r\n")[:4]
    if head.startswith(b"\xef\xbb\xbf"):
        head = body[3:7]
    return head.startswith(b"<") and b"\x00" not in head


def _without_markup_declarations(body: bytes, ascii_names: bool) -> bool:
    """Whether a byte scan proves that ``body`` has no DOCTYPE: no "<!" at
    all (so no comment or CDATA section either) in an encoding that would
    spell one so. The first pass costs as much as the rest of a small
    request's parsing; most requests need no more than this scan."""
    # (A "<!" needs a "!", which a byte search finds ten times faster than
    # the pair among a request's hundred "<": most requests have none.)
    if not ascii_names or (b"!" in body and b"<!" in body):
        return False
    head = body[3:] if body.startswith(b"\xef\xbb\xbf") else body
    declared = _DECLARED_ENCODING.match(head[:256])
    return declared is None or declared.group(1).lower() in _LITERAL_ENCODINGS


def _check_namespaces(body: bytes, ascii_names: bool, root: etree._Element) -> None:
    # Every declaration is an attribute spelled "xmlns...": counting the bytes
    # saves walking the tree, the usual case by far.
    if ascii_names and body.count(b"xmlns") <= MAX_NAMESPACE_DECLARATIONS:
        return
    for count, _ in enumerate(etree.iterwalk(root, events=("start-ns",)), 1):
        if count > MAX_NAMESPACE_DECLARATIONS:
            raise _namespaces_refused()


def _namespaces_refused() -> OseoError:
    return OseoError(
        ExceptionCode.NoApplicableCode,
        None,
        f"the request declares more than {MAX_NAMESPACE_DECLARATIONS} XML namespaces",
    )


@attrs.frozen
class XmlLimits:
    """How much XML one request may hold, counted while it is parsed.

    ``max_text_bytes`` bounds one text, attribute value, comment or start tag
    (all its attributes): in a pull parser nothing is seen of a piece of
    markup until it ends, so that is what a chunk-wise parse can bound, by
    the chunks that pass without an event. One within the limit is never
    refused; one longer by more than two chunks always is.
    """

    max_elements: int = 60_000
    max_depth: int = 64
    max_attributes: int = 60_000
    max_text_bytes: int = 1024 * 1024

    @classmethod
    def for_orders_of(cls, max_items_per_order: int) -> XmlLimits:
        """Limits scaled to the biggest order the server accepts. The richest
        item a client writes (options, a scene selection with a polygon and a
        period, delivery options, payment, an extension) has 43 elements and
        6 attributes; an item is allowed 250 of each, and the envelope and
        order around the items 10 000. With the default 200 items: 60 000
        elements, about 8 MB of tree, seven times the richest such order. A
        massive order of bare items (5 elements each) may hold some 12 000."""
        scaled = _BASE_ELEMENTS + _ELEMENTS_PER_ITEM * max_items_per_order
        return cls(max_elements=scaled, max_attributes=scaled)


_BASE_ELEMENTS = 10_000
_ELEMENTS_PER_ITEM = 250

# Bodies are fed to the pull parser in pieces of this size: memory per parse
# is one chunk plus the partial tree, which passes a limit by at most what one
# chunk builds (16 000 empty elements, about 2 MB).
CHUNK_BYTES = 64 * 1024

# The smallest element, "<a/>", takes 4 bytes, as does the smallest attribute
# after the first, ' a=""' less its space; a body this many times shorter than
# a limit cannot reach it whatever its encoding.
_MIN_BYTES = 4


def _over(what: str) -> OseoError:
    return OseoError(ExceptionCode.NoApplicableCode, None, f"the request is too big to be an OSEO request: {what}")


def _surely_within(body: bytes, limits: XmlLimits) -> bool:
    """Whether the byte counts of ``body`` prove it within the limits on
    elements, attributes and text (depth is checked on the tree)."""
    if len(body) > limits.max_text_bytes:
        return False
    if len(body) <= _MIN_BYTES * min(limits.max_elements, limits.max_attributes):
        return True
    # Every element starts with "<" and every attribute has "=", in any
    # encoding that spells ASCII as ASCII.
    return (_ascii_compatible(body) and body.count(b"<") <= limits.max_elements
            and body.count(b"=") <= limits.max_attributes)


def _check_depth(body: bytes, ascii_names: bool, root: etree._Element, limits: XmlLimits) -> None:
    if limits.max_depth >= LIBXML2_MAX_DEPTH:
        return  # libxml2 refused anything deeper
    # A well-formed document (it parsed) with an element at depth d has at
    # least d start tags and d - 1 end tags (the deepest may be empty): so
    # one with fewer "<" than 2 * max_depth + 1, in an encoding that spells
    # "<" so, is within the limit without a look at the tree. Most
    # requests are (a 10-item Submit has some 120).
    if ascii_names and body.count(b"<") <= 2 * limits.max_depth:
        return
    probe = _parsers.too_deep.get(limits.max_depth)
    if probe is None:
        # "/*" is the root element, "/*/*" its children...: one step more than
        # the limit finds any element too deep, in one pass of libxml2's.
        probe = etree.XPath("boolean(" + "/*" * (limits.max_depth + 1) + ")")
        _parsers.too_deep[limits.max_depth] = probe
    if probe(root):
        raise _over(f"elements nested more than {limits.max_depth} deep")


def _syntax_error(exc: etree.XMLSyntaxError, limits: XmlLimits) -> OseoError:
    # libxml2 stops at its own depth limit, maybe within the chunk that passes
    # ours: say it as ours, without libxml2's advice about XML_PARSE_HUGE.
    if (exc.msg or "").startswith("Excessive depth") and limits.max_depth < LIBXML2_MAX_DEPTH:
        return _over(f"elements nested more than {limits.max_depth} deep")
    return _malformed(exc)


def _parse_whole(body: bytes, limits: XmlLimits) -> etree._Element:
    # Each byte scan below holds only if the names are spelled in ASCII bytes.
    ascii_names = _ascii_compatible(body)
    try:
        _check_prolog(body, ascii_names)
    except _DoctypeSeen:
        raise _refused() from None
    except etree.XMLSyntaxError as exc:
        raise _syntax_error(exc, limits) from None
    try:
        root = etree.fromstring(body, _parsers.tree)
    except etree.XMLSyntaxError as exc:
        raise _syntax_error(exc, limits) from None
    # Defence in depth: the first pass makes this unreachable.
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise _refused()
    _check_namespaces(body, ascii_names, root)
    _check_depth(body, ascii_names, root, limits)
    return root


def _chunks(source: bytes | BinaryIO) -> Iterator[bytes]:
    """``source`` from its start, in chunks (a file is read as it goes)."""
    if isinstance(source, bytes):
        for start in range(0, len(source), CHUNK_BYTES):
            yield source[start:start + CHUNK_BYTES]
        return
    source.seek(0)
    while chunk := source.read(CHUNK_BYTES):
        yield chunk


class _DoctypeTarget:
    """SAX target of the first pass over a stream: it runs in step with the
    pull parser and is dropped once that one reports the root element. It has
    no ``start`` on purpose: lxml would build a dict of the root's attributes
    for it, all of them, however many."""

    def doctype(self, root_tag: str | None, public_id: str | None, system_id: str | None, /) -> None:
        raise _DoctypeSeen()

    def close(self) -> None:
        return None


class _Counts:
    """What the pull parser has reported so far, checked against the limits."""

    def __init__(self, limits: XmlLimits) -> None:
        self.limits = limits
        self.elements = 0
        self.depth = 0
        self.attributes = 0
        self.namespaces = 0
        self.unseen = 0  # bytes fed since a chunk last produced an event

    def take(self, parser: etree.XMLPullParser, fed: int) -> None:
        limits = self.limits
        seen = False
        for event, value in parser.read_events():
            seen = True
            if event == "start":
                self.elements += 1
                self.depth += 1
                self.attributes += len(value.attrib)
                if self.elements > limits.max_elements:
                    raise _over(f"more than {limits.max_elements} XML elements")
                if self.depth > limits.max_depth:
                    raise _over(f"elements nested more than {limits.max_depth} deep")
                if self.attributes > limits.max_attributes:
                    raise _over(f"more than {limits.max_attributes} XML attributes")
            elif event == "end":
                self.depth -= 1
            else:  # start-ns
                self.namespaces += 1
                if self.namespaces > MAX_NAMESPACE_DECLARATIONS:
                    raise _namespaces_refused()
        self.unseen = 0 if seen else self.unseen + fed
        if self.unseen > limits.max_text_bytes:
            raise _over(f"a text, attribute or tag longer than {limits.max_text_bytes} bytes")


def _parse_stream(source: bytes | BinaryIO, limits: XmlLimits) -> etree._Element:
    prolog: Any = etree.XMLParser(  # type: ignore[call-overload]  # a partial target, see there
        target=_DoctypeTarget(),
        resolve_entities=False, load_dtd=False, dtd_validation=False, no_network=True, huge_tree=False,
    )
    parser = etree.XMLPullParser(
        events=("start", "end", "start-ns"),
        resolve_entities=False, load_dtd=False, dtd_validation=False, no_network=True, huge_tree=False,
        remove_comments=True, remove_pis=True, collect_ids=False,
    )
    counts = _Counts(limits)
    try:
        for chunk in _chunks(source):
            if prolog is not None:
                # The first pass sees each chunk first: a DOCTYPE is refused
                # before the tree parser reads it.
                prolog.feed(chunk)
            parser.feed(chunk)
            counts.take(parser, len(chunk))
            if counts.elements:
                prolog = None  # past the prolog: no DOCTYPE may come now
        if prolog is not None:
            prolog.close()
        root = parser.close()
        counts.take(parser, 0)
    except _DoctypeSeen:
        raise _refused() from None
    except etree.XMLSyntaxError as exc:
        raise _syntax_error(exc, limits) from None
    # Defence in depth, as for a whole body.
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise _refused()
    return root


DEFAULT_LIMITS = XmlLimits()

# Without huge_tree, libxml2 refuses documents nested deeper than this.
LIBXML2_MAX_DEPTH = 256

# For XML that is not a request: fragments of our own kept with an order
# (accepted under the limits of their day, which may have been wider), and
# answers to call-backs (whose size the notifier bounds). libxml2's limits
# only, as before limits were counted.
UNCOUNTED = XmlLimits(max_elements=2**62, max_depth=LIBXML2_MAX_DEPTH, max_attributes=2**62,
                      max_text_bytes=2**62)


def parse_xml(source: bytes | BinaryIO, limits: XmlLimits = UNCOUNTED) -> etree._Element:
    """The root element of ``source`` (bytes, or a binary file read from its
    start), or a sender-side ``OseoError``.

    Refuses any document with a DOCTYPE (internal subset, entity declarations
    or external DTD) without reading it, one with more than
    ``MAX_NAMESPACE_DECLARATIONS`` namespace declarations, and one past
    ``limits`` (a request's body must be given some, as ``soap.unwrap``
    does), as soon as the parser reaches the limit; reports malformed XML
    with the first line of libxml2's message.
    """
    if isinstance(source, bytes) and _surely_within(source, limits):
        return _parse_whole(source, limits)
    return _parse_stream(source, limits)
