"""The ODIP completion notification: what an order placed with a
NotificationEndpoint sends there once it has completed.

ODIP (rest-ordering.md §1) POSTs one JSON object per completion, with HTTP
Basic from NotificationEpUsername/Password; its ids are in UUID form (the
order's as :func:`oseod.odata.ids.order_uuid` makes it, the product's as
:func:`oseod.odata.ids.product_uuid`). A ``mailto:`` endpoint gets the same
facts as an e-mail. There is no message for a failed or cancelled order: ODIP
has none.

Pure: the bodies and texts only; :mod:`oseod.notify.odip` sends them.
"""

from __future__ import annotations

import json
from urllib.parse import unquote, urlsplit

import attrs

from .ids import order_uuid, product_uuid
from .values import iso_time

CONTEXT = "$metadata#Notification/$entity"
CONTENT_TYPE = "application/json"
# The answers that acknowledge a notification; anything else is a failed attempt.
DELIVERED = frozenset({200, 201, 202, 204})


def sealed_name(owner: str) -> str:
    """The name ``owner``'s NotificationEpPassword is sealed under:
    ``SecretBox.seal(sealed_name(owner), endpoint, password)``, opened with
    ``SecretBox.unseal(sealed_name(owner), endpoint, sealed)``. Bound to the
    owner and the endpoint: a sealed password copied to another order's
    endpoint does not open."""
    return f"odata-notification:{owner}"


@attrs.frozen
class CompletedProduct:
    """One product of a completed order, as the notification names it."""

    order_id: str  # the OSEO orderId
    item_id: str
    name: str  # its file name, or the product identifier it was made from

    @property
    def product_id(self) -> str:
        return product_uuid(self.order_id, self.item_id)

    @property
    def production_order_id(self) -> str:
        return order_uuid(self.order_id)


def completion_body(product: CompletedProduct, notified_at: float) -> bytes:
    """The JSON POSTed to the NotificationEndpoint (UTF-8)."""
    return json.dumps({
        "@odata.context": CONTEXT,
        "ProductId": product.product_id,
        "ProductName": product.name,
        "ProductionOrderId": product.production_order_id,
        "NotificationDate": iso_time(notified_at),
    }, ensure_ascii=False).encode("utf-8")


def mail_recipient(endpoint: str) -> str | None:
    """The address a ``mailto:`` endpoint names (its first, without the
    query); None for any other endpoint."""
    parts = urlsplit(endpoint)
    if parts.scheme.lower() != "mailto":
        return None
    return unquote(parts.path).split(",")[0].strip()


@attrs.frozen
class CompletionMail:
    subject: str
    body: str


def completion_mail(products: list[CompletedProduct], completed_at: float, *, service: str) -> CompletionMail:
    """The e-mail a ``mailto:`` endpoint gets when its order completed: the
    order's Id and each product, as the JSON notification would name them."""
    order = products[0].production_order_id if products else ""
    lines = [f"Order {order} has completed (at {iso_time(completed_at)}).", "",
             f"Order Id: {order}"]
    if products:
        lines.append(f"OSEO orderId: {products[0].order_id}")
    lines.append("")
    for product in products:
        lines += [f"Product: {product.name}", f"Product Id: {product.product_id}", ""]
    lines.append(f"-- {service}" if service else "--")
    return CompletionMail(f"Order {order} completed", "\n".join(lines) + "\n")
