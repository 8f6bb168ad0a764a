"""GetQuotation in the core: what an order would cost, and ordering it later.

An order is quoted only if a Submit of it would be accepted now (the same
checks, :class:`SubmitChecker`). Each item is priced by its collection's
processor when that provides IQuotes (see ``jobs/processors.py``), else by
the collection's table: ``price_per_item`` plus, for each option the item is
made with (its own choice, else the order's, else the option's default),
``prices["OPTION=CHOICE"]``. Prices are per orderItem. The items of one
quotation share one currency.

Every quotation is stored, for ``[quotation] validity_hours``, whatever the
mode: the monitoring client asks for it again, and a Submit with its
quotationId orders exactly the quoted order (the spec as checked), once. An
asynchronous quotation also queues its GetQuotationResponse call-back, in
the same step as it is stored. Pricing happens at once in every mode: the
modes differ in how the client receives the quotation, not in when it is made.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from ..config import CollectionConfig, Config
from ..model.accounts import Account
from ..model.errors import invalid
from ..model.orders import ItemSpec, Notification, Order, OrderSpec
from ..model.quotations import ItemPrice, Provider, Quotation, amount
from ..store.quotations import QuotationStore
from .ordering import ClientOrders
from .validation import CheckedOrder, check_reply_to

HOUR = 3600.0
MAX_PRICE_INFORMATION = 255

# A processor's price for an item (IQuotes), None: the table decides.
ItemQuoter = Callable[[CollectionConfig, ItemSpec], Awaitable[Any]]


async def _no_quote(collection: CollectionConfig, item: ItemSpec) -> Any:
    return None


def new_quotation_id() -> str:
    """An unguessable quotation id (an anyURI, as QuotationIdType wants)."""
    return f"urn:oseod:quotation:{secrets.token_urlsafe(24)}"


def _show(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return "0" if text == "-0" else text


def table_price(collection: CollectionConfig, spec: OrderSpec, item: ItemSpec) -> tuple[Decimal, str | None]:
    """``item``'s price by ``collection``'s table, and how it adds up (None
    when it is price_per_item alone)."""
    chosen = {o.name: o.value for o in spec.options}
    chosen.update((o.name, o.value) for o in item.options)
    base = amount(collection.price_per_item)
    price, parts = base, []
    for option in collection.option:
        choice = chosen.get(option.name) or option.default
        extra = collection.prices.get(f"{option.name}={choice}") if choice else None
        if extra:
            price += amount(extra)
            parts.append(f"{_show(amount(extra))} for {option.name} {choice}")
    if not parts:
        return price, None
    information = ", ".join([f"{_show(base)} per item", *parts])
    if len(information) > MAX_PRICE_INFORMATION:
        information = information[:MAX_PRICE_INFORMATION - 3] + "..."
    return price, information


def _unknown(quotation_id: str) -> Exception:
    shown = quotation_id if len(quotation_id) <= 100 else quotation_id[:100] + "..."
    return invalid("quotationId", f'you have no valid quotation "{shown}": it is unknown, expired or already '
                                  f"ordered (a quotation holds for a limited time, and orders once)")


class QuotationService:
    log = Logger()

    def __init__(self, store: QuotationStore, ordering: ClientOrders, config: Config, clock: IReactorTime, *,
                 quote_item: ItemQuoter = _no_quote, new_id: Callable[[], str] = new_quotation_id) -> None:
        self._store = store
        self._ordering = ordering
        self._config = config
        self._clock = clock
        self._quote_item = quote_item
        self._new_id = new_id
        self.provider = Provider(config.service.title.strip()[:40] or "oseod", config.provider.name.strip()[:40])

    @property
    def mode(self) -> str:
        """``[quotation] mode``: synchronous, monitoring, asynchronous or off."""
        return self._config.quotation.mode

    async def quote(self, account: Account, spec: OrderSpec, reply: Notification | None = None) -> Quotation:
        """Price ``spec`` for ``account`` and keep the quotation; with
        ``reply`` (an asynchronous GetQuotation's ReplyTo and MessageID), its
        GetQuotationResponse is queued for that address as well.
        RequestRejected when the order could not be submitted, or its items
        have different currencies."""
        if reply is not None:
            check_reply_to(reply, self._config.notifications.allowed_networks, "an asynchronous GetQuotation")
        checked = self._ordering.checker.check(account, spec)
        currency = self._currency(checked)
        prices = tuple([await self._price(checked.spec, item) for item in checked.spec.items])
        now = self._clock.seconds()
        validity = self._config.quotation.validity_hours * HOUR
        quotation = Quotation(self._new_id(), checked.spec, currency, self.provider, prices,
                              valid_until=datetime.fromtimestamp(now + validity, timezone.utc))
        await self._store.save(account.name, quotation, validity, reply=reply, now=now)
        self.log.info("quotation {quotation_id} for {user}: {count} items, {total} {currency}{how}",
                      quotation_id=quotation.quotation_id, user=account.name, count=len(prices),
                      total=_show(quotation.total), currency=currency,
                      how=", answered by call-back" if reply is not None else "")
        return quotation

    async def find(self, account: Account, quotation_id: str) -> Quotation:
        """The caller's quotation ``quotation_id`` while it is valid
        (monitoring); RequestRejected (quotationId) otherwise."""
        quotation = await self._store.get(account.name, quotation_id)
        if quotation is None or quotation.expired(self._clock.seconds()):
            raise _unknown(quotation_id)
        return quotation

    async def order(self, account: Account, quotation_id: str, notification: Notification) -> Order:
        """Submit the order the caller's quotation ``quotation_id`` quoted,
        using the quotation up. If the Submit is refused the quotation stays
        (for what it had left)."""
        taken = await self._store.take(account.name, quotation_id)
        if taken is None or taken.quotation.expired(self._clock.seconds()):
            raise _unknown(quotation_id)
        try:
            order = await self._ordering.submit(account, taken.quotation.spec, notification)
        except Exception:
            await self._store.restore(account.name, taken)
            raise
        self.log.info("order {order_id} submitted from quotation {quotation_id} ({total} {currency})",
                      order_id=order.order_id, quotation_id=quotation_id, total=_show(taken.quotation.total),
                      currency=taken.quotation.currency)
        return order

    # ------------------------------------------------------------ internals

    def _collection(self, item: ItemSpec) -> CollectionConfig:
        collection = self._config.collection(item.collection_id or "")
        assert collection is not None, "a checked order names configured collections"
        return collection

    def _currency(self, checked: CheckedOrder) -> str:
        currencies: dict[str, list[str]] = {}
        for collection in checked.collections:
            currencies.setdefault(collection.currency, []).append(collection.id)
        if len(currencies) > 1:
            described = "; ".join(f"{currency}: {', '.join(ids)}" for currency, ids in currencies.items())
            raise invalid("orderItem", f"the items' collections price in different currencies ({described}): "
                                       f"quote them in separate requests")
        return next(iter(currencies))

    async def _price(self, spec: OrderSpec, item: ItemSpec) -> ItemPrice:
        collection = self._collection(item)
        quoted = await self._quote_item(collection, item)
        if quoted is None:
            price, information = table_price(collection, spec, item)
            return ItemPrice(item.item_id, price, information)
        try:
            return ItemPrice(item.item_id, quoted)
        except ValueError as e:
            raise ValueError(f"the processor of collection {collection.id} priced item {item.item_id} at "
                             f"{quoted!r}: {e}") from None
