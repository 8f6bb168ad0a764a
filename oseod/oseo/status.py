"""GetStatus: one order by id, or a search; and the order monitor
specification that GetStatus, SubmitResponse and CancelResponse carry
(OGC 06-141r6 §14; oseo.xsd GetStatusRequestType, OrderSearchCriteriaType,
CommonOrderMonitorSpecification).

A monitor specification repeats what the client ordered: its own XML
fragments where the Submit gave them, otherwise the values of the spec
(orders the core built itself), in the order of CommonOrderSpecification.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Final

import attrs
from lxml import etree

from oseod.model.orders import (
    DeliveryChoice,
    DeliveryMethod,
    ItemSpec,
    OnlineAddress,
    OptionValue,
    Order,
    OrderSpec,
    OrderStatus,
    StatusInfo,
)
from oseod.oseo.common import (
    request_children,
    RESPONSE_NSMAP,
    Children,
    append_fragments,
    content,
    date_time,
    format_date_time,
    oseo,
    response,
    simple_text,
    string,
    sub,
    token,
)
from oseod.oseo.errors import xml_safe
from oseod.oseo.soap import serialise


@attrs.frozen
class SearchCriteria:
    """Order search (filteringCriteria); an absent criterion restricts
    nothing. Times are aware UTC; ``last_update_end`` is inclusive."""

    last_update: datetime | None = None
    last_update_end: datetime | None = None
    statuses: frozenset[OrderStatus] = frozenset()
    reference: str | None = None


@attrs.frozen
class GetStatusRequest:
    """Either ``order_id`` or ``criteria``; ``full`` asks for the items too."""

    order_id: str | None
    criteria: SearchCriteria | None
    full: bool


_GET_STATUS: Final = content("timeStamp", "orderId", "filteringCriteria", "presentation")
_CRITERIA: Final = content("lastUpdate", "lastUpdateEnd", "orderStatus", "orderReference", "extension")
_STATUSES: Final = tuple(status.value for status in OrderStatus)


def _criteria(element: etree._Element) -> SearchCriteria:
    children = Children(element, _CRITERIA)
    last_update = last_update_end = reference = None
    if (start := children.optional("lastUpdate")) is not None:
        # xs:dateTime; a bare date (what the standard's prose table shows)
        # means that day's first instant.
        last_update = date_time(start, allow_date=True)
    if (end := children.optional("lastUpdateEnd")) is not None:
        # No type in the XSD: a date means up to the end of that day.
        last_update_end = date_time(end, allow_date=True, end_of_day=True)
    statuses = frozenset(OrderStatus(token(status, _STATUSES)) for status in children.repeated("orderStatus"))
    if (reference_el := children.optional("orderReference")) is not None:
        reference = string(reference_el, 30, min_length=1)
    for extension in children.repeated("extension"):
        simple_text(extension)  # implementation-specific criteria: none are defined here
    children.finish()
    return SearchCriteria(last_update, last_update_end, statuses, reference)


def parse_get_status(payload: etree._Element) -> GetStatusRequest:
    """The request carried by an ``oseo:GetStatus`` element."""
    children = request_children(payload, "GetStatus", _GET_STATUS)
    first = children.choice("orderId", "filteringCriteria")
    order_id = criteria = None
    if first.tag == oseo("orderId"):
        order_id = string(first, required=True)
    else:
        criteria = _criteria(first)
    full = token(children.required("presentation"), ("brief", "full")) == "full"
    children.finish()
    return GetStatusRequest(order_id, criteria, full)


# ------------------------------------------------------------------- rendering


def _status_info(parent: etree._Element, local: str, info: StatusInfo) -> None:
    element = sub(parent, local)
    sub(element, "status", info.status.value)
    if info.additional_info:
        sub(element, "additionalStatusInfo", xml_safe(info.additional_info, 4000))
    if info.mission_specific_info:
        sub(element, "missionSpecificStatusInfo", xml_safe(info.mission_specific_info, 4000))


def _options(parent: etree._Element, options: tuple[OptionValue, ...]) -> None:
    """An option element for values that came without the client's XML."""
    if not options:
        return
    data = sub(sub(parent, "option"), "ParameterData")
    sub(data, "encoding", "XMLEncoding")
    values = sub(data, "values")
    for option in options:
        try:
            etree.SubElement(values, option.name).text = option.value
        except ValueError:  # not an XML name: it cannot be written as one
            continue


def _delivery_options(parent: etree._Element, choice: DeliveryChoice | None) -> None:
    if choice is None:
        return
    if choice.method is DeliveryMethod.MEDIA_DELIVERY:
        if choice.package_medium:
            sub(sub(sub(parent, "deliveryOptions"), "mediaDelivery"), "packageMedium", choice.package_medium)
    elif choice.protocol:
        sub(sub(sub(parent, "deliveryOptions"), choice.method.value), "protocol", choice.protocol)


def _delivery_information(parent: etree._Element, addresses: tuple[OnlineAddress, ...]) -> None:
    if not addresses:
        return
    information = sub(parent, "deliveryInformation")
    for address in addresses:
        element = sub(information, "onlineAddress")
        sub(element, "protocol", address.protocol)
        sub(element, "serverAddress", address.server_address)
        for local, value in (("userName", address.user_name), ("userPassword", address.user_password),
                             ("path", address.path)):
            if value is not None:
                sub(element, local, value)


def _order_fields(parent: etree._Element, spec: OrderSpec) -> None:
    """CommonOrderSpecification, in schema order."""
    fragments = spec.fragments
    if spec.reference:
        sub(parent, "orderReference", spec.reference)
    if spec.remark:
        sub(parent, "orderRemark", spec.remark)
    if not append_fragments(parent, fragments, "deliveryInformation"):
        _delivery_information(parent, spec.online_addresses)
    append_fragments(parent, fragments, "invoiceAddress")
    if spec.packaging:
        sub(parent, "packaging", spec.packaging)
    if not append_fragments(parent, fragments, "option"):
        _options(parent, spec.options)
    if not append_fragments(parent, fragments, "deliveryOptions"):
        _delivery_options(parent, spec.delivery)
    if spec.priority is not None:
        sub(parent, "priority", spec.priority.value)
    sub(parent, "orderType", spec.order_type.wire)
    append_fragments(parent, fragments, "extension")


def _item_fields(parent: etree._Element, spec: ItemSpec) -> None:
    """CommonOrderItemType, in schema order."""
    fragments = spec.fragments
    sub(parent, "itemId", spec.item_id)
    if spec.product_order_options_id:
        sub(parent, "productOrderOptionsId", spec.product_order_options_id)
    if spec.remark is not None:
        sub(parent, "orderItemRemark", spec.remark)
    if not append_fragments(parent, fragments, "option"):
        _options(parent, spec.options)
    append_fragments(parent, fragments, "sceneSelection")
    if not append_fragments(parent, fragments, "deliveryOptions"):
        _delivery_options(parent, spec.delivery)
    if not append_fragments(parent, fragments, "payment") and spec.payment_method:
        sub(sub(parent, "payment"), "paymentMethod", spec.payment_method)
    append_fragments(parent, fragments, "extension")
    append_item_identity(parent, spec)


def append_item_identity(parent: etree._Element, spec: ItemSpec) -> None:
    """The productId, taskingRequestId or subscriptionId of an item (order
    items, and the items of a quotation)."""
    if spec.tasking_request_id is not None:
        sub(sub(parent, "taskingRequestId"), "ID", spec.tasking_request_id)
    elif spec.subscription and spec.collection_id:
        sub(sub(parent, "subscriptionId"), "collectionId", spec.collection_id)
    else:
        product = sub(parent, "productId")
        sub(product, "identifier", spec.product_id or "")
        if spec.collection_id:
            sub(product, "collectionId", spec.collection_id)


def _monitor(element: etree._Element, order: Order, full: bool) -> etree._Element:
    _order_fields(element, order.spec)
    sub(element, "orderId", order.order_id)
    _status_info(element, "orderStatusInfo", order.status)
    sub(element, "orderDateTime", format_date_time(order.created_at))
    if full:
        for item in order.items:
            entry = sub(element, "orderItem")
            _item_fields(entry, item.spec)
            _status_info(entry, "orderItemStatusInfo", item.status)
    return element


def render_order_monitor_specification(order: Order, full: bool = True) -> etree._Element:
    """A standalone ``oseo:orderMonitorSpecification`` (the body of the
    SubmitResponse and CancelResponse call-backs)."""
    return _monitor(etree.Element(oseo("orderMonitorSpecification"), nsmap=RESPONSE_NSMAP), order, full)


def serialise_order_monitor(order: Order, full: bool) -> bytes:
    """One orderMonitorSpecification of a GetStatusResponse, serialised on
    its own (it declares what it uses), for :func:`render_get_status_response`.
    It depends on nothing but the order: callers may keep it while the
    order's version stays the same."""
    return serialise(render_order_monitor_specification(order, full))


def _response_frame() -> tuple[bytes, bytes]:
    document = serialise(response("GetStatusResponse"))
    end = document.rindex(b"</")
    return document[:end], document[end:]


_RESPONSE_HEAD, _RESPONSE_TAIL = _response_frame()


def render_get_status_response(monitors: Iterable[bytes]) -> bytes:
    """The ``oseo:GetStatusResponse`` (status success) around the
    orderMonitorSpecifications of :func:`serialise_order_monitor`."""
    return b"".join((_RESPONSE_HEAD, *monitors, _RESPONSE_TAIL))
