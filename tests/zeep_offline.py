"""zeep, the standard Python SOAP client, built from the official OSEO WSDL with
no network access (see the zeep section of the schemas README).

Three things stand between zeep 4.x and ``oseo/1.0/oseo.wsdl`` offline, and a
fourth between zeep and any OSEO server:

* every import in the WSDL and its schemas is an absolute ``http://`` URL.
  ``OfflineTransport.load`` serves those from SCHEMAS_DIR, following the
  ``rewriteURI``/``rewriteSystem`` rules of ``SCHEMAS_DIR/catalog.xml``, and
  refuses any other remote URL;
* zeep bug #803: a named simpleType that restricts an anonymous ``xs:list``
  (``swe:RealPair``, ``ows:PositionType2D``) gets the type's own QName as the
  list's item type, and loading crashes in ``ListType.resolve``.
  ``_list_restriction_fix`` keeps the base list's item type instead; it is
  patched in only while the WSDL loads, which is when zeep resolves types;
* zeep drops the ``maxOccurs="unbounded"`` of the ``xs:sequence`` that
  ``oseo:OrderSpecification`` adds to its base (``ComplexType.extend`` clones
  the extension's sequence with maxOccurs 1), so a Submit could carry one
  ``orderItem`` only. ``_repeat_order_items`` makes that element repeat, which
  is the same content model (a repeated sequence of one element);
* zeep ignores ``substitutionGroup``: an element reference to an abstract head
  such as ``swe:AbstractDataComponent`` matches only the head's own name, so
  zeep cannot read ``swe:DataRecord``/``swe:Category`` where the schema says
  ``swe:AbstractDataComponent`` (every GetOptionsResponse, the official sample
  included). ``_substitution_aware`` lets such a reference consume any
  concrete member of the group, read from the schema documents zeep loaded,
  and parse it as that member. It wraps ``Element.parse_xmlelements`` for the
  rest of the process (parsing happens at call time, in zeep's threads); it
  changes nothing for elements that head no group of the OSEO schemas.

Import this module only where zeep is importable.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lxml import etree
from zeep import Client, Settings
from zeep.transports import Transport
from zeep.wsdl import Document
from zeep.xsd.elements.element import Element
from zeep.xsd.types.collection import ListType
from zeep.xsd.types.unresolved import UnresolvedCustomType
from zeep.xsd.utils import max_occurs_iter

from tests.oseo_schema import SCHEMAS_DIR

WSDL = SCHEMAS_DIR / "oseo" / "1.0" / "oseo.wsdl"
OSEO_BINDING = "{http://www.opengis.net/oseo/1.0}OSEO_V100_ServicePortBinding"
OSEO_NS = "http://www.opengis.net/oseo/1.0"
_CATALOG_NS = "urn:oasis:names:tc:entity:xmlns:xml:catalog"
_XSD = "http://www.w3.org/2001/XMLSchema"


class OfflineError(RuntimeError):
    """zeep asked for a document that is not in the local schema mirror."""


@functools.cache
def catalog_rewrites(catalog: Path = SCHEMAS_DIR / "catalog.xml") -> tuple[tuple[str, Path], ...]:
    """(URL prefix, local folder) pairs from an OASIS catalog, longest prefix first."""
    rules: dict[str, Path] = {}
    root = etree.parse(str(catalog)).getroot()
    base = catalog.parent
    for rule in root:
        if rule.tag == f"{{{_CATALOG_NS}}}rewriteURI":
            rules[rule.get("uriStartString", "")] = base / rule.get("rewritePrefix", "")
        elif rule.tag == f"{{{_CATALOG_NS}}}rewriteSystem":
            rules[rule.get("systemIdStartString", "")] = base / rule.get("rewritePrefix", "")
    rules.pop("", None)
    return tuple(sorted(rules.items(), key=lambda rule: -len(rule[0])))


def local_path(url: str) -> Path:
    for prefix, folder in catalog_rewrites():
        if url.startswith(prefix):
            path = (folder / url[len(prefix) :]).resolve()
            if not path.is_relative_to(SCHEMAS_DIR.resolve()) or not path.is_file():
                raise OfflineError(f"{url} maps to {path}, which is not in {SCHEMAS_DIR}")
            return path
    raise OfflineError(f"zeep tried to load {url}: no rule in catalog.xml maps it to {SCHEMAS_DIR}")


class OfflineTransport(Transport):
    """A requests Transport whose documents come from the schema mirror only.

    SOAP calls still go through ``post`` over HTTP, to the loopback test
    server; the proxy environment is ignored so they cannot leave the machine.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.session.trust_env = False
        self.loaded: list[str] = []

    def load(self, url: str) -> bytes:
        if not url:
            raise ValueError("No url given to load")
        self.loaded.append(url)
        scheme = urlparse(url).scheme
        if scheme in ("http", "https"):
            return local_path(url).read_bytes()
        path = Path(url[len("file://") :] if scheme == "file" else url)
        if not path.resolve().is_relative_to(SCHEMAS_DIR.resolve()):
            raise OfflineError(f"zeep tried to load {url}, outside {SCHEMAS_DIR}")
        return path.read_bytes()


_zeep_resolve = UnresolvedCustomType.resolve


def _list_restriction_fix(self: UnresolvedCustomType) -> Any:
    base = self.base_type.resolve()
    if isinstance(base, ListType):
        # zeep would build ListType(item_type=<this type's QName>): keep the
        # base list's (already resolved) item type instead.
        cls = type(self.name, (type(base),), {"__module__": "zeep.xsd.dynamic_types"})
        fixed = cls(base.item_type)
        fixed.qname = self.qname
        fixed.name = self.name
        return fixed
    return _zeep_resolve(self)


@contextlib.contextmanager
def _zeep_bug_803_patched() -> Iterator[None]:
    UnresolvedCustomType.resolve = _list_restriction_fix  # type: ignore[method-assign]
    try:
        yield
    finally:
        UnresolvedCustomType.resolve = _zeep_resolve  # type: ignore[method-assign]


def _repeat_order_items(document: Document) -> None:
    specification = document.types.get_type(f"{{{OSEO_NS}}}OrderSpecification")
    order_item = dict(specification.elements)["orderItem"]
    if order_item.max_occurs == 1:
        order_item.max_occurs = "unbounded"


# Head element (Clark notation) -> its concrete substitutes, direct or not.
_SUBSTITUTES: dict[str, frozenset[str]] = {}


def substitution_groups(documents: list[bytes]) -> dict[str, frozenset[str]]:
    """Every global element's substitution group, from schema documents."""
    heads: dict[str, set[str]] = {}
    abstract: set[str] = set()
    for content in documents:
        root = etree.fromstring(content)
        for schema in root.iter(f"{{{_XSD}}}schema"):
            target = schema.get("targetNamespace")
            for element in schema.iterchildren(f"{{{_XSD}}}element"):
                name = f"{{{target}}}{element.get('name')}" if target else element.get("name", "")
                if element.get("abstract") in ("true", "1"):
                    abstract.add(name)
                if group := element.get("substitutionGroup"):
                    prefix, _, local = group.rpartition(":")
                    heads.setdefault(f"{{{element.nsmap.get(prefix or None)}}}{local}", set()).add(name)

    def members(head: str, seen: frozenset[str] = frozenset()) -> set[str]:
        found = set()
        for member in heads.get(head, ()):
            if member not in seen:
                found |= {member} | members(member, seen | {head})
        return found

    return {head: frozenset(members(head) - abstract) for head in heads}


_element_parse_xmlelements = Element.parse_xmlelements


def _substitution_aware(self: Element, xmlelements: Any, schema: Any, name: Any = None, context: Any = None) -> Any:
    substitutes = _SUBSTITUTES.get(self.qname.text) if self.qname is not None else None
    if not substitutes or schema is None or not xmlelements or xmlelements[0].tag not in substitutes:
        return _element_parse_xmlelements(self, xmlelements, schema, name, context)
    result = []
    for _ in max_occurs_iter(self.max_occurs):
        if not xmlelements or xmlelements[0].tag not in substitutes:
            break
        xmlelement = xmlelements.popleft()
        member = schema.get_element(xmlelement.tag)
        result.append(member.parse(xmlelement, schema, allow_none=True, context=context))
    return result if self.accepts_multiple else result[0]


class ServedTransport(OfflineTransport):
    """An ``OfflineTransport`` that also fetches one document over HTTP: the
    WSDL a server under test serves (its schema imports still come from the
    mirror)."""

    def __init__(self, served: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.served = served

    def load(self, url: str) -> bytes:
        if url != self.served:
            return super().load(url)
        self.loaded.append(url)
        response = self.session.get(url, timeout=30)
        response.raise_for_status()
        return bytes(response.content)


def load_wsdl(location: str, transport: OfflineTransport) -> Document:
    """A WSDL parsed by zeep, with the fixes above applied."""
    with _zeep_bug_803_patched():
        document = Document(location, transport, settings=Settings())
    _repeat_order_items(document)
    _SUBSTITUTES.update(substitution_groups([transport.load(url) for url in dict.fromkeys(transport.loaded)]))
    Element.parse_xmlelements = _substitution_aware  # type: ignore[method-assign]
    return document


@functools.cache
def oseo_wsdl() -> Document:
    """The parsed official WSDL (a tenth of a second: parse it once per session)."""
    return load_wsdl(str(WSDL), OfflineTransport())


def oseo_client(wsse: Any = None, **settings: Any) -> Client:
    """A zeep Client on the shared WSDL with its own transport and WS-Security."""
    return Client(oseo_wsdl(), wsse=wsse, transport=OfflineTransport(operation_timeout=30),
                  settings=Settings(**settings))
