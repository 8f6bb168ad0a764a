"""The WSDL 1.1 description of this server, for SOAP toolkits (``GET /oseo?wsdl``).

The official ``oseo.wsdl`` names no address ("No Target Address") and binds
SOAP 1.1 only, so a toolkit fed with it must be told where the server is and
cannot speak the SOAP 1.2 the standard describes. This document is our own
equivalent, built for each server: the same operations, message elements and
soapAction values (the operation names), a SOAP 1.2 and a SOAP 1.1 binding of
each, and a service whose ports carry the server's public address. The
schemas are imported by their canonical OGC URLs; they are not served by
oseod, and toolkits that work offline map those URLs to local copies (an XML
catalog), as they do for the official WSDL.

Only the operations the server runs are described, and the client-side
call-backs (SubmitResponse, ...) only for the operations that send them. The
call-back port type has bindings but no service: its address is the one each
client gives in its request.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Final

import attrs
from lxml import etree

from oseod.oseo.namespaces import OSEO, OWS, WSA

WSDL: Final = "http://schemas.xmlsoap.org/wsdl/"
WSDL_SOAP11: Final = "http://schemas.xmlsoap.org/wsdl/soap/"
WSDL_SOAP12: Final = "http://schemas.xmlsoap.org/wsdl/soap12/"
XSD: Final = "http://www.w3.org/2001/XMLSchema"
SOAP_OVER_HTTP: Final = "http://schemas.xmlsoap.org/soap/http"

# The canonical locations: a toolkit resolves (or maps) these itself.
SCHEMA_LOCATIONS: Final = (
    (OSEO, "http://schemas.opengis.net/oseo/1.0/oseo.xsd"),
    (OWS, "http://schemas.opengis.net/ows/2.0/owsAll.xsd"),
    (WSA, "http://www.w3.org/2005/08/addressing/ws-addr.xsd"),
)

SERVICE_NAME: Final = "OSEO_V100"
# The official WSDL's names, so code written against it (a binding QName)
# works with ours; the SOAP 1.2 binding and port are ours.
SERVICE_PORT_TYPE: Final = "OSEO_V100_Service"
CLIENT_PORT_TYPE: Final = "OSEO_V100_AsyncClient"
SOAP11_BINDING: Final = "OSEO_V100_ServicePortBinding"
SOAP12_BINDING: Final = "OSEO_V100_ServiceSoap12Binding"
SOAP11_PORT: Final = "OSEO_V100_Port"
SOAP12_PORT: Final = "OSEO_V100_Soap12Port"


@attrs.frozen
class _Operation:
    name: str
    request: str  # element names in the OSEO namespace
    answer: str
    # GetQuotation, Submit and Cancel may carry a WS-Addressing reply address
    # (the call-back goes there); the call-backs relate to the request.
    headers: tuple[str, ...] = ()


_START = ("MessageID", "ReplyTo")
_CONTINUE = ("RelatesTo",)

SERVICE_OPERATIONS: Final = (
    _Operation("GetCapabilities", "GetCapabilities", "Capabilities"),
    _Operation("GetOptions", "GetOptions", "GetOptionsResponse"),
    _Operation("GetQuotation", "GetQuotation", "GetQuotationAck", _START),
    _Operation("Submit", "Submit", "SubmitAck", _START),
    _Operation("GetStatus", "GetStatus", "GetStatusResponse"),
    _Operation("DescribeResultAccess", "DescribeResultAccess", "DescribeResultAccessResponse"),
    _Operation("Cancel", "Cancel", "CancelAck", _START),
)
# Call-back -> the service operation whose answer it carries.
CLIENT_OPERATIONS: Final = (
    (_Operation("GetQuotationResponse", "GetQuotationResponse", "GetQuotationResponseAck", _CONTINUE),
     "GetQuotation"),
    (_Operation("SubmitResponse", "SubmitResponse", "SubmitResponseAck", _CONTINUE), "Submit"),
    (_Operation("CancelResponse", "CancelResponse", "CancelResponseAck", _CONTINUE), "Cancel"),
)

_FAULT = "ServiceExceptionReport"
_NSMAP = {None: WSDL, "soap": WSDL_SOAP11, "soap12": WSDL_SOAP12, "xs": XSD, "tns": OSEO, "ows": OWS, "wsa": WSA}


def _w(local: str) -> str:
    return f"{{{WSDL}}}{local}"


def render_wsdl(address: str, operations: Iterable[str]) -> bytes:
    """The WSDL of a server at ``address`` that runs ``operations``."""
    served = set(operations)
    service_ops = [op for op in SERVICE_OPERATIONS if op.name in served]
    client_ops = [op for op, origin in CLIENT_OPERATIONS if origin in served]

    root = etree.Element(_w("definitions"), nsmap=_NSMAP)  # type: ignore[arg-type]
    root.set("name", SERVICE_NAME)
    root.set("targetNamespace", OSEO)
    etree.SubElement(root, _w("documentation")).text = (
        "OGC 06-141r6 Ordering Services for Earth Observation Products 1.0, as served at this address: "
        "SOAP 1.2 and SOAP 1.1, document/literal. Faults carry an ows:ExceptionReport."
    )
    _types(root)
    _messages(root, service_ops + client_ops)
    _port_type(root, SERVICE_PORT_TYPE, service_ops)
    if client_ops:
        _port_type(root, CLIENT_PORT_TYPE, client_ops)
    _binding(root, SOAP12_BINDING, SERVICE_PORT_TYPE, WSDL_SOAP12, service_ops)
    _binding(root, SOAP11_BINDING, SERVICE_PORT_TYPE, WSDL_SOAP11, service_ops)
    if client_ops:
        _binding(root, "OSEO_V100_AsyncClientSoap12Binding", CLIENT_PORT_TYPE, WSDL_SOAP12, client_ops)
        _binding(root, "OSEO_V100_AsyncClientPortBinding", CLIENT_PORT_TYPE, WSDL_SOAP11, client_ops)
    service = etree.SubElement(root, _w("service"), name=SERVICE_NAME)
    # SOAP 1.2 first: a toolkit that takes the first port speaks the standard's version.
    for port, binding, soap in ((SOAP12_PORT, SOAP12_BINDING, WSDL_SOAP12),
                                (SOAP11_PORT, SOAP11_BINDING, WSDL_SOAP11)):
        element = etree.SubElement(service, _w("port"), name=port, binding=f"tns:{binding}")
        etree.SubElement(element, f"{{{soap}}}address", location=address)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _types(root: etree._Element) -> None:
    types = etree.SubElement(root, _w("types"))
    schema = etree.SubElement(types, f"{{{XSD}}}schema", elementFormDefault="qualified")
    for namespace, location in SCHEMA_LOCATIONS:
        etree.SubElement(schema, f"{{{XSD}}}import", namespace=namespace, schemaLocation=location)


def _messages(root: etree._Element, operations: list[_Operation]) -> None:
    for op in operations:
        for element in (op.request, op.answer):
            message = etree.SubElement(root, _w("message"), name=element)
            etree.SubElement(message, _w("part"), name="parameters", element=f"tns:{element}")
    headers = sorted({header for op in operations for header in op.headers})
    for header in headers:
        message = etree.SubElement(root, _w("message"), name=header)
        etree.SubElement(message, _w("part"), name=header, element=f"wsa:{header}")
    fault = etree.SubElement(root, _w("message"), name=_FAULT)
    etree.SubElement(fault, _w("part"), name="fault", element="ows:ExceptionReport")


def _port_type(root: etree._Element, name: str, operations: list[_Operation]) -> None:
    port_type = etree.SubElement(root, _w("portType"), name=name)
    for op in operations:
        operation = etree.SubElement(port_type, _w("operation"), name=op.name)
        etree.SubElement(operation, _w("input"), message=f"tns:{op.request}")
        etree.SubElement(operation, _w("output"), message=f"tns:{op.answer}")
        etree.SubElement(operation, _w("fault"), name=_FAULT, message=f"tns:{_FAULT}")


def _binding(root: etree._Element, name: str, port_type: str, soap: str, operations: list[_Operation]) -> None:
    binding = etree.SubElement(root, _w("binding"), name=name, type=f"tns:{port_type}")
    etree.SubElement(binding, f"{{{soap}}}binding", style="document", transport=SOAP_OVER_HTTP)
    for op in operations:
        operation = etree.SubElement(binding, _w("operation"), name=op.name)
        etree.SubElement(operation, f"{{{soap}}}operation", soapAction=op.name, style="document")
        given = etree.SubElement(operation, _w("input"))
        etree.SubElement(given, f"{{{soap}}}body", use="literal")
        for header in op.headers:
            etree.SubElement(given, f"{{{soap}}}header", message=f"tns:{header}", part=header, use="literal")
        answer = etree.SubElement(operation, _w("output"))
        etree.SubElement(answer, f"{{{soap}}}body", use="literal")
        fault = etree.SubElement(operation, _w("fault"), name=_FAULT)
        etree.SubElement(fault, f"{{{soap}}}fault", name=_FAULT, use="literal")


class WsdlDocuments:
    """Rendered WSDL documents by address, the last few kept: the address
    comes from the client's Host header when no public URL is configured."""

    def __init__(self, size: int = 32) -> None:
        self._size = size
        self._documents: OrderedDict[tuple[str, tuple[str, ...]], bytes] = OrderedDict()

    def render(self, address: str, operations: tuple[str, ...]) -> bytes:
        key = (address, operations)
        document = self._documents.get(key)
        if document is None:
            document = self._documents[key] = render_wsdl(address, operations)
            if len(self._documents) > self._size:
                self._documents.popitem(last=False)
        else:
            self._documents.move_to_end(key)
        return document
