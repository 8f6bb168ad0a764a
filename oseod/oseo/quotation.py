"""GetQuotation: what an order would cost, before it is submitted (OGC
06-141r6 §11; oseo.xsd GetQuotationRequestType, GetQuotationAckType,
GetQuotationResponseRequestType, OrderQuotation).

A quotation is answered in one of three ways (GetQuotationCapabilities):
synchronously (the GetQuotationAck carries it), by monitoring (the Ack
carries a quotationId; the client asks again with that id until an Ack
carries the quotation) or by notification (the Ack carries a quotationId; a
GetQuotationResponse call-back carries the quotation later).

oseod prices every item itself, so a quotation has one group of items, priced
by one provider. The values (Quotation, ItemPrice, Provider) live in
``oseod.model.quotations``, shared with the core; they are named here too.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

import attrs
from lxml import etree

from oseod.model.orders import OrderSpec
from oseod.model.quotations import QUOTA, ItemPrice, Provider, Quotation, amount
from oseod.oseo.common import (
    RESPONSE_NSMAP,
    SERVICE,
    VERSION,
    content,
    format_date_time,
    oseo,
    request_children,
    response,
    string,
    sub,
)
from oseod.oseo.errors import xml_safe
from oseod.oseo.status import append_item_identity
from oseod.oseo.submit import parse_order_specification

# The values are named here too: this module is where the vocabulary's users look.
__all__ = ["QUOTA", "GetQuotationRequest", "ItemPrice", "Provider", "Quotation", "amount", "format_amount",
           "parse_get_quotation", "render_get_quotation_ack", "render_get_quotation_response"]


def format_amount(value: Decimal) -> str:
    """An xs:double lexical form without an exponent: "15", "0.1", "1200"."""
    text = format(value.normalize(), "f")
    return "0" if text == "-0" else text


# --------------------------------------------------------------------- parsing


@attrs.frozen
class GetQuotationRequest:
    """Either ``spec`` (quote this order) or ``quotation_id`` (monitoring: is
    that quotation ready?). Where a notification goes is in the WS-Addressing
    headers (``security.parse_addressing``), as for Submit."""

    spec: OrderSpec | None
    quotation_id: str | None


_GET_QUOTATION: Final = content("timeStamp", "orderSpecification", "quotationId")


def parse_get_quotation(payload: etree._Element) -> GetQuotationRequest:
    """The request carried by an ``oseo:GetQuotation`` element."""
    children = request_children(payload, "GetQuotation", _GET_QUOTATION)
    first = children.choice("orderSpecification", "quotationId")
    children.finish()
    if first.tag == oseo("orderSpecification"):
        return GetQuotationRequest(parse_order_specification(first), None)
    return GetQuotationRequest(None, string(first, required=True))


# ------------------------------------------------------------------- rendering


def _price(parent: etree._Element, local: str, value: Decimal, currency: str) -> None:
    price = sub(parent, local)
    sub(price, "value", format_amount(value))
    sub(price, "currency", currency)


def _quotation(parent: etree._Element, quotation: Quotation) -> None:
    """An OrderQuotation, in schema order."""
    element = sub(parent, "quotation")
    sub(element, "quotationId", quotation.quotation_id)
    if quotation.valid_until is not None:
        sub(element, "validityTime", format_date_time(quotation.valid_until))
    _price(element, "price", quotation.total, quotation.currency)
    group = sub(element, "orderItemGroupPrice")
    provider = sub(group, "provider")
    sub(provider, "serviceName", quotation.provider.service_name)
    sub(provider, "organization", quotation.provider.organization)
    _price(group, "price", quotation.total, quotation.currency)
    if quotation.balance is not None:
        _price(group, "balance", quotation.balance, quotation.currency)
    for item in quotation.spec.items:  # in the order's own order
        price = quotation.price_of(item.item_id)
        entry = sub(group, "orderItemPrice")
        sub(entry, "itemId", item.item_id)
        append_item_identity(entry, item)
        if price.price is not None:
            _price(entry, "price", price.price, quotation.currency)
        if price.information:
            sub(entry, "priceInformation", xml_safe(price.information))
    if quotation.contract_information:
        sub(element, "contractInformation", xml_safe(quotation.contract_information))


def render_get_quotation_ack(*, quotation: Quotation | None = None, quotation_id: str | None = None) -> etree._Element:
    """The ``oseo:GetQuotationAck``: with the ``quotation`` (synchronous, or
    a monitored one that is ready), or with the ``quotation_id`` to ask
    again with or to expect a call-back for, or (neither) with nothing."""
    if quotation is not None and quotation_id is not None:
        raise ValueError("a GetQuotationAck carries a quotation or a quotationId, not both")
    root = response("GetQuotationAck")
    if quotation is not None:
        _quotation(root, quotation)
    elif quotation_id is not None:
        sub(root, "quotationId", quotation_id)
    return root


def render_get_quotation_response(quotation: Quotation, error_message: str | None = None) -> etree._Element:
    """The ``oseo:GetQuotationResponse`` call-back body; an ``error_message``
    makes its status "partial" (non-blocking problems)."""
    root = etree.Element(oseo("GetQuotationResponse"), nsmap=RESPONSE_NSMAP)
    root.set("service", SERVICE)
    root.set("version", VERSION)
    sub(root, "status", "partial" if error_message else "success")
    if error_message:
        sub(root, "errorMessage", xml_safe(error_message, 255))
    _quotation(root, quotation)
    return root
