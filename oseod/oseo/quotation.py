"""GetQuotation: what an order would cost, before it is submitted (OGC
06-141r6 §11; oseo.xsd GetQuotationRequestType, GetQuotationAckType,
GetQuotationResponseRequestType, OrderQuotation).

A quotation is answered in one of three ways (GetQuotationCapabilities):
synchronously (the GetQuotationAck carries it), by monitoring (the Ack
carries a quotationId; the client asks again with that id until an Ack
carries the quotation) or by notification (the Ack carries a quotationId; a
GetQuotationResponse call-back carries the quotation later).

oseod prices every item itself, so a quotation has one group of items, priced
by one provider. Amounts are decimals (xs:double on the wire): a sum of
prices must not pick up binary rounding errors on its way to the client.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import attrs
from lxml import etree

from oseod.model.orders import OrderSpec
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

# The special currency of providers that count in quota, not money
# (GetQuotationAck.xml; CurrencyType allows any code of up to 10 characters).
QUOTA: Final = "QUOTA"


def amount(value: object) -> Decimal:
    """A finite decimal amount from an int, float, string or Decimal (a float
    is read from its shortest repr, so 0.1 is 0.1)."""
    try:
        number = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"not a finite amount: {value!r}")
    return number


def _optional_amount(value: object) -> Decimal | None:
    return None if value is None else amount(value)


def format_amount(value: Decimal) -> str:
    """An xs:double lexical form without an exponent: "15", "0.1", "1200"."""
    text = format(value.normalize(), "f")
    return "0" if text == "-0" else text


def _not_negative(instance: object, attribute: attrs.Attribute[Any], value: Decimal | None) -> None:
    if value is not None and value < 0:
        raise ValueError(f"{attribute.name} must not be negative: {value}")


def _at_most(limit: int, minimum: int = 0) -> Callable[[object, attrs.Attribute[Any], str | None], None]:
    def check(instance: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
        if value is not None and not minimum <= len(value) <= limit:
            raise ValueError(f"{attribute.name} must be {minimum} to {limit} characters long: {value!r}")
    return check


@attrs.frozen
class Provider:
    """Who quotes (OrderItemGroupPrice/provider)."""

    service_name: str = attrs.field(validator=_at_most(40))
    organization: str = attrs.field(validator=_at_most(40))


@attrs.frozen
class ItemPrice:
    """The price of one item of the quoted order; None when only the total
    means something (free items, quota)."""

    item_id: str
    price: Decimal | None = attrs.field(default=None, converter=_optional_amount, validator=_not_negative)
    information: str | None = attrs.field(default=None, validator=_at_most(255))


def _priced_items(instance: Quotation, attribute: attrs.Attribute[tuple[ItemPrice, ...]],
                  value: tuple[ItemPrice, ...]) -> None:
    ordered = [item.item_id for item in instance.spec.items]
    priced = [item.item_id for item in value]
    if sorted(priced) != sorted(ordered):
        raise ValueError(f"item_prices must price each item of the order once: {priced} for {ordered}")


@attrs.frozen
class Quotation:
    """What an order would cost. ``order_price`` is the price of the whole
    order when it is not the sum of the items' (a discount, a flat fee);
    ``balance`` is what the client has left, for quota; the ``spec`` is kept
    so that a Submit by quotationId orders what was quoted."""

    quotation_id: str = attrs.field(validator=attrs.validators.min_len(1))
    spec: OrderSpec
    currency: str = attrs.field(validator=_at_most(10, 1))
    provider: Provider
    item_prices: tuple[ItemPrice, ...] = attrs.field(converter=tuple, validator=_priced_items)
    valid_until: datetime | None = None
    balance: Decimal | None = attrs.field(default=None, converter=_optional_amount)
    contract_information: str | None = attrs.field(default=None, validator=_at_most(1024))
    order_price: Decimal | None = attrs.field(default=None, converter=_optional_amount, validator=_not_negative)

    @property
    def total(self) -> Decimal:
        """The price of the whole order."""
        if self.order_price is not None:
            return self.order_price
        return sum((item.price for item in self.item_prices if item.price is not None), Decimal(0))

    def price_of(self, item_id: str) -> ItemPrice:
        return next(item for item in self.item_prices if item.item_id == item_id)


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
