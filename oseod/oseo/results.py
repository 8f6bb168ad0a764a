"""DescribeResultAccess: where the completed items of an order can be
fetched (OGC 06-141r6 §15; oseo.xsd DescribeResultAccessRequestType,
ItemURLType). Only onlineDataAccess items have such addresses."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

import attrs
from lxml import etree

from oseod.oseo.common import (
    request_children,
    content,
    date_time,
    format_date_time,
    response,
    string,
    sub,
    token,
)
from oseod.oseo.namespaces import OSEO


@attrs.frozen
class DescribeResultAccessRequest:
    """``next_ready``: only the items completed since the previous
    DescribeResultAccess of the order, whatever its subFunction (nextReady);
    otherwise all of them (allReady). ``since``: the request's timeStamp
    (aware, UTC) when given; with nextReady, the items completed at or after
    that time instead of since the previous call."""

    order_id: str
    next_ready: bool
    since: datetime | None = None


_KNOWN: Final = content("timeStamp", "orderId", "subFunction")


def parse_describe_result_access(payload: etree._Element) -> DescribeResultAccessRequest:
    """The request carried by an ``oseo:DescribeResultAccess`` element."""
    children = request_children(payload, "DescribeResultAccess", _KNOWN)
    # request_children checked the timeStamp (first child when present).
    stamp = payload.find(f"{{{OSEO}}}timeStamp")
    since = date_time(stamp) if stamp is not None else None
    order_id = string(children.required("orderId"), required=True)
    sub_function = token(children.required("subFunction"), ("allReady", "nextReady"))
    children.finish()
    return DescribeResultAccessRequest(order_id, sub_function == "nextReady", since)


@attrs.frozen
class ItemURL:
    """Where one item's result is: ``url`` (ResourceAddress/URL), until
    ``expiration`` (an aware datetime) when known."""

    item_id: str
    url: str
    product_id: str | None = None
    expiration: datetime | None = None


def render_describe_result_access_response(urls: Sequence[ItemURL]) -> etree._Element:
    """The ``oseo:DescribeResultAccessResponse``: status success, one URLs
    entry per item."""
    root = response("DescribeResultAccessResponse")
    for item in urls:
        entry = sub(root, "URLs")
        sub(entry, "itemId", item.item_id)
        if item.product_id is not None:
            sub(sub(entry, "productId"), "identifier", item.product_id)
        sub(sub(sub(entry, "itemAddress"), "ResourceAddress"), "URL", item.url)
        if item.expiration is not None:
            sub(entry, "expirationDate", format_date_time(item.expiration))
    return root
