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
threads (the HTTP layer may one day parse in a thread pool), and creating one
costs more than parsing a typical request (lxml inspects the target's methods),
so each thread builds its two parsers once.

The body size is capped by the HTTP layer before this module sees it, and
libxml2's default limits bound depth, name and text lengths. One thing they do
not bound is the number of namespace declarations, which costs later (lxml
copies an element's in-scope declarations in quadratic time, and the kept
fragments of a Submit carry the ones they use): a request may declare at most
``MAX_NAMESPACE_DECLARATIONS``, far more than any client writes.
"""

from __future__ import annotations

import re
import threading

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



def _check_prolog(body: bytes) -> None:
    """Raise _DoctypeSeen if a DOCTYPE comes before the root element."""
    if _without_markup_declarations(body):
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


def _without_markup_declarations(body: bytes) -> bool:
    """Whether a byte scan proves that ``body`` has no DOCTYPE: no "<!" at
    all (so no comment or CDATA section either) in an encoding that would
    spell one so. The first pass costs as much as the rest of a small
    request's parsing; most requests need no more than this scan."""
    if not _ascii_compatible(body) or b"<!" in body:
        return False
    head = body[3:] if body.startswith(b"\xef\xbb\xbf") else body
    declared = _DECLARED_ENCODING.match(head[:256])
    return declared is None or declared.group(1).lower() in _LITERAL_ENCODINGS


def _check_namespaces(body: bytes, root: etree._Element) -> None:
    # Every declaration is an attribute spelled "xmlns...": counting the bytes
    # saves walking the tree, the usual case by far.
    if _ascii_compatible(body) and body.count(b"xmlns") <= MAX_NAMESPACE_DECLARATIONS:
        return
    for count, _ in enumerate(etree.iterwalk(root, events=("start-ns",)), 1):
        if count > MAX_NAMESPACE_DECLARATIONS:
            raise OseoError(
                ExceptionCode.NoApplicableCode,
                None,
                f"the request declares more than {MAX_NAMESPACE_DECLARATIONS} XML namespaces",
            )


def parse_xml(body: bytes) -> etree._Element:
    """The root element of ``body``, or a sender-side ``OseoError``.

    Refuses any document with a DOCTYPE (internal subset, entity declarations
    or external DTD) without reading it, and one with more than
    ``MAX_NAMESPACE_DECLARATIONS`` namespace declarations; reports malformed
    XML with the first line of libxml2's message.
    """
    try:
        _check_prolog(body)
    except _DoctypeSeen:
        raise _refused() from None
    except etree.XMLSyntaxError as exc:
        raise _malformed(exc) from None
    try:
        root = etree.fromstring(body, _parsers.tree)
    except etree.XMLSyntaxError as exc:
        raise _malformed(exc) from None
    # Defence in depth: the first pass makes this unreachable.
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise _refused()
    _check_namespaces(body, root)
    return root
