"""Validating what oseod writes against the official OSEO 1.0 schemas.

The schemas are reference data outside the repository: ``$OSEOD_SCHEMAS``, by
default ``../shared/schemas`` next to the repository. Tests that need them use
``requires_schemas`` and are skipped, saying why, when they are absent.

``assert_valid`` takes a bare document or a SOAP 1.1/1.2 envelope. No schema
for SOAP envelopes (or WS-Security headers) ships with OSEO, so the envelope
structure is checked here by hand and each part that OSEO does define (header
blocks, the body payload, the fault detail) is validated on its own.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from oseod.oseo.namespaces import OSEO, OWS, SOAP11, SOAP12, SWE, SWES, WSA, XML

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMAS_DIR = Path(os.environ.get("OSEOD_SCHEMAS") or REPO_ROOT.parent / "shared" / "schemas")
_DRIVER = SCHEMAS_DIR / "local" / "oseo-all.xsd"
_KNOWN_GOOD = SCHEMAS_DIR / "oseo" / "1.0" / "SampleMessages" / "Capabilities.xml"

# Header blocks in these namespaces have a schema here; others (wsse, wsu,
# anything a client invents) are skipped.
_SCHEMA_NAMESPACES = frozenset({OSEO, OWS, WSA, SWE, SWES, "http://docs.oasis-open.org/wsn/b-2"})


def schemas_available() -> bool:
    return _DRIVER.is_file() and _KNOWN_GOOD.is_file()


requires_schemas = pytest.mark.skipif(
    not schemas_available(),
    reason=f"official OSEO schemas not found at {SCHEMAS_DIR}; set OSEOD_SCHEMAS",
)


class _OfflineResolver(etree.Resolver):
    """Maps the schemas' absolute import URLs into SCHEMAS_DIR (schemas README)."""

    _PREFIXES = (
        ("http://schemas.opengis.net/", SCHEMAS_DIR),
        ("http://www.w3.org/", SCHEMAS_DIR / "w3c"),
        ("http://docs.oasis-open.org/", SCHEMAS_DIR / "oasis"),
    )

    def resolve(self, system_url: str | None, public_id: str | None, context: object, /) -> Any:
        for prefix, local in self._PREFIXES:
            if system_url and system_url.startswith(prefix):
                return self.resolve_filename(str(local / system_url[len(prefix) :]), context)
        return None  # relative includes already point into SCHEMAS_DIR


@functools.cache
def _schema() -> etree.XMLSchema:
    parser = etree.XMLParser(no_network=True)
    parser.resolvers.add(_OfflineResolver())
    schema = etree.XMLSchema(etree.parse(str(_DRIVER), parser))
    # libxml2 only warns about an import it cannot load, and the schema then
    # validates nothing at all: prove it knows the OSEO vocabulary.
    if not schema.validate(etree.parse(str(_KNOWN_GOOD))):
        raise RuntimeError(
            f"the compiled schema rejects the official sample {_KNOWN_GOOD}; "
            f"its imports did not resolve: {schema.error_log}"
        )
    return schema


def _elements(parent: etree._Element) -> list[etree._Element]:
    return [child for child in parent if isinstance(child.tag, str)]


def _validate(element: etree._Element, what: str) -> None:
    schema = _schema()
    if not schema.validate(element):
        errors = "\n".join(f"  line {e.line}: {e.message}" for e in schema.error_log)
        raise AssertionError(f"{what} <{element.tag!s}> is not schema-valid:\n{errors}")


def _resolved_qname(element: etree._Element) -> tuple[str | None, str]:
    """The (namespace, local name) of a QName written as element text."""
    text = (element.text or "").strip()
    prefix, _, local = text.rpartition(":")
    return element.nsmap.get(prefix or None), local


def _check_fault12(fault: etree._Element) -> list[etree._Element]:
    def tag(local: str) -> str:
        return f"{{{SOAP12}}}{local}"

    children = _elements(fault)
    names = [child.tag for child in children]
    assert names == [tag("Code"), tag("Reason"), tag("Detail")], f"SOAP 1.2 Fault children: {names}"
    code, reason, detail = children
    code_children = _elements(code)
    assert [c.tag for c in code_children] == [tag("Value"), tag("Subcode")], "Code must hold Value and Subcode"
    value = _resolved_qname(code_children[0])
    assert value in {(SOAP12, "Sender"), (SOAP12, "Receiver")}, f"Code/Value is {value}"
    subcode_children = _elements(code_children[1])
    assert subcode_children and subcode_children[0].tag == tag("Value"), "Subcode must hold a Value"
    namespace, subcode = _resolved_qname(subcode_children[0])
    assert namespace == OWS, f"Subcode/Value must be an ows: exception code, got {subcode_children[0].text!r}"
    texts = _elements(reason)
    assert texts and all(t.tag == tag("Text") for t in texts), "Reason must hold Text elements"
    assert all(t.get(f"{{{XML}}}lang") for t in texts), "Reason/Text needs xml:lang"
    assert (texts[0].text or "").strip(), "Reason/Text is empty"
    entries = _elements(detail)
    assert entries, "Detail is empty"
    codes = {e.get("exceptionCode") for e in entries[0].iter(f"{{{OWS}}}Exception")}
    assert subcode in codes, f"Subcode {subcode!r} is not the report's exceptionCode {codes}"
    return entries


def _check_fault11(fault: etree._Element) -> list[etree._Element]:
    children = _elements(fault)
    names = [child.tag for child in children]
    assert names == ["faultcode", "faultstring", "detail"], f"SOAP 1.1 Fault children: {names}"
    faultcode, faultstring, detail = children
    value = _resolved_qname(faultcode)
    assert value in {(SOAP11, "Client"), (SOAP11, "Server")}, f"faultcode is {value}"
    assert (faultstring.text or "").strip(), "faultstring is empty"
    entries = _elements(detail)
    assert entries, "detail is empty"
    return entries


def _check_envelope(envelope: etree._Element, ns: str) -> etree._Element:
    children = _elements(envelope)
    header = None
    if children and children[0].tag == f"{{{ns}}}Header":
        header, children = children[0], children[1:]
    assert [c.tag for c in children] == [f"{{{ns}}}Body"], f"Envelope must hold Header? then Body: {children}"
    if header is not None:
        for block in _elements(header):
            if etree.QName(block).namespace in _SCHEMA_NAMESPACES:
                _validate(block, "SOAP header block")
    body_children = _elements(children[0])
    assert len(body_children) == 1, f"the Body must hold exactly one element, not {len(body_children)}"
    payload = body_children[0]
    if payload.tag == f"{{{ns}}}Fault":
        entries = _check_fault12(payload) if ns == SOAP12 else _check_fault11(payload)
        for entry in entries:
            _validate(entry, "fault detail entry")
    else:
        _validate(payload, "SOAP Body payload")
    return payload


def assert_valid(document: bytes | etree._Element) -> etree._Element:
    """Check an OSEO/OWS document or SOAP envelope; return its payload.

    Raises AssertionError naming every schema error (or envelope problem).
    """
    root = etree.fromstring(document) if isinstance(document, bytes) else document
    namespace = etree.QName(root).namespace
    if namespace in (SOAP12, SOAP11):
        assert root.tag == f"{{{namespace}}}Envelope", f"SOAP root must be Envelope, not {root.tag!s}"
        return _check_envelope(root, namespace)
    _validate(root, "document")
    return root
