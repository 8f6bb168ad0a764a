"""Quotations as values: what an order would cost, and their JSON for the store.

Shared by the OSEO vocabulary (which renders them: ``oseod.oseo.quotation``),
the core (which prices orders: ``oseod.core.quotations``), the store (which
keeps them until they expire) and the outbox channel that sends them. Pure:
no I/O, no XML.

oseod prices every item itself, so a quotation has one group of items, priced
by one provider. Amounts are decimals (xs:double on the wire): a sum of
prices must not pick up binary rounding errors on its way to the client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import attrs

from . import codec
from .orders import OrderSpec

# The special currency of providers that count in quota, not money
# (GetQuotationAck.xml; CurrencyType allows any code of up to 10 characters).
QUOTA: Final = "QUOTA"
MAX_CURRENCY: Final = 10


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


def _prices(value: Iterable[ItemPrice]) -> tuple[ItemPrice, ...]:
    return tuple(value)


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
    currency: str = attrs.field(validator=_at_most(MAX_CURRENCY, 1))
    provider: Provider
    item_prices: tuple[ItemPrice, ...] = attrs.field(converter=_prices, validator=_priced_items)
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

    def expired(self, now: float) -> bool:
        """Whether the quotation is no longer valid at ``now`` (Unix seconds)."""
        return self.valid_until is not None and self.valid_until.timestamp() <= now


# ------------------------------------------------------------------ JSON
# Amounts travel as strings (exact), times as Unix seconds, the spec as the
# order codec writes it. Field names are part of the stored format.


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def quotation_to_data(quotation: Quotation) -> dict[str, Any]:
    """``quotation`` as plain JSON-able data."""
    data: dict[str, Any] = {
        "id": quotation.quotation_id,
        "spec": codec.to_data(quotation.spec),
        "currency": quotation.currency,
        "provider": [quotation.provider.service_name, quotation.provider.organization],
        "items": [[i.item_id, _text(i.price), i.information] for i in quotation.item_prices],
    }
    optional = {
        "valid_until": None if quotation.valid_until is None else quotation.valid_until.timestamp(),
        "balance": _text(quotation.balance),
        "contract": quotation.contract_information,
        "order_price": _text(quotation.order_price),
    }
    data.update((k, v) for k, v in optional.items() if v is not None)
    return data


def quotation_from_data(data: Any) -> Quotation:
    """The Quotation :func:`quotation_to_data` made ``data`` of; ValueError
    when ``data`` is not one."""
    try:
        valid_until = data.get("valid_until")
        return Quotation(
            quotation_id=str(data["id"]),
            spec=codec.from_data(OrderSpec, data["spec"]),
            currency=str(data["currency"]),
            provider=Provider(*(str(p) for p in data["provider"])),
            item_prices=tuple(ItemPrice(str(item_id), price, information)
                              for item_id, price, information in data["items"]),
            valid_until=None if valid_until is None else datetime.fromtimestamp(float(valid_until), timezone.utc),
            balance=data.get("balance"),
            contract_information=data.get("contract"),
            order_price=data.get("order_price"),
        )
    except (KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"not a stored quotation: {type(e).__name__}: {e}") from None
