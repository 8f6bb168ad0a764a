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


def qname(namespace: str, local: str) -> str:
    """The Clark notation ``{namespace}local`` that lxml uses for tags."""
    return f"{{{namespace}}}{local}"
