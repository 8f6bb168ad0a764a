"""Whether a Submit may be accepted, judged against the configuration.

Pure: no I/O. Every refusal is a RequestRejected whose text names the
offending value and what would have been accepted, so a client can fix its
request without reading our configuration. (The per-user limit of unfinished
items needs the store and is checked atomically there.)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from urllib.parse import unquote, urlsplit

import attrs

from ..config import CollectionConfig, Config
from ..model.accounts import Account
from ..model.addresses import is_mail_address, smtp_address
from ..model.errors import RequestRejected, invalid, missing
from ..model.orders import (
    MAX_REFERENCE,
    MASSIVE_ORDER_REFERENCE,
    DeliveryChoice,
    DeliveryMethod,
    ItemSpec,
    Notification,
    OptionValue,
    OrderSpec,
    OrderType,
    StatusNotification,
)
from .catalogue import Catalogue
from .destinations import BadDestination, delivery_address, literal_refusal, push_destination

ANONYMOUS = "http://www.w3.org/2005/08/addressing/anonymous"
MAX_ITEM_ID = 80
# An itemId names a directory in result URLs (/results/<order>/<item>/) and
# FTP paths: "." and ".." are collapsed by every client, a "/" splits it in
# two and a control character cannot travel in an FTP command. Anything else
# (spaces, %, ?, #, any script) is percent-encoded in URLs and works.
_UNUSABLE_ITEM_ID = re.compile(r"^\.{1,2}\Z|[/\x00-\x1f\x7f-\x9f]")

_NOT_SUPPORTED = {
    OrderType.PRODUCT_ORDER: "ProductOrderingNotSupported",
    OrderType.MASSIVE_ORDER: "ProductOrderingNotSupported",
    OrderType.SUBSCRIPTION_ORDER: "SubscriptionNotSupported",
    OrderType.TASKING_ORDER: "FutureProductNotSupported",
}

Resolver = Callable[[str], "str | None"]
# Why a collection's processor cannot make an item (None: it can).
ItemCheck = Callable[[CollectionConfig, ItemSpec], "str | None"]


def resolve_collection(identifier: str, collections: Sequence[CollectionConfig]) -> str | None:
    """The collection of a product given without productId/collectionId: the
    one with the longest configured identifier prefix matching it, else the
    one whose id prefixes it, else the only collection there is. (A
    processor that provides IOrderChecks is asked first: see
    :mod:`oseod.jobs.registry`.)"""
    prefixed = [(len(p), c.id) for c in collections for p in c.identifier_prefixes if identifier.startswith(p)]
    if prefixed:
        return max(prefixed)[1]
    matches = [c.id for c in collections if identifier.startswith(c.id)]
    if matches:
        return max(matches, key=len)
    return collections[0].id if len(collections) == 1 else None


def check_notification(notification: Notification, allowed_networks: Sequence[str] = (), *,
                       mail: bool = True) -> None:
    """statusNotification All or Final needs somewhere to send the call-backs:
    an http(s) wsa:ReplyTo the server may reach (not the provider's own
    network, unless ``allowed_networks`` covers it) and a wsa:MessageID; or,
    for an order placed over OData, its NotificationEndpoint (see
    :func:`check_endpoint`; ``mail``: whether e-mail is on)."""
    if notification.endpoint is not None:
        check_endpoint(notification.endpoint, allowed_networks, mail=mail)
        if not notification.reply_to:
            return
    if notification.mode is StatusNotification.NONE:
        return
    check_reply_to(notification, allowed_networks, f"statusNotification {notification.mode.value}")


MAX_ENDPOINT = 2000
_UNPRINTABLE = re.compile(r"[\s\x00-\x1f\x7f]")


def check_endpoint(endpoint: str, allowed_networks: Sequence[str], *, mail: bool) -> None:
    """An OData NotificationEndpoint: an http(s) URL whose host the server
    may reach (as a wsa:ReplyTo's), or ``mailto:`` one e-mail address (when
    e-mail is on); else InvalidParameterValue (locator NotificationEndpoint)."""
    shown = _show(_UNPRINTABLE.sub("?", endpoint[:200]) + ("..." if len(endpoint) > 200 else ""))

    def refuse(why: str) -> RequestRejected:
        return RequestRejected("InvalidParameterValue", "NotificationEndpoint", f"NotificationEndpoint {shown}: {why}")

    if not endpoint or len(endpoint) > MAX_ENDPOINT or _UNPRINTABLE.search(endpoint):
        raise refuse(f"must be an http(s):// or mailto: URL of at most {MAX_ENDPOINT} characters, "
                     "without spaces or control characters")
    parts = urlsplit(endpoint)
    scheme = parts.scheme.lower()
    if scheme == "mailto":
        if not mail:
            raise refuse("this service sends no e-mail; give an http(s):// URL")
        address = unquote(parts.path)
        if not is_mail_address(address) or parts.query or parts.fragment:
            raise refuse("mailto: needs one e-mail address, local@domain")
        try:
            smtp_address(address)
        except ValueError as e:
            raise refuse(str(e)) from None
        return
    try:
        parts.port  # noqa: B018 - raises on a bad port
        host = parts.hostname or ""
    except ValueError:
        host = ""
    if scheme not in ("http", "https") or not host:
        raise refuse("must be an http://, https:// or mailto: URL")
    if (refusal := literal_refusal(host, allowed_networks)) is not None:
        raise refuse(refusal)


def check_reply_to(notification: Notification, allowed_networks: Sequence[str], wanted_by: str) -> None:
    """What ``wanted_by`` (a statusNotification All, an asynchronous
    GetQuotation) needs to be answered by call-back: an http(s) wsa:ReplyTo
    the server may reach and a wsa:MessageID; else InvalidNotificationValue
    (locator ws-address)."""
    reply_to = notification.reply_to or ""
    parts = urlsplit(reply_to)
    try:
        parts.port  # noqa: B018 - raises on a bad port
        host = parts.hostname or ""
    except ValueError:
        host = ""
    if parts.scheme not in ("http", "https") or not host or reply_to == ANONYMOUS:
        raise RequestRejected(
            "InvalidNotificationValue", "ws-address",
            f"{wanted_by} needs a wsa:ReplyTo address (http or https) "
            f"to send the notifications to; got {_show(notification.reply_to)}",
        )  # fmt: skip
    if (refusal := literal_refusal(host, allowed_networks)) is not None:
        raise RequestRejected("InvalidNotificationValue", "ws-address",
                              f"wsa:ReplyTo {_show(reply_to)}: {refusal}")
    if not notification.message_id:
        raise RequestRejected(
            "InvalidNotificationValue", "ws-address",
            f"{wanted_by} needs a wsa:MessageID for the notifications to relate to",
        )  # fmt: skip


def effective_type(spec: OrderSpec) -> OrderType:
    """A PRODUCT_ORDER whose orderReference is "Massive order" is a massive order."""
    if spec.order_type is OrderType.PRODUCT_ORDER and spec.reference == MASSIVE_ORDER_REFERENCE:
        return OrderType.MASSIVE_ORDER
    return spec.order_type


@attrs.frozen
class CheckedOrder:
    """A Submit that passed every check: the spec as it will be stored (its
    effective type, every item with its collection), the collections it
    orders from, and whether an operator must approve it."""

    spec: OrderSpec
    collections: tuple[CollectionConfig, ...]
    manual: bool


DATE_RANGE = "DateRange"


def subscription_period(spec: OrderSpec) -> tuple[float, float] | None:
    """A subscription's DateRange option ("START/END", ISO 8601 dates and
    times, UTC unless they say otherwise) as Unix times; None without one.
    RequestRejected when it is malformed, ends before it starts, or is given
    to another order type."""
    texts = [o.value for o in (*spec.options, *(o for i in spec.items for o in i.options)) if o.name == DATE_RANGE]
    if not texts:
        return None
    if spec.order_type is not OrderType.SUBSCRIPTION_ORDER:
        raise invalid("option", f"the {DATE_RANGE} option is for subscriptions")
    if len(set(texts)) > 1:
        raise invalid("option", f"the order gives {len(set(texts))} different {DATE_RANGE}s")
    start_text, _, end_text = texts[0].partition("/")
    try:
        start, end = (_moment(t) for t in (start_text, end_text))
    except ValueError:
        raise invalid("option", f"{DATE_RANGE} {_show(texts[0])} is not START/END in ISO 8601") from None
    if end <= start:
        raise invalid("option", f"{DATE_RANGE} {_show(texts[0])} ends before it starts")
    return start, end


def _item_name(item_id: str) -> str:
    return f"item {_show(item_id)}"


def _moment(text: str) -> float:
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


class SubmitChecker:
    def __init__(self, config: Config, catalogue: Catalogue, resolve: Resolver,
                 check_item: ItemCheck = lambda collection, item: None) -> None:
        self._config = config
        self._catalogue = catalogue
        self.resolve = resolve
        self.check_item = check_item

    def check(self, account: Account, spec: OrderSpec) -> CheckedOrder:
        order_type = effective_type(spec)
        if spec.reference is not None and len(spec.reference) > MAX_REFERENCE:
            raise invalid("orderReference", f"orderReference is longer than {MAX_REFERENCE} characters")
        if not spec.items:
            raise missing("orderItem", "an order needs at least one orderItem")
        limit = self._config.orders.max_items_per_order
        if order_type is not OrderType.MASSIVE_ORDER and len(spec.items) > limit:
            raise invalid("orderItem", f"an order may hold at most {limit} items; this one has {len(spec.items)} (a "
                                       f'massive order, orderReference "{MASSIVE_ORDER_REFERENCE}", may hold more)')
        if not any(c.supports(order_type.value) for c in self._catalogue.visible_to(account)):
            # Said first: a tasking item names no collection to blame.
            raise RequestRejected(_NOT_SUPPORTED[order_type], "orderType",
                                  f"no collection offered to you accepts {order_type.value}s")
        seen: set[str] = set()
        items: list[ItemSpec] = []
        used: dict[str, CollectionConfig] = {}
        known: dict[str, CollectionConfig] = {}  # by the id the items name
        for item in spec.items:
            if len(item.item_id) > MAX_ITEM_ID:
                raise invalid("itemId", f"itemId {_show(item.item_id[:40])}... is longer than {MAX_ITEM_ID} characters")
            if not item.item_id or _UNUSABLE_ITEM_ID.search(item.item_id):
                raise invalid("itemId", f"itemId {_show(_escaped(item.item_id))} cannot name a result: an itemId "
                                        f'must not be empty, "." or "..", nor hold "/" or control characters')
            if item.item_id in seen:
                raise invalid("itemId", f"itemId {_show(item.item_id)} is used by more than one orderItem")
            seen.add(item.item_id)
            collection = self._item_collection(account, order_type, item, known)
            used.setdefault(collection.id, collection)
            if item.options:
                self._check_options(collection, item.options)
            if (refusal := self.check_item(collection, item)) is not None:
                raise invalid("orderItem", f"item {_show(item.item_id)}: {refusal}")
            if item.payment_method is not None and item.payment_method not in collection.payment_methods:
                raise invalid("paymentMethod", f"collection {_show(collection.id)} does not offer payment method "
                                               f"{_show(item.payment_method)} (offers: "
                                               f"{_choices(collection.payment_methods)})")
            if item.delivery is not None:
                self._check_delivery(collection, item.delivery, spec)
            items.append(item if item.collection_id == collection.id else attrs.evolve(item, collection_id=collection.id))
        for collection in used.values():
            self._check_options(collection, spec.options)
            if spec.delivery is not None:
                self._check_delivery(collection, spec.delivery, spec)
            if spec.packaging is not None and spec.packaging not in collection.packaging:
                raise invalid("packaging", f"collection {_show(collection.id)} does not offer packaging "
                                           f"{_show(spec.packaging)} (offers: {_choices(collection.packaging)})")
        moderation = {c.moderation or self._config.orders.moderation for c in used.values()}
        # The spec as it came when nothing was filled in (the usual Submit):
        # attrs.evolve would copy it field by field for an equal value.
        unchanged = order_type is spec.order_type and all(a is b for a, b in zip(items, spec.items))
        return CheckedOrder(
            spec=spec if unchanged else attrs.evolve(spec, order_type=order_type, items=tuple(items)),
            collections=tuple(used.values()),
            manual="manual" in moderation,
        )

    def _item_collection(self, account: Account, order_type: OrderType, item: ItemSpec,
                         known: dict[str, CollectionConfig]) -> CollectionConfig:
        """The item's collection, offered to ``account`` for ``order_type``;
        ``known``: the collections found so far for this order, by id."""
        if order_type in (OrderType.PRODUCT_ORDER, OrderType.MASSIVE_ORDER):
            if item.subscription or item.tasking_request_id is not None:
                raise invalid("orderItem", f"{_item_name(item.item_id)}: the items of a {order_type.wire} are "
                                           f"identified by productId")
            if not item.product_id:
                raise missing("productId", f"{_item_name(item.item_id)} has no productId/identifier")
            identifier = item.product_id
        elif order_type is OrderType.SUBSCRIPTION_ORDER:
            if not item.subscription or item.product_id is not None:
                raise invalid("orderItem", f"{_item_name(item.item_id)}: the items of a SUBSCRIPTION_ORDER are "
                                           f"identified by subscriptionId")
            if not item.collection_id:
                raise missing("collectionId", f"{_item_name(item.item_id)} has no subscriptionId/collectionId")
            identifier = item.collection_id
        else:
            if not item.tasking_request_id or item.subscription or item.product_id is not None:
                raise missing("taskingRequestId", f"{_item_name(item.item_id)}: the items of a TASKING_ORDER are "
                                                  f"identified by taskingRequestId")
            identifier = item.tasking_request_id
        collection_id = item.collection_id or self.resolve(identifier)
        if collection_id is not None and (found := known.get(collection_id)) is not None:
            return found  # (an order's items mostly share one collection: checked once)
        if collection_id is None:
            raise RequestRejected("UnsupportedCollection", "collectionId",
                                  f"{_item_name(item.item_id)}: cannot tell the collection of {_show(identifier)}; "
                                  f"give productId/collectionId")
        collection = self._config.collection(collection_id)
        if collection is None or not self._catalogue.may_see(account, collection):
            # Unknown and not-for-you read the same: a client learns nothing of hidden collections.
            raise RequestRejected("UnsupportedCollection", "collectionId",
                                  f"{_item_name(item.item_id)}: no collection {_show(collection_id)} is offered to you")
        if not collection.supports(order_type.value):
            what = ("massive orders (PRODUCT_ORDER with orderReference "
                    f"\"{MASSIVE_ORDER_REFERENCE}\")" if order_type is OrderType.MASSIVE_ORDER
                    else f"{order_type.value}s")
            raise RequestRejected(_NOT_SUPPORTED[order_type], "orderType",
                                  f"collection {_show(collection.id)} does not accept {what}")
        known[collection_id] = collection
        return collection

    @staticmethod
    def _check_options(collection: CollectionConfig, options: Sequence[OptionValue]) -> None:
        if not options:
            return
        offered = {o.name: o for o in collection.option}
        for option in options:
            if option.name == DATE_RANGE and DATE_RANGE not in offered:
                continue  # a subscription's period: checked by subscription_period()
            config = offered.get(option.name)
            if config is None:
                raise invalid("option", f"collection {_show(collection.id)} has no option {_show(option.name)} "
                                        f"(offers: {_choices(offered)})")
            if option.value not in config.choices:
                raise invalid("option", f"{_show(option.value)} is not a value of option {_show(option.name)} "
                                        f"(choices: {_choices(config.choices)})")

    def _check_delivery(self, collection: CollectionConfig, delivery: DeliveryChoice, spec: OrderSpec) -> None:
        if delivery.method is DeliveryMethod.ONLINE_DATA_ACCESS:
            if delivery.protocol not in collection.online_data_access:
                raise invalid("deliveryOptions",
                              f"collection {_show(collection.id)} does not offer onlineDataAccess over "
                              f"{_show(delivery.protocol)} (offers: {_choices(collection.online_data_access)})")
        elif delivery.method is DeliveryMethod.ONLINE_DATA_DELIVERY:
            if delivery.protocol not in collection.online_data_delivery:
                raise invalid("deliveryOptions",
                              f"collection {_show(collection.id)} does not offer onlineDataDelivery over "
                              f"{_show(delivery.protocol)} (offers: {_choices(collection.online_data_delivery)})")
            if not spec.online_addresses:
                raise missing("onlineAddress", "onlineDataDelivery needs at least one "
                                               "deliveryInformation/onlineAddress to deliver to")
            self._check_destination(spec, delivery.protocol or "")
        else:
            raise invalid("deliveryOptions", f"mediaDelivery is not offered by collection {_show(collection.id)} "
                                             f"(use onlineDataAccess over {_choices(collection.online_data_access)})")

    def _check_destination(self, spec: OrderSpec, protocol: str) -> None:
        """The onlineAddress a push over ``protocol`` goes to: there is one,
        it makes sense, and it is not one of the provider's own hosts (as far
        as can be told without DNS: the pusher checks the resolved address)."""
        address = delivery_address(spec, protocol)
        if address is None:
            given = _choices(sorted({a.protocol for a in spec.online_addresses}))
            raise invalid("onlineAddress", f"onlineDataDelivery over {_show(protocol)} needs a "
                                           f"deliveryInformation/onlineAddress of protocol {_show(protocol)} "
                                           f"(given: {given})")
        try:
            destination = push_destination(address)
        except BadDestination as e:
            raise invalid("onlineAddress", f"deliveryInformation/onlineAddress: {e}") from None
        refusal = literal_refusal(destination.host, self._config.notifications.allowed_networks)
        if refusal is not None:
            raise invalid("onlineAddress", f"deliveryInformation/onlineAddress: {refusal}")


def _escaped(text: str) -> str:
    """``text`` with its control characters written as escapes (a fault's
    text cannot carry most of them)."""
    return "".join(c if c.isprintable() or c == " " else f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"
                   for c in text)


def _show(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) else "none"


def _choices(values: Iterable[str]) -> str:
    return ", ".join(values) or "none"
