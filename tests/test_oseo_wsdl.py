"""The WSDL document oseod builds for itself (oseod/oseo/wsdl.py)."""

from __future__ import annotations

from lxml import etree

from oseod.oseo.namespaces import OSEO
from oseod.oseo.wsdl import WSDL, WSDL_SOAP11, WSDL_SOAP12, WsdlDocuments, render_wsdl

ALL = ("GetCapabilities", "GetOptions", "GetQuotation", "Submit", "GetStatus", "DescribeResultAccess", "Cancel")


def names(root: etree._Element, path: str) -> list[str]:
    return [element.get("name") for element in root.iterfind(path)]


def test_every_operation_bound_in_both_soap_versions() -> None:
    root = etree.fromstring(render_wsdl("https://eo.example.org/oseo", ALL))
    assert root.get("targetNamespace") == OSEO
    [service_ops] = [p for p in root.iterfind(f"{{{WSDL}}}portType") if p.get("name") == "OSEO_V100_Service"]
    assert names(service_ops, f"{{{WSDL}}}operation") == list(ALL)
    bindings = {b.get("name"): b for b in root.iterfind(f"{{{WSDL}}}binding")}
    for name, soap in (("OSEO_V100_ServiceSoap12Binding", WSDL_SOAP12), ("OSEO_V100_ServicePortBinding", WSDL_SOAP11)):
        binding = bindings[name]
        assert binding.find(f"{{{soap}}}binding").get("transport") == "http://schemas.xmlsoap.org/soap/http"
        # soapAction is the operation's name, as in the official WSDL (and as oseod checks it).
        actions = {op.get("name"): op.find(f"{{{soap}}}operation").get("soapAction")
                   for op in binding.iterfind(f"{{{WSDL}}}operation")}
        assert actions == {op: op for op in ALL}
    # The call-backs a client implements have bindings but no service (the client has the address).
    assert {"OSEO_V100_AsyncClientSoap12Binding", "OSEO_V100_AsyncClientPortBinding"} <= set(bindings)
    assert names(root, f"{{{WSDL}}}service") == ["OSEO_V100"]
    messages = {m.get("name"): m[0].get("element") for m in root.iterfind(f"{{{WSDL}}}message")}
    assert messages["Submit"] == "tns:Submit" and messages["SubmitAck"] == "tns:SubmitAck"
    assert messages["ServiceExceptionReport"] == "ows:ExceptionReport"


def test_only_served_operations_are_described() -> None:
    root = etree.fromstring(render_wsdl("http://h/oseo", ("GetCapabilities", "GetStatus")))
    assert names(root, f"{{{WSDL}}}portType/{{{WSDL}}}operation") == ["GetCapabilities", "GetStatus"]
    assert names(root, f"{{{WSDL}}}binding") == ["OSEO_V100_ServiceSoap12Binding", "OSEO_V100_ServicePortBinding"]


def test_an_address_from_a_host_header_stays_an_attribute() -> None:
    address = 'http://a"b<c>&d/oseo'
    root = etree.fromstring(render_wsdl(address, ALL))
    locations = [e.get("location") for e in root.iter(f"{{{WSDL_SOAP11}}}address", f"{{{WSDL_SOAP12}}}address")]
    assert locations == [address, address]


def test_documents_are_cached_and_bounded() -> None:
    documents = WsdlDocuments(size=2)
    first = documents.render("http://a/oseo", ALL)
    assert documents.render("http://a/oseo", ALL) is first
    documents.render("http://b/oseo", ALL)
    documents.render("http://c/oseo", ALL)
    assert documents.render("http://a/oseo", ALL) is not first
