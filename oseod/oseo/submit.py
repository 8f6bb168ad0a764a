"""Submit: an order specification (or a quotation to order), and the
SubmitAck (OGC 06-141r6 §12; oseo.xsd SubmitOrderRequestType,
OrderSpecification, CommonOrderItemType).

The parser checks everything oseo.xsd constrains and keeps, next to the
values the core works with, the client's own XML (addresses, options, scene
selections, delivery options, payment, extensions) as ``Fragment``s, so that
GetStatus and the call-backs echo them exactly.
"""

from __future__ import annotations

import copy
from typing import Final

import attrs
from lxml import etree

from oseod.model.orders import (
    DeliveryChoice,
    DeliveryMethod,
    Fragment,
    ItemSpec,
    OnlineAddress,
    OptionValue,
    OrderSpec,
    OrderType,
    Priority,
    StatusNotification,
)
from oseod.oseo.common import (
    request_children,
    ENCODINGS,
    ORDER_TYPES,
    PACKAGE_MEDIA,
    PACKAGING,
    PROTOCOLS,
    SHIPPING_INSTRUCTIONS,
    Children,
    content,
    fragment,
    integer,
    is_nil,
    local_name,
    oseo,
    response,
    simple_text,
    string,
    sub,
    tasking_request_id_of,
    token,
)
from oseod.oseo.errors import OseoError, quote
from oseod.oseo.namespaces import OSEO, OSEO_ELEMENTS, STANDARD


@attrs.frozen
class SubmitRequest:
    """Either ``spec`` (an orderSpecification) or ``quotation_id``."""

    spec: OrderSpec | None
    quotation_id: str | None
    status_notification: StatusNotification


# The local names each content model allows, in schema order.
_SUBMIT: Final = content("timeStamp", "orderSpecification", "quotationId", "statusNotification")
_ORDER: Final = content("orderReference", "orderRemark", "deliveryInformation", "invoiceAddress", "packaging",
                        "option", "deliveryOptions", "priority", "orderType", "extension", "orderItem")
_ITEM: Final = content("itemId", "productOrderOptionsId", "orderItemRemark", "option", "sceneSelection",
                       "deliveryOptions", "payment", "extension", "productId", "taskingRequestId", "subscriptionId")
_DELIVERY_INFORMATION: Final = content("onlineAddress", "mailAddress")
_ONLINE_ADDRESS: Final = content("protocol", "serverAddress", "userName", "userPassword", "path")
_ADDRESS: Final = content("firstName", "lastName", "companyRef", "postalAddress", "telephoneNumber",
                          "facsimileTelephoneNumber")
_POSTAL_ADDRESS: Final = content("streetAddress", "city", "state", "postalCode", "country", "postBox")
_DELIVERY_OPTIONS: Final = content("onlineDataAccess", "onlineDataDelivery", "mediaDelivery", "numberOfCopies",
                                   "productAnnotation", "specialInstructions")
_MEDIA_DELIVERY: Final = content("packageMedium", "shippingInstructions")
_PARAMETER: Final = content("ParameterData")
_PARAMETER_DATA: Final = content("encoding", "values")
_PAYMENT: Final = content("paymentMethod", "orderAccount", "creditCardInfo")
_PRODUCT_ID: Final = content("identifier", "collectionId")
_SUBSCRIPTION_ID: Final = content("collectionId")
_ONLINE_METHOD: Final = content("protocol")

_NOTIFICATIONS: Final = tuple(mode.value for mode in StatusNotification)
_PRIORITIES: Final = tuple(priority.value for priority in Priority)
# The item identifier each order type takes.
_ITEM_IDENTIFIER: Final = {
    OrderType.PRODUCT_ORDER: "productId",
    OrderType.SUBSCRIPTION_ORDER: "subscriptionId",
    OrderType.TASKING_ORDER: "taskingRequestId",
}


# ------------------------------------------------------------------- addresses


def _optional_string(children: Children, local: str, max_length: int, min_length: int = 0) -> str | None:
    element = children.optional(local)
    if element is None:
        return None
    return string(element, max_length, min_length=min_length) or None


def _online_address(element: etree._Element) -> OnlineAddress:
    children = Children(element, _ONLINE_ADDRESS)
    protocol = token(children.required("protocol"), PROTOCOLS)
    server = string(children.required("serverAddress"), 255, required=True)
    user = _optional_string(children, "userName", 8)
    password = _optional_string(children, "userPassword", 20)
    path = _optional_string(children, "path", 1024)
    children.finish()
    return OnlineAddress(protocol, server, user, password, path)


def _address(element: etree._Element) -> None:
    """Check a DeliveryAddressType (mailAddress, invoiceAddress)."""
    children = Children(element, _ADDRESS)
    for local in ("firstName", "lastName", "companyRef"):
        _optional_string(children, local, 40, 1)
    postal = children.optional("postalAddress")
    if postal is not None:
        parts = Children(postal, _POSTAL_ADDRESS)
        for local, limit in (("streetAddress", 40), ("city", 40), ("state", 40), ("postalCode", 12),
                             ("country", 40)):
            string(parts.required(local), limit)
        _optional_string(parts, "postBox", 12)
        parts.finish()
    _optional_string(children, "telephoneNumber", 18, 1)
    _optional_string(children, "facsimileTelephoneNumber", 18, 1)
    children.finish()


def _delivery_information(element: etree._Element) -> tuple[OnlineAddress, ...]:
    children = Children(element, _DELIVERY_INFORMATION)
    addresses = tuple(_online_address(address) for address in children.repeated("onlineAddress"))
    mail = children.optional("mailAddress")
    if mail is not None:
        _address(mail)
    children.finish()
    return addresses


# --------------------------------------------------------------------- options


def _parameter_data(element: etree._Element) -> tuple[OptionValue, ...]:
    """Check an option or sceneSelection element (one ParameterData); the
    values it sets, one per element inside ``values``."""
    holder = Children(element, _PARAMETER)
    data = holder.required("ParameterData")
    holder.finish()
    children = Children(data, _PARAMETER_DATA)
    token(children.required("encoding"), ENCODINGS)
    values = children.required("values")
    children.finish()
    _own_vocabulary(values)
    return tuple(
        OptionValue(local_name(child), (child.text or "").strip()) for child in values if isinstance(child.tag, str)
    )


def _own_vocabulary(values: etree._Element) -> None:
    """Option values are the provider's own vocabulary: a name the standard
    schemas declare would be schema-checked wherever we echo it (lax anyType)."""
    for element in values.iterdescendants():
        if not isinstance(element.tag, str):
            continue  # comments and processing instructions
        tag = etree.QName(element)
        if tag.namespace == OSEO and tag.localname in OSEO_ELEMENTS:
            raise OseoError.invalid(
                "values", f"option value {quote(tag.localname)} is an element of OSEO itself: "
                "option values use the provider's own names",
            )
        for name in (element.tag, *element.attrib):
            qualified = etree.QName(name)
            if qualified.namespace in STANDARD:
                raise OseoError.invalid(
                    "values",
                    f"option value {quote(qualified.localname)} is in the standard namespace "
                    f"{qualified.namespace}: option values use the provider's own namespace or none",
                )


def _delivery_options(element: etree._Element) -> DeliveryChoice:
    children = Children(element, _DELIVERY_OPTIONS)
    method = children.choice("onlineDataAccess", "onlineDataDelivery", "mediaDelivery")
    if method.tag == oseo("mediaDelivery"):
        media = Children(method, _MEDIA_DELIVERY)
        medium = token(media.required("packageMedium"), PACKAGE_MEDIA)
        if (shipping := media.optional("shippingInstructions")) is not None:
            token(shipping, SHIPPING_INSTRUCTIONS)
        media.finish()
        choice = DeliveryChoice(DeliveryMethod.MEDIA_DELIVERY, package_medium=medium)
    else:
        online = Children(method, _ONLINE_METHOD)
        protocol = token(online.required("protocol"), PROTOCOLS)
        online.finish()
        choice = DeliveryChoice(DeliveryMethod(local_name(method)), protocol=protocol)
    if (copies := children.optional("numberOfCopies")) is not None:
        integer(copies)
    _optional_string(children, "productAnnotation", 4000)
    _optional_string(children, "specialInstructions", 4000)
    children.finish()
    return choice


def _payment(element: etree._Element) -> tuple[str, Fragment]:
    """The payment method, and the payment kept for the echo with all but the
    last four characters of a creditCardInfo masked: card data is not
    stored nor sent back."""
    children = Children(element, _PAYMENT)
    method = string(children.required("paymentMethod"), 40, required=True)
    # orderAccount or creditCardInfo (or neither): an xs:choice.
    account = _optional_string(children, "orderAccount", 20, 1)
    card = children.optional("creditCardInfo") if account is None else None
    number = string(card, 255) if card is not None else ""
    children.finish()
    if card is None:
        return method, fragment(element)
    twin = copy.deepcopy(element)
    masked = twin.find(oseo("creditCardInfo"))
    assert masked is not None
    masked.text = "*" * max(len(number) - 4, 0) + number[-4:]
    return method, fragment(twin)


def _extension(element: etree._Element) -> Fragment:
    simple_text(element)  # xs:anySimpleType: text, no elements
    return fragment(element)


# ----------------------------------------------------------------------- items


@attrs.frozen
class _ItemExtras:
    """What an orderItem may hold between its itemId and its identity."""

    options_id: str | None = None
    remark: str | None = None
    options: tuple[OptionValue, ...] = ()
    delivery: DeliveryChoice | None = None
    payment_method: str | None = None
    fragments: tuple[Fragment, ...] = ()


_NO_EXTRAS: Final = _ItemExtras()
_ITEM_IDENTITIES: Final = ("productId", "taskingRequestId", "subscriptionId")


def _item_extras(children: Children) -> _ItemExtras:
    fragments: list[Fragment] = []
    options_id = _optional_string(children, "productOrderOptionsId", 40, 1)
    remark = None
    if (remark_el := children.optional("orderItemRemark")) is not None:
        remark = string(remark_el, 4000)  # no minimum length: an empty remark is echoed too
    options: list[OptionValue] = []
    for option in children.repeated("option"):
        options.extend(_parameter_data(option))
        fragments.append(fragment(option))
    for selection in children.repeated("sceneSelection"):
        _parameter_data(selection)
        fragments.append(fragment(selection))
    delivery = None
    if (delivery_el := children.optional("deliveryOptions")) is not None:
        delivery = _delivery_options(delivery_el)
        fragments.append(fragment(delivery_el))
    payment_method = None
    if (payment := children.optional("payment")) is not None:
        payment_method, kept = _payment(payment)
        fragments.append(kept)
    fragments.extend(_extension(extension) for extension in children.repeated("extension"))
    return _ItemExtras(options_id, remark, tuple(options), delivery, payment_method, tuple(fragments))


_ITEM_ID_TAG: Final = oseo("itemId")
_PRODUCT_ID_TAG: Final = oseo("productId")
_IDENTIFIER_TAG: Final = oseo("identifier")
_COLLECTION_ID_TAG: Final = oseo("collectionId")


def _plain_product_item(element: etree._Element) -> ItemSpec | None:
    """The commonest item, read in one pass: an itemId and a productId of an
    identifier and an optional collectionId, nothing else, all within their
    limits. None for any other item, which _item then reads (and refuses,
    saying why): this path only ever accepts what _item accepts, the same
    way. A Submit of many items spends most of its parsing here, so the
    tests are written out (each text, tail and tag read once, no helper
    called): a text between elements must be blank, a leaf has no
    children and its text is stripped."""
    if len(element) != 2:
        return None
    text = element.text
    if text and not text.isspace():
        return None
    # (Indexed, not unpacked: iterating an element costs twice as much.)
    item_id_element = element[0]
    identity = element[1]
    if item_id_element.tag != _ITEM_ID_TAG or identity.tag != _PRODUCT_ID_TAG or len(item_id_element):
        return None
    text = item_id_element.tail
    if text and not text.isspace():
        return None
    text = identity.tail
    if text and not text.isspace():
        return None
    text = identity.text
    if text and not text.isspace():
        return None
    parts = len(identity)
    collection_id = None
    if parts == 1:
        identifier = identity[0]
    elif parts == 2:
        identifier = identity[0]
        collection = identity[1]
        if collection.tag != _COLLECTION_ID_TAG or len(collection):
            return None
        text = collection.tail
        if text and not text.isspace():
            return None
        collection_id = (collection.text or "").strip()
        if not collection_id or len(collection_id) > 255:
            return None
    else:
        return None
    if identifier.tag != _IDENTIFIER_TAG or len(identifier):
        return None
    text = identifier.tail
    if text and not text.isspace():
        return None
    item_id = (item_id_element.text or "").strip()
    product_id = (identifier.text or "").strip()
    if not item_id or len(item_id) > 80 or not product_id:
        return None
    # (Positional: keywords cost a sixth of the item's construction.)
    return ItemSpec(item_id, product_id, collection_id)


def _item(element: etree._Element, order_type: OrderType) -> ItemSpec:
    children = Children(element, _ITEM)
    item_id = string(children.required("itemId"), 80, required=True)
    # Most items hold nothing but their id and identity.
    extras = _NO_EXTRAS if children.next_name in _ITEM_IDENTITIES else _item_extras(children)
    identity = children.choice(*_ITEM_IDENTITIES)
    children.finish()

    kind = local_name(identity)
    if kind != _ITEM_IDENTIFIER[order_type]:
        raise OseoError.invalid(
            kind,
            f"item {quote(item_id)}: the items of a {order_type.value} are identified by "
            f"{_ITEM_IDENTIFIER[order_type]}, not {kind}",
        )
    product_id = collection_id = tasking_id = None
    if kind == "productId":
        parts = Children(identity, _PRODUCT_ID)
        product_id = string(parts.required("identifier"), required=True)
        if (collection := parts.optional("collectionId")) is not None:
            collection_id = string(collection, 255, required=True)
        parts.finish()
    elif kind == "subscriptionId":
        parts = Children(identity, _SUBSCRIPTION_ID)
        collection_id = string(parts.required("collectionId"), 255, required=True)
        parts.finish()
    else:
        tasking_id = tasking_request_id_of(identity)
    return ItemSpec(
        item_id=item_id,
        product_id=product_id,
        collection_id=collection_id,
        tasking_request_id=tasking_id,
        subscription=kind == "subscriptionId",
        product_order_options_id=extras.options_id,
        remark=extras.remark,
        options=extras.options,
        delivery=extras.delivery,
        payment_method=extras.payment_method,
        fragments=extras.fragments,
    )


# ----------------------------------------------------------------------- order


def parse_order_specification(element: etree._Element) -> OrderSpec:
    """An ``orderSpecification`` (Submit, GetQuotation). ``order_type`` is
    the type on the wire: whether a product order is a massive one is the
    core's decision."""
    children = Children(element, _ORDER)
    fragments: list[Fragment] = []
    reference = _optional_string(children, "orderReference", 30, 1)
    remark = _optional_string(children, "orderRemark", 4000, 1)
    online_addresses: tuple[OnlineAddress, ...] = ()
    if (information := children.optional("deliveryInformation")) is not None:
        online_addresses = _delivery_information(information)
        fragments.append(fragment(information))
    if (invoice := children.optional("invoiceAddress")) is not None:
        _address(invoice)
        fragments.append(fragment(invoice))
    packaging = None
    if (packaging_el := children.optional("packaging")) is not None and not is_nil(packaging_el):
        packaging = token(packaging_el, PACKAGING)
    options: list[OptionValue] = []
    for option in children.repeated("option"):
        options.extend(_parameter_data(option))
        fragments.append(fragment(option))
    delivery = None
    if (delivery_el := children.optional("deliveryOptions")) is not None:
        delivery = _delivery_options(delivery_el)
        fragments.append(fragment(delivery_el))
    priority = None
    if (priority_el := children.optional("priority")) is not None:
        priority = Priority(token(priority_el, _PRIORITIES))
    order_type = OrderType(token(children.required("orderType"), ORDER_TYPES))
    fragments.extend(_extension(extension) for extension in children.repeated("extension"))
    item_elements = [children.required("orderItem"), *children.repeated("orderItem")]
    children.finish()

    if _ITEM_IDENTIFIER[order_type] == "productId":
        items = tuple(_plain_product_item(item) or _item(item, order_type) for item in item_elements)
    else:
        items = tuple(_item(item, order_type) for item in item_elements)
    seen: set[str] = set()
    for item in items:
        if item.item_id in seen:
            raise OseoError.invalid("itemId", f"itemId {quote(item.item_id)} is used by more than one orderItem")
        seen.add(item.item_id)
    return OrderSpec(
        order_type=order_type,
        items=items,
        reference=reference,
        remark=remark,
        packaging=packaging,
        priority=priority,
        options=tuple(options),
        delivery=delivery,
        online_addresses=online_addresses,
        fragments=tuple(fragments),
    )


def parse_submit(payload: etree._Element) -> SubmitRequest:
    """The request carried by an ``oseo:Submit`` element."""
    children = request_children(payload, "Submit", _SUBMIT)
    first = children.choice("orderSpecification", "quotationId")
    spec = quotation_id = None
    if first.tag == oseo("orderSpecification"):
        spec = parse_order_specification(first)
    else:
        quotation_id = string(first, required=True)
    notification = StatusNotification(token(children.required("statusNotification"), _NOTIFICATIONS))
    children.finish()
    return SubmitRequest(spec, quotation_id, notification)


def render_submit_ack(order_id: str, order_reference: str | None) -> etree._Element:
    """The ``oseo:SubmitAck``: status success, the new orderId and the
    client's orderReference."""
    root = response("SubmitAck")
    sub(root, "orderId", order_id)
    if order_reference:
        sub(root, "orderReference", order_reference)
    return root
