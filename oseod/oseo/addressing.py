"""The WS-Addressing 1.0 headers oseod writes (reading them is ``security.py``'s
job): those of the call-backs it sends to clients, and those of its replies to
clients that address their requests (WS-Notification).

W3C WS-Addressing 1.0 Core §3 and SOAP Binding §2-3: ``wsa:To`` is the
destination, ``wsa:Action`` what the message means, ``wsa:MessageID`` names it
and ``wsa:RelatesTo`` (relationship "reply" when unstated) names the message it
answers. The reference parameters of the destination's endpoint reference are
copied into the header, each marked ``wsa:IsReferenceParameter="true"``
(SOAP Binding §2.3).

None of these headers is marked mustUnderstand: a client that knows nothing of
WS-Addressing (most OSEO call-back receivers) must still be able to take the
message, and the body alone says what it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from lxml import etree

from oseod.model.orders import Fragment
from oseod.oseo.namespaces import WSA, qname
from oseod.oseo.xmlparse import parse_xml

_NSMAP: Final = {"wsa": WSA}
IS_REFERENCE_PARAMETER: Final = qname(WSA, "IsReferenceParameter")


def _header(local: str, text: str) -> etree._Element:
    element = etree.Element(qname(WSA, local), nsmap=_NSMAP)
    element.text = text
    return element


def reference_parameter(parameter: Fragment) -> etree._Element:
    """A reference parameter of an endpoint reference, as the header block
    that carries it in a message sent to that endpoint."""
    element = parse_xml(parameter.xml.encode("utf-8"))
    element.set(IS_REFERENCE_PARAMETER, "true")
    return element


def render_headers(*, action: str, to: str | None = None, message_id: str | None = None,
                   relates_to: str | None = None,
                   reference_parameters: Sequence[Fragment] = ()) -> list[etree._Element]:
    """The header blocks of a message: wsa:To, wsa:Action, wsa:MessageID and
    wsa:RelatesTo as far as given, then the destination's reference
    parameters. Pass them to ``soap.wrap``."""
    headers = []
    if to is not None:
        headers.append(_header("To", to))
    headers.append(_header("Action", action))
    if message_id is not None:
        headers.append(_header("MessageID", message_id))
    if relates_to is not None:
        headers.append(_header("RelatesTo", relates_to))
    headers.extend(reference_parameter(parameter) for parameter in reference_parameters)
    return headers
