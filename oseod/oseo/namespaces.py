"""XML namespaces of the OSEO vocabulary, and the prefixes oseod writes.

Readers never rely on prefixes (clients pick their own); these only decide how
our own documents look. The prefixes follow the official sample messages so a
human comparing our output with them sees the same names.
"""

from __future__ import annotations

from typing import Final

OSEO: Final = "http://www.opengis.net/oseo/1.0"
OWS: Final = "http://www.opengis.net/ows/2.0"
SOAP12: Final = "http://www.w3.org/2003/05/soap-envelope"
SOAP11: Final = "http://schemas.xmlsoap.org/soap/envelope/"
WSA: Final = "http://www.w3.org/2005/08/addressing"
WSSE: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
XLINK: Final = "http://www.w3.org/1999/xlink"
SWE: Final = "http://www.opengis.net/swe/2.0"
SWES: Final = "http://www.opengis.net/swes/2.0"
# WS-BaseNotification 1.3 and WS-Topics 1.3 (the WS-Notification channel).
WSNT: Final = "http://docs.oasis-open.org/wsn/b-2"
WSTOP: Final = "http://docs.oasis-open.org/wsn/t-1"
# oseod's own names, where a standard leaves the content to the implementation
# (the reference parameter naming a WS-Notification subscription).
OSEOD: Final = "urn:oseod:ns"
# The namespace of xml:lang; it is predeclared, so it never appears in NSMAP.
XML: Final = "http://www.w3.org/XML/1998/namespace"

# Prefixes for rendering OSEO payloads (pass as ``nsmap=`` to the root element).
# The SOAP envelope prefixes are chosen by ``soap.py``, since 1.1 and 1.2 would
# both want "soap".
NSMAP: Final[dict[str, str]] = {
    "oseo": OSEO,
    "ows": OWS,
    "xlink": XLINK,
    "swe": SWE,
    "swes": SWES,
    "wsa": WSA,
}


# ParameterData/values is xs:anyType, validated laxly: an element or attribute
# the official schema set declares globally is checked against that
# declaration, so a client's option value with such a name could make every
# echo of it schema-invalid. These are the namespaces of that set (other than
# OSEO, whose few global names are listed below: clients do put their own
# option names in the OSEO namespace).
STANDARD: Final[frozenset[str]] = frozenset({
    OWS, SOAP12, SOAP11, WSA, XLINK, SWE, SWES, XML,
    "http://www.opengis.net/ows/1.1",
    "http://www.opengis.net/gml/3.2",
    WSNT,
    WSTOP,
    "http://docs.oasis-open.org/wsrf/bf-2",
    "http://schemas.xmlsoap.org/wsdl/",
    "http://www.isotc211.org/2005/gco",
    "http://www.isotc211.org/2005/gmd",
    "http://www.isotc211.org/2005/gsr",
    "http://www.isotc211.org/2005/gss",
    "http://www.isotc211.org/2005/gts",
})

# The global element declarations of oseo.xsd (a test compares them).
OSEO_ELEMENTS: Final[frozenset[str]] = frozenset({
    "Cancel", "CancelAck", "CancelResponse", "CancelResponseAck", "Capabilities", "DescribeResultAccess",
    "DescribeResultAccessResponse", "GetCapabilities", "GetOptions", "GetOptionsResponse", "GetQuotation",
    "GetQuotationAck", "GetQuotationResponse", "GetQuotationResponseAck", "GetStatus", "GetStatusResponse",
    "ParameterData", "Submit", "SubmitAck", "SubmitResponse", "SubmitResponseAck", "collectionId",
    "contractInformation", "deliveryOptions", "extension", "identifier", "itemId", "orderId",
    "orderMonitorSpecification", "orderOptions", "orderReference", "orderSpecification", "paymentMethod",
    "priority", "productId", "productOrderOptionsId", "protocol", "statusNotification", "subscriptionId",
    "taskingRequestId",
})


def qname(namespace: str, local: str) -> str:
    """The Clark notation ``{namespace}local`` that lxml uses for tags."""
    return f"{{{namespace}}}{local}"
