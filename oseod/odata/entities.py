"""Orders as OData rows (JSON dicts), and the bodies that carry them.

Every row is made by :func:`shaped`, which takes exactly the properties
:mod:`oseod.odata.edm` declares for the entity type, no more, no fewer: the
JSON cannot say what ``$metadata`` does not. The same record reads as a
ProductionOrder, an LTA Order or a BatchOrder; an order placed over SOAP
(``spec.rest`` None) shows OData's defaults where SOAP had nothing to say.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from ..model.orders import Item, Order, OrderStatus, ReadyItem, StatusInfo
from . import edm
from .ids import order_uuid, product_uuid, workflow_uuid
from .values import JOB_STATUS_OF, iso_time, odata_priority, parse_time


Row = dict[str, Any]
DAY = 86400.0
HIDDEN_PASSWORD = "*****"
CONTENT_TYPE = "application/octet-stream"
# Reached when the order's results are made (and the time is when).
_COMPLETED = frozenset(s for s, j in JOB_STATUS_OF.items() if j == "completed")
_WITH_RESULT = frozenset({OrderStatus.Completed, OrderStatus.Downloaded})


def shaped(entity: edm.EntityType | edm.ComplexType, values: dict[str, Any]) -> Row:
    """``values``, in the declared order of ``entity``'s properties; ValueError
    when they are not exactly those (a renderer drifting from the model)."""
    names = _NAMES.get(entity.name) or tuple(p.name for p in entity.properties)
    if tuple(values) == names:  # (the renderers build them in order: no copy)
        return values
    if len(values) != len(names) or any(n not in values for n in names):
        extra = sorted(set(values) - set(names))
        lacking = sorted(set(names) - set(values))
        raise ValueError(f"{entity.name} row: undeclared {extra}, missing {lacking}")
    return {n: values[n] for n in names}


# By type name (hashing a type itself hashes its every property).
_NAMES = {t.name: tuple(p.name for p in t.properties) for t in (*edm.ENTITY_TYPES, *edm.COMPLEX_TYPES)}


def status_message(status: StatusInfo) -> str:
    """"<OSEO status>: <what it says>", e.g. "Accepted: Waiting for processing"."""
    info = status.additional_info
    if not info:
        return status.status.value
    # (the core's own texts may begin with the status already: "Accepted; waiting...")
    return info if info.startswith(status.status.value) else f"{status.status.value}: {info}"


def completed_at(order: Order) -> float | None:
    """When the order's results were ready: its last item's completion (a
    Downloaded order's status changed later), else when its status said so;
    None for an order that is not completed."""
    if order.status.status not in _COMPLETED:
        return None
    times = [i.completed_at for i in order.items if i.completed_at is not None]
    return max(times) if times else order.status.changed_at


def _time(seconds: float | None) -> str | None:
    return None if seconds is None else iso_time(seconds)


def _content_time(text: str | None) -> str | None:
    """A ContentDate bound as the client sent it, in OData's fixed form when
    it reads as a time (requests.py only lets such through)."""
    if text is None:
        return None
    if len(text) == 24 and text[10] == "T" and text[-1] == "Z":
        return text  # already so (requests.py writes them with iso_time)
    try:
        return iso_time(parse_time(text))
    except ValueError:
        return text


def _common(order: Order, keep_days: int) -> Row:
    rest = order.spec.rest
    completed = completed_at(order)
    return {
        "Id": order_uuid(order.order_id),
        "Name": rest.name if rest is not None else order.spec.reference,
        "Status": JOB_STATUS_OF[order.status.status],
        "StatusMessage": status_message(order.status),
        "SubmissionDate": iso_time(order.created_at),
        "EstimatedDate": None,
        "CompletedDate": _time(completed),
        "EvictionDate": None if completed is None else iso_time(completed + keep_days * DAY),
        "Priority": rest.priority if rest is not None else odata_priority(order.spec.priority),
    }


def _notification(order: Order) -> Row:
    n = order.notification
    return {
        "NotificationEndpoint": n.endpoint,
        "NotificationEpUsername": n.endpoint_user,
        "NotificationEpPassword": HIDDEN_PASSWORD if n.endpoint_password else None,
    }


def workflow_name(order: Order) -> str | None:
    """The Workflow an order runs: the one named at an OData order, else
    (SOAP) its first item's collection, which is what a Workflow is."""
    rest = order.spec.rest
    if rest is not None and rest.workflow is not None:
        return rest.workflow
    return next((i.spec.collection_id for i in order.items if i.spec.collection_id), None)


# (A few workflows, named by every order: a uuid5 each time cost a tenth of a row.)
_workflow_id = functools.lru_cache(maxsize=1024)(workflow_uuid)


def _workflow(order: Order) -> Row:
    name = workflow_name(order)
    options: dict[str, str] = {}
    for option in (*order.spec.options, *(order.items[0].spec.options if order.items else ())):
        options.setdefault(option.name, option.value)
    return {
        "WorkflowId": None if name is None else _workflow_id(name),
        "WorkflowName": name,
        "WorkflowOptions": [shaped(edm.OPTION_VALUE, {"Name": k, "Value": v}) for k, v in options.items()],
    }


def _input_reference(order: Order) -> Row | None:
    rest = order.spec.rest
    reference = order.items[0].spec.product_id if order.items else None
    start = _content_time(rest.content_start) if rest is not None else None
    end = _content_time(rest.content_end) if rest is not None else None
    if reference is None and start is None and end is None:
        return None
    content = None if start is None and end is None else shaped(edm.TIME_RANGE, {"Start": start, "End": end})
    return shaped(edm.INPUT_PRODUCT_REFERENCE, {"Reference": reference, "ContentDate": content})


def production_order(order: Order, *, keep_days: int) -> Row:
    """An order as an ODIP ProductionOrder (any order: SOAP ones too)."""
    return shaped(edm.PRODUCTION_ORDER, {
        **_common(order, keep_days),
        "OrderOutputSize": None,
        "InputProductReference": _input_reference(order),
        **_workflow(order),
        **_notification(order),
    })


def lta_order(order: Order, *, keep_days: int) -> Row:
    """An order as an LTA Order."""
    return shaped(edm.ORDER, {
        **_common(order, keep_days),
        "OrderSize": None,
        **_notification(order),
    })


def batch_order(order: Order, *, keep_days: int) -> Row:
    """An order (a massive one, as BatchOrders lists) as a BatchOrder."""
    rest = order.spec.rest
    return shaped(edm.BATCH_ORDER, {
        **_common(order, keep_days),
        "OrderSize": None,
        "BatchSize": rest.batch_size if rest is not None else None,
        "ProductCount": len(order.items),
        **_workflow(order),
        **_notification(order),
    })


def product(order: Order, item: Item, ready: ReadyItem | None, *, keep_days: int,
            file: tuple[str, int] | None = None) -> Row:
    """One item as a Product. ``ready``: its result online now (None: not, or
    not yet); ``file``: its result's file name and size, when known."""
    if ready is not None:
        eviction: float | None = ready.expires_at
    elif item.completed_at is not None and item.status.status in _WITH_RESULT:
        eviction = item.completed_at + keep_days * DAY
    else:
        eviction = None
    return shaped(edm.PRODUCT, {
        "Id": product_uuid(order.order_id, item.spec.item_id),
        "Name": file[0] if file is not None else item.spec.product_id or item.spec.item_id,
        "ContentType": CONTENT_TYPE if file is not None else None,
        "ContentLength": file[1] if file is not None else None,
        "Status": JOB_STATUS_OF[item.status.status],
        "StatusMessage": status_message(item.status),
        "EvictionDate": _time(eviction),
    })


def products(order: Order, ready: Sequence[ReadyItem], *, keep_days: int,
             files: Mapping[str, tuple[str, int]] | None = None) -> list[Row]:
    """A Product row per item of ``order``, in item order. ``ready``: the
    core's ReadyItems of the order; ``files``: item id -> (file name, size)."""
    by_item = {r.item.spec.item_id: r for r in ready}
    files = files or {}
    return [product(order, i, by_item.get(i.spec.item_id), keep_days=keep_days, file=files.get(i.spec.item_id))
            for i in order.items]


def select(row: Row, names: Iterable[str]) -> Row:
    """``$select``: only ``names`` of ``row`` (in the row's order)."""
    wanted = set(names)
    return {k: v for k, v in row.items() if k in wanted}


def collection_body(context: str, rows: Sequence[Row], count: int | None = None,
                    next_link: str | None = None) -> bytes:
    """A collection answer: ``{"@odata.context", "@odata.count"?, "value",
    "@odata.nextLink"?}``."""
    body: Row = {"@odata.context": context}
    if count is not None:
        body["@odata.count"] = count
    body["value"] = rows
    if next_link is not None:
        body["@odata.nextLink"] = next_link
    return orjson.dumps(body)


def entity_body(context: str, row: Row) -> bytes:
    """One entity's answer: its row after ``"@odata.context"``."""
    return orjson.dumps({"@odata.context": context, **row})
