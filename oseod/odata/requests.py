"""The JSON bodies of OData orders, checked and read into values, and the
OSEO order each one is (``order_spec``): a REST order IS an OSEO order,
checked by the same core, so only what JSON can get wrong is checked here
(its shape, the field names, types and ranges, the workflow's options),
each refusal naming its field (``target``).

What OSEO offers and REST cannot say (per-item options, push delivery,
subscriptions, quotations, packaging...) is refused naming SOAP as the way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs
import orjson

from ..config import CollectionConfig, OptionConfig
from ..model.orders import (
    MASSIVE_ORDER_REFERENCE,
    MAX_REFERENCE,
    DeliveryChoice,
    DeliveryMethod,
    ItemSpec,
    Notification,
    OptionValue,
    OrderSpec,
    OrderType,
    RestKind,
    RestOrder,
    StatusNotification,
)
from . import edm
from .errors import ODataError, bad_request
from .values import DEFAULT_PRIORITY, iso_time, oseo_priority, parse_time

SOAP = "/oseo"
MAX_TEXT = 1024  # a name, an identifier, an endpoint: no field needs more
MAX_OPTIONS = 100
MAX_IDENTIFIERS = 100_000

# What OSEO (over SOAP) can do and these bodies cannot say: a field a client
# may try, and what to tell it.
SOAP_ONLY = {
    "DeliveryMethod": "delivery other than online data access (pushes to your server, media)",
    "DeliveryOptions": "delivery options (pushes to your server, media)",
    "OnlineDataDelivery": "pushes to your own server",
    "OnlineAddress": "pushes to your own server",
    "Media": "media delivery",
    "Subscription": "subscriptions",
    "SubscriptionId": "subscriptions",
    "Quotation": "quotations",
    "GetQuotation": "quotations",
    "Packaging": "packaging",
    "Payment": "payment",
    "PaymentMethod": "payment",
    "Copies": "copies",
    "Items": "orders of several items with their own options",
    "OrderItems": "orders of several items with their own options",
    "ItemOptions": "per-item options",
    "SceneSelection": "scene selection",
    "TaskingRequest": "tasking",
    "TaskingRequestId": "tasking",
    "OrderReference": "orderReference (the Name field is kept as it)",
    "Remark": "remarks",
    "StatusNotification": "status notifications of every change (statusNotification All)",
    "SendIntermediateNotifications": "notifications of every change (statusNotification All)",
}
# Set by the server: a client may send them back null (as read, or as
# python-odata sends every property it has), never with a value.
SERVER_FIELDS = frozenset({"Id"} | {p.name for t in (edm.PRODUCTION_ORDER, edm.ORDER, edm.BATCH_ORDER)
                                    for p in t.properties if p.computed})


def _names(parameters: tuple[edm.Parameter, ...]) -> tuple[str, ...]:
    return tuple(p.name for p in parameters)


# Exactly the parameters $metadata declares for each order action.
_PRODUCTION_FIELDS = _names(edm.PRODUCTION_ORDER_PARAMETERS)
_PRODUCT_FIELDS = _names(edm.PRODUCT_ORDER_PARAMETERS)
_BATCH_FIELDS = _names(edm.BATCH_ORDER_PARAMETERS)


@attrs.frozen
class NotificationRequest:
    endpoint: str | None = None
    user: str | None = None
    password: str | None = attrs.field(default=None, repr=False)


@attrs.frozen
class ProductionOrderRequest:
    """``POST /ProductionOrder/OData.CSC.Order`` (ODIP, CDSE)."""

    workflow_name: str | None
    workflow_id: str | None
    reference: str | None  # InputProductReference.Reference
    content_start: str | None  # InputProductReference.ContentDate, as iso_time text
    content_end: str | None
    options: tuple[OptionValue, ...] = ()  # as sent (numbers as their JSON text)
    priority: int = DEFAULT_PRIORITY
    name: str | None = None
    notification: NotificationRequest = NotificationRequest()


@attrs.frozen
class ProductOrderRequest:
    """``POST /Products(<identifier>)/OData.CSC.Order`` (LTA)."""

    identifier: str
    priority: int = DEFAULT_PRIORITY
    name: str | None = None
    notification: NotificationRequest = NotificationRequest()


@attrs.frozen
class BatchOrderRequest:
    """``POST /BatchOrder/OData.CSC.Order`` (CDSE): a massive order."""

    workflow_name: str | None
    workflow_id: str | None
    identifiers: tuple[str, ...]
    batch_size: int | None = None
    options: tuple[OptionValue, ...] = ()
    priority: int = DEFAULT_PRIORITY
    name: str | None = None
    notification: NotificationRequest = NotificationRequest()


OrderRequest = ProductionOrderRequest | ProductOrderRequest | BatchOrderRequest


# Reading the body ----------------------------------------------------------------

def _missing(target: str, message: str) -> ODataError:
    return bad_request(target, message, "MissingParameterValue")


def _object(body: bytes, *, empty_ok: bool = False) -> dict[str, Any]:
    if empty_ok and not body.strip():
        return {}
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise bad_request(None, f"the body is not JSON: {e}") from None
    if not isinstance(value, dict):
        raise bad_request(None, f"the body must be a JSON object, not {_kind(value)}")
    return value


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array",
            dict: "an object"}.get(type(value), type(value).__name__)


def _fields(data: dict[str, Any], allowed: tuple[str, ...], what: str) -> dict[str, Any]:
    """``data`` without annotations (``@odata.*``) and null server fields;
    400 for a SOAP-only feature, a server field with a value, or any other
    field not in ``allowed``."""
    kept = {}
    for name, value in data.items():
        if name.startswith("@") or name in allowed:
            if not name.startswith("@"):
                kept[name] = value
            continue
        if name in SOAP_ONLY:
            raise ODataError("OperationNotSupported", f"{name}: {SOAP_ONLY[name]} cannot be ordered over OData; "
                                                      f"order over SOAP (OSEO, {SOAP}) for that", name, 400)
        if name in SERVER_FIELDS:
            if value is None:
                continue
            raise bad_request(name, f"{name} is set by the server, not by the client")
        raise bad_request(name[:60], f"unknown field {_text(name)} in a {what} (known: {', '.join(allowed)})")
    return kept


def _text(value: str) -> str:
    return f'"{value[:60]}"' + ("..." if len(value) > 60 else "")


def _string(data: Mapping[str, Any], name: str, target: str | None = None, *,
            limit: int = MAX_TEXT) -> str | None:
    value = data.get(name)
    target = target or name
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request(target, f"{target} must be a string, not {_kind(value)}")
    if not value.strip():
        raise bad_request(target, f"{target} must not be empty")
    if len(value) > limit:
        raise bad_request(target, f"{target} is longer than {limit} characters")
    return value


def _integer(data: Mapping[str, Any], name: str, low: int, high: int) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(name, f"{name} must be an integer, not {_kind(value)}")
    if not low <= value <= high:
        raise bad_request(name, f"{name} must be from {low} to {high}; got {value}")
    return value


def _priority(data: Mapping[str, Any]) -> int:
    priority = _integer(data, "Priority", 1, 100)
    return DEFAULT_PRIORITY if priority is None else priority


def _name(data: Mapping[str, Any]) -> str | None:
    # The Name is kept as the OSEO orderReference, which has a limit.
    return _string(data, "Name", limit=MAX_REFERENCE)


def _notification(data: Mapping[str, Any]) -> NotificationRequest:
    endpoint = _string(data, "NotificationEndpoint")
    user = _string(data, "NotificationEpUsername")
    password = data.get("NotificationEpPassword")
    if password is not None and not isinstance(password, str):
        raise bad_request("NotificationEpPassword", f"NotificationEpPassword must be a string, not {_kind(password)}")
    if endpoint is None and (user is not None or password):
        target = "NotificationEpUsername" if user is not None else "NotificationEpPassword"
        raise _missing("NotificationEndpoint", f"{target} is given without a NotificationEndpoint to use it for")
    if password and user is None:
        raise _missing("NotificationEpUsername", "NotificationEpPassword is given without NotificationEpUsername")
    return NotificationRequest(endpoint, user, password or None)


def _option_value(value: object, target: str) -> str:
    """An option's Value: a string, a number, or either in a one-element
    array (ODIP's RAML sends arrays, its parser reads strings)."""
    if isinstance(value, list):
        if len(value) != 1:
            raise bad_request(target, f"{target} must be one value (an array of one at most); got {len(value)}")
        value = value[0]
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return orjson.dumps(value).decode()
    raise bad_request(target, f"{target} must be a string or a number, not {_kind(value)}")


def _options(data: Mapping[str, Any]) -> tuple[OptionValue, ...]:
    given = data.get("WorkflowOptions")
    if given is None:
        return ()
    if isinstance(given, dict):  # {"name": value, ...}: a form some clients use
        given = [{"Name": k, "Value": v} for k, v in given.items()]
    if not isinstance(given, list):
        raise bad_request("WorkflowOptions", f"WorkflowOptions must be an array of {{Name, Value}}, not {_kind(given)}")
    if len(given) > MAX_OPTIONS:
        raise bad_request("WorkflowOptions", f"WorkflowOptions holds more than {MAX_OPTIONS} options")
    options: list[OptionValue] = []
    for n, option in enumerate(given):
        target = f"WorkflowOptions[{n}]"
        if not isinstance(option, dict):
            raise bad_request(target, f"{target} must be an object {{Name, Value}}, not {_kind(option)}")
        unknown = sorted(set(option) - {"Name", "Value", "@odata.type"})
        if unknown:
            raise bad_request(f"{target}.{unknown[0]}", f"unknown field {_text(unknown[0])} in {target} "
                                                        f"(known: Name, Value)")
        name = _string(option, "Name", f"{target}.Name")
        if name is None:
            raise _missing(f"{target}.Name", f"{target} has no Name")
        if "Value" not in option or option["Value"] is None:
            raise _missing(f"{target}.Value", f"option {_text(name)} has no Value")
        if any(o.name == name for o in options):
            raise bad_request(f"{target}.Name", f"option {_text(name)} is given twice")
        options.append(OptionValue(name, _option_value(option["Value"], f"{target}.Value")))
    return tuple(options)


def _workflow(data: Mapping[str, Any]) -> tuple[str | None, str | None]:
    name = _string(data, "WorkflowName")
    id_ = _string(data, "WorkflowId")
    if name is None and id_ is None:
        raise _missing("WorkflowName", "the order names no workflow: give WorkflowName or WorkflowId "
                                       "(GET /odata/v1/Workflows lists them)")
    return name, id_


def _content_bound(value: object, target: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request(target, f"{target} must be a date and time (text), not {_kind(value)}")
    try:
        return iso_time(parse_time(value))
    except (ValueError, OverflowError, OSError):
        raise bad_request(target, f"{target} {_text(value)} is not a date and time (ISO 8601)") from None


def parse_production_order(body: bytes) -> ProductionOrderRequest:
    data = _fields(_object(body), _PRODUCTION_FIELDS, "ProductionOrder")
    name, id_ = _workflow(data)
    reference = start = end = None
    given = data.get("InputProductReference")
    if given is not None:
        if not isinstance(given, dict):
            raise bad_request("InputProductReference", "InputProductReference must be an object "
                                                       f"{{Reference, ContentDate}}, not {_kind(given)}")
        given = _fields(given, ("Reference", "ContentDate"), "InputProductReference")
        reference = _string(given, "Reference", "InputProductReference.Reference")
        dates = given.get("ContentDate")
        if dates is not None:
            target = "InputProductReference.ContentDate"
            if not isinstance(dates, dict):
                raise bad_request(target, f"{target} must be an object {{Start, End}}, not {_kind(dates)}")
            dates = _fields(dates, ("Start", "End"), target)
            start = _content_bound(dates.get("Start"), f"{target}.Start")
            end = _content_bound(dates.get("End"), f"{target}.End")
            if start is None or end is None:
                raise _missing(target, f"{target} needs both Start and End")
            if end < start:  # (iso_time texts sort as the times they are)
                raise bad_request(target, f"{target} ends ({end}) before it starts ({start})")
    if reference is None and start is None:
        raise _missing("InputProductReference", "a production order needs InputProductReference: its Reference "
                                                "(the input product) or its ContentDate (Start, End)")
    return ProductionOrderRequest(
        workflow_name=name, workflow_id=id_, reference=reference, content_start=start, content_end=end,
        options=_options(data), priority=_priority(data), name=_name(data), notification=_notification(data),
    )


def parse_product_order(body: bytes, identifier: str) -> ProductOrderRequest:
    """An LTA order of product ``identifier`` (the key in the URL); an empty
    body is all defaults."""
    data = _fields(_object(body, empty_ok=True), _PRODUCT_FIELDS, "product order")
    identifier = identifier.strip()
    if not identifier or len(identifier) > MAX_TEXT:
        raise bad_request("Id", f"{_text(identifier)} is no product identifier")
    return ProductOrderRequest(identifier=identifier, priority=_priority(data), name=_name(data),
                               notification=_notification(data))


def parse_batch_order(body: bytes) -> BatchOrderRequest:
    data = _object(body)
    if data.get("BatchVolume") is not None:
        raise bad_request("BatchVolume", "BatchVolume is not supported: give BatchSize (products per batch)")
    data.pop("BatchVolume", None)
    data = _fields(data, _BATCH_FIELDS, "BatchOrder")
    name, id_ = _workflow(data)
    given = data.get("IdentifierList")
    if given is None:
        raise _missing("IdentifierList", "a batch order needs IdentifierList: the identifiers of its products")
    if not isinstance(given, list) or not given:
        raise bad_request("IdentifierList", "IdentifierList must be a non-empty array of product identifiers")
    if len(given) > MAX_IDENTIFIERS:
        raise bad_request("IdentifierList", f"IdentifierList holds more than {MAX_IDENTIFIERS} identifiers")
    identifiers = []
    for n, identifier in enumerate(given):
        text = _string({"i": identifier}, "i", f"IdentifierList[{n}]")
        if text is None:
            raise bad_request(f"IdentifierList[{n}]", f"IdentifierList[{n}] must be a string, not null")
        identifiers.append(text)
    return BatchOrderRequest(
        workflow_name=name, workflow_id=id_, identifiers=tuple(identifiers),
        batch_size=_integer(data, "BatchSize", 1, MAX_IDENTIFIERS), options=_options(data),
        priority=_priority(data), name=_name(data), notification=_notification(data),
    )


# The OSEO order ----------------------------------------------------------------------

def _same_number(value: str, choice: str) -> bool:
    try:
        return float(value) == float(choice)
    except ValueError:
        return False


def workflow_options(collection: CollectionConfig, given: tuple[OptionValue, ...]) -> tuple[OptionValue, ...]:
    """The options an order of ``collection``'s workflow is made with: those
    given (each a workflow option, with an allowed value; numbers match a
    choice of the same value, 10 = "10.0"), the others at their default."""
    offered: dict[str, OptionConfig] = {o.name: o for o in collection.option}
    chosen: dict[str, str] = {}
    for n, option in enumerate(given):
        config = offered.get(option.name)
        if config is None:
            raise bad_request(f"WorkflowOptions[{n}].Name",
                              f"workflow {_text(collection.id)} has no option {_text(option.name)} "
                              f"(offers: {', '.join(offered) or 'none'})")
        value = option.value
        if value not in config.choices:  # (none offered: the core takes no value either)
            value = next((c for c in config.choices if _same_number(value, c)), value)
            if value not in config.choices:
                raise bad_request(f"WorkflowOptions[{n}].Value",
                                  f"{_text(option.value)} is not a value of option {_text(option.name)} of workflow "
                                  f"{_text(collection.id)} (allowed: {', '.join(config.choices) or 'none'})")
        chosen[option.name] = value
    for config in collection.option:
        if config.name not in chosen and config.default in config.choices:
            chosen[config.name] = config.default
    # In the collection's order, whatever order they were sent in.
    return tuple(OptionValue(name, chosen[name]) for name in offered if name in chosen)


def _input_product(request: ProductionOrderRequest) -> str:
    """The item's productId: the input product, or (a ContentDate alone) the
    time range whose content is to be processed."""
    if request.reference is not None:
        return request.reference
    return f"{request.content_start}/{request.content_end}"


ACCESS = DeliveryChoice(DeliveryMethod.ONLINE_DATA_ACCESS, "http")


def order_spec(request: OrderRequest, collection: CollectionConfig) -> OrderSpec:
    """The OSEO order ``request`` is, ordering from ``collection`` (its
    workflow's, or for an LTA order the one the identifier resolves to);
    REST is pull-only: online data access over HTTP."""
    if isinstance(request, ProductionOrderRequest):
        item = ItemSpec(item_id="1", product_id=_input_product(request), collection_id=collection.id,
                        options=workflow_options(collection, request.options), delivery=ACCESS)
        return OrderSpec(
            order_type=OrderType.PRODUCT_ORDER, items=(item,), reference=request.name,
            priority=oseo_priority(request.priority),
            rest=RestOrder(kind=RestKind.PRODUCTION, priority=request.priority, name=request.name,
                           workflow=collection.id, content_start=request.content_start,
                           content_end=request.content_end),
        )
    if isinstance(request, ProductOrderRequest):
        item = ItemSpec(item_id="1", product_id=request.identifier, collection_id=collection.id,
                        options=workflow_options(collection, ()), delivery=ACCESS)
        return OrderSpec(
            order_type=OrderType.PRODUCT_ORDER, items=(item,), reference=request.name,
            priority=oseo_priority(request.priority),
            rest=RestOrder(kind=RestKind.PRODUCT, priority=request.priority, name=request.name),
        )
    options = workflow_options(collection, request.options)
    items = tuple(ItemSpec(item_id=str(n), product_id=identifier, collection_id=collection.id, options=options,
                           delivery=ACCESS)
                  for n, identifier in enumerate(request.identifiers, 1))
    return OrderSpec(
        order_type=OrderType.MASSIVE_ORDER, items=items, reference=MASSIVE_ORDER_REFERENCE,
        priority=oseo_priority(request.priority),
        rest=RestOrder(kind=RestKind.BATCH, priority=request.priority, name=request.name, workflow=collection.id,
                       batch_size=request.batch_size),
    )


def notification_of(request: OrderRequest, seal: Callable[[str, str], str]) -> Notification:
    """The Notification an order asks for: with a NotificationEndpoint, the
    completion (statusNotification Final) sent there, the password sealed by
    ``seal(endpoint, password)`` (e.g. ``lambda e, p: box.seal(
    f"odata-notification:{owner}", e, p)``); without, none."""
    given = request.notification
    if given.endpoint is None:
        return Notification()
    sealed = seal(given.endpoint, given.password) if given.password else None
    return Notification(mode=StatusNotification.FINAL, endpoint=given.endpoint, endpoint_user=given.user,
                        endpoint_password=sealed)
