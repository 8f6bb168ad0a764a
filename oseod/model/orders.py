"""Orders as values: what a client asked for and what became of it.

Shared by the OSEO vocabulary (which parses requests into these and renders
responses from them), the ordering core (which validates and changes them)
and the store (which keeps them). Nothing here does I/O or knows XML: the
client's own XML fragments that OSEO asks us to echo back (addresses,
extensions, scene selections...) travel as opaque strings.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

import attrs


class OrderStatus(enum.Enum):
    Submitted = "Submitted"
    Accepted = "Accepted"
    InProduction = "InProduction"
    Suspended = "Suspended"
    Cancelled = "Cancelled"
    Completed = "Completed"
    Failed = "Failed"
    Terminated = "Terminated"
    Downloaded = "Downloaded"

    @property
    def is_final(self) -> bool:
        return self in _FINAL


_FINAL = frozenset({OrderStatus.Cancelled, OrderStatus.Completed, OrderStatus.Failed, OrderStatus.Terminated,
                    OrderStatus.Downloaded})


class OrderType(enum.Enum):
    """The wire's three types, plus MASSIVE_ORDER: a PRODUCT_ORDER whose
    orderReference is "Massive order", processed in batches."""

    PRODUCT_ORDER = "PRODUCT_ORDER"
    SUBSCRIPTION_ORDER = "SUBSCRIPTION_ORDER"
    TASKING_ORDER = "TASKING_ORDER"
    MASSIVE_ORDER = "MASSIVE_ORDER"

    @property
    def wire(self) -> str:
        return "PRODUCT_ORDER" if self is OrderType.MASSIVE_ORDER else self.value


MASSIVE_ORDER_REFERENCE = "Massive order"


class StatusNotification(enum.Enum):
    NONE = "None"
    FINAL = "Final"
    ALL = "All"


class Priority(enum.Enum):
    STANDARD = "STANDARD"
    FAST_TRACK = "FAST_TRACK"


class DeliveryMethod(enum.Enum):
    ONLINE_DATA_ACCESS = "onlineDataAccess"
    ONLINE_DATA_DELIVERY = "onlineDataDelivery"
    MEDIA_DELIVERY = "mediaDelivery"


@attrs.frozen
class Fragment:
    """A client-supplied XML element kept verbatim to be echoed back:
    ``name`` is its local name (deliveryInformation, extension, ...), ``xml``
    its serialisation. Only the OSEO vocabulary reads or writes ``xml``."""

    name: str
    xml: str


@attrs.frozen
class OptionValue:
    """One chosen processing option: the local name of an element inside
    ParameterData/values, and its text."""

    name: str
    value: str


@attrs.frozen
class DeliveryChoice:
    """The semantic part of a deliveryOptions element (its full text is kept
    as a Fragment for the echo)."""

    method: DeliveryMethod
    protocol: str | None = None  # onlineDataAccess / onlineDataDelivery
    package_medium: str | None = None  # mediaDelivery


@attrs.frozen
class OnlineAddress:
    """A client's own server for onlineDataDelivery (deliveryInformation)."""

    protocol: str
    server_address: str
    user_name: str | None = None
    user_password: str | None = attrs.field(default=None, repr=False)
    path: str | None = None


@attrs.frozen
class ItemSpec:
    """One orderItem as the client specified it."""

    item_id: str
    product_id: str | None = None  # productId/identifier
    collection_id: str | None = None  # productId/collectionId or subscriptionId/collectionId
    tasking_request_id: str | None = None
    subscription: bool = False
    product_order_options_id: str | None = None
    remark: str | None = None
    options: tuple[OptionValue, ...] = ()
    delivery: DeliveryChoice | None = None
    payment_method: str | None = None
    # option, sceneSelection, deliveryOptions, payment, extension: verbatim, in document order.
    fragments: tuple[Fragment, ...] = ()


class RestKind(enum.Enum):
    """Which OData door an order came in by (rest-ordering.md): an ODIP
    ProductionOrder, an LTA product order, or a batch order (a massive order)."""

    PRODUCTION = "production"
    PRODUCT = "product"
    BATCH = "batch"


@attrs.frozen
class RestOrder:
    """What an order placed over OData said that OSEO has no element for.
    An order placed over SOAP has none, and OData shows it with defaults."""

    kind: RestKind
    priority: int = 50  # 1-100; the OSEO Priority says FAST_TRACK above 50
    name: str | None = None  # CDSE's Name label
    workflow: str | None = None  # the Workflow's Name
    # InputProductReference.ContentDate, as sent (ISO 8601 text).
    content_start: str | None = None
    content_end: str | None = None
    batch_size: int | None = None  # BatchOrder: items per batch the client asked for


@attrs.frozen
class OrderSpec:
    """The orderSpecification of a Submit."""

    order_type: OrderType
    items: tuple[ItemSpec, ...]
    reference: str | None = None
    remark: str | None = None
    packaging: str | None = None
    priority: Priority | None = None
    options: tuple[OptionValue, ...] = ()
    delivery: DeliveryChoice | None = None
    online_addresses: tuple[OnlineAddress, ...] = ()
    # deliveryInformation, invoiceAddress, option, deliveryOptions, extension: verbatim.
    fragments: tuple[Fragment, ...] = ()
    rest: RestOrder | None = None  # placed over OData: what it said beyond OSEO


@attrs.frozen
class Notification:
    """Where and how the client wants status call-backs (WS-Addressing)."""

    mode: StatusNotification = StatusNotification.NONE
    reply_to: str | None = None
    message_id: str | None = None
    soap_version: str | None = None  # "1.1" or "1.2"
    # Whose answer the call-backs are: a Cancel that asked for notification
    # takes them over, and they become CancelResponses relating to it.
    cancel: bool = False
    # OData's NotificationEndpoint (http(s):// or mailto:): the ODIP completion
    # JSON goes there instead of SOAP call-backs, with HTTP Basic when a user is
    # given. The password is kept sealed (oseod.auth.secrets), never in clear.
    endpoint: str | None = None
    endpoint_user: str | None = None
    endpoint_password: str | None = attrs.field(default=None, repr=False)


# The hash kept: a new order's items share one StatusInfo, which the store
# looks up once per item (each hash, of an enum among the fields, cost more
# than the lookup).
@attrs.frozen(cache_hash=True)
class StatusInfo:
    status: OrderStatus
    additional_info: str | None = None
    mission_specific_info: str | None = None
    changed_at: float = 0.0  # Unix time


@attrs.frozen
class Item:
    """An order item as stored: the client's spec and where it stands."""

    spec: ItemSpec
    status: StatusInfo
    batch: int = 0
    completed_at: float | None = None


# orderReference's longest text (pyoseo's column; a Name over OData too).
MAX_REFERENCE = 30


@attrs.frozen
class Order:
    """An order as stored."""

    order_id: str
    owner: str
    spec: OrderSpec
    status: StatusInfo
    created_at: float
    notification: Notification = Notification()
    items: tuple[Item, ...] = ()
    # Bumped by every stored change (0: not stored yet). Equal versions mean
    # equal orders, which is what lets readers cache what they made of one.
    version: int = attrs.field(default=0, eq=False)


class ReadyItem(NamedTuple):
    """A result DescribeResultAccess can hand out."""

    item: Item
    protocol: str  # the onlineDataAccess protocol to fetch it with
    expires_at: float
    package: str | None = None  # with packaging: the name of the package that holds it
