"""The OData views (pure): $metadata from the model, and orders of every
OSEO status (SOAP-made ones too) rendered with only what the model declares."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import orjson
import pytest
from lxml import etree
from odata.metadata import MetaData  # type: ignore[import-untyped]

from oseod.config import DEMO_COLLECTION, CollectionConfig, OptionConfig
from oseod.model.orders import (
    ReadyItem,
    MASSIVE_ORDER_REFERENCE,
    Item,
    ItemSpec,
    Notification,
    OptionValue,
    Order,
    OrderSpec,
    OrderStatus,
    OrderType,
    Priority,
    RestKind,
    RestOrder,
    StatusInfo,
    StatusNotification,
)
from oseod.odata import csdl, edm, entities, workflows
from oseod.odata.errors import ODataError
from oseod.odata.ids import order_id_of, order_uuid, product_uuid, workflow_uuid
from oseod.odata.edm import JOB_STATUSES
from oseod.odata.values import iso_time

NS = {"edmx": csdl.EDMX, "edm": csdl.EDM}
CREATED = 1_790_000_000.0
DONE = CREATED + 600.0
KEEP = 3
SEALED = "sealed:c2VjcmV0LXNlYWxlZC1wYXNzd29yZA=="
RENDERERS = {
    edm.PRODUCTION_ORDER.name: entities.production_order,
    edm.ORDER.name: entities.lta_order,
    edm.BATCH_ORDER.name: entities.batch_order,
}


def _order(status: OrderStatus, *, rest: RestOrder | None = None, priority: Priority | None = None,
           reference: str | None = "my ref", items: int = 1, notification: Notification = Notification(),
           order_type: OrderType = OrderType.PRODUCT_ORDER) -> Order:
    done = status in (OrderStatus.Completed, OrderStatus.Downloaded)
    changed = DONE + 3600.0 if status is OrderStatus.Downloaded else DONE
    spec = OrderSpec(
        order_type=order_type, reference=reference, priority=priority, rest=rest,
        items=tuple(ItemSpec(item_id=str(n), product_id=f"S2A_PRODUCT_{n}", collection_id="urn:oseod:demo",
                             options=(OptionValue("format", "NetCDF"),)) for n in range(1, items + 1)),
    )
    return Order(
        order_id="b3kq7mzt1xw9pa", owner="alice", spec=spec, created_at=CREATED, notification=notification,
        status=StatusInfo(status, f"it is {status.value}" if status is not OrderStatus.Submitted else None,
                          changed_at=changed),
        items=tuple(Item(spec=s, status=StatusInfo(status), completed_at=DONE - n if done else None)
                    for n, s in enumerate(spec.items)),
    )


REST = RestOrder(kind=RestKind.PRODUCTION, priority=77, name="my production", workflow="urn:oseod:demo",
                 content_start="2026-01-01T00:00:00Z", content_end="2026-01-02T12:00:00+01:00")
ENDPOINT = Notification(mode=StatusNotification.FINAL, endpoint="https://client.example/notify",
                        endpoint_user="bob", endpoint_password=SEALED)


def _orders() -> list[Order]:
    """An order of every status, made over SOAP and over OData."""
    found = []
    for status in OrderStatus:
        found.append(_order(status))  # SOAP, no priority
        found.append(_order(status, priority=Priority.FAST_TRACK, items=3, notification=ENDPOINT))
        found.append(_order(status, rest=REST, notification=ENDPOINT))
        found.append(_order(status, order_type=OrderType.MASSIVE_ORDER, reference=MASSIVE_ORDER_REFERENCE, items=4,
                            rest=RestOrder(kind=RestKind.BATCH, priority=12, name="batch", workflow="urn:oseod:demo",
                                           batch_size=2)))
    return found


def _complex(type_name: str) -> edm.ComplexType:
    return next(c for c in edm.COMPLEX_TYPES if f"{edm.NAMESPACE}.{c.name}" == type_name)


def _check_declared(properties: tuple[edm.Property, ...], row: dict[str, Any], where: str) -> None:
    """Every key of ``row`` is declared (and every declared one is there),
    complex values recursively; values have their declared JSON kinds."""
    assert list(row) == [p.name for p in properties], where
    for p in properties:
        value = row[p.name]
        if value is None:
            assert p.nullable, f"{where}.{p.name} is null"
            continue
        values = value if p.collection else [value]
        if p.collection:
            assert isinstance(value, list), f"{where}.{p.name}"
        for v in values:
            if p.type.startswith(f"{edm.NAMESPACE}.") and p.type != edm.JOB_STATUS:
                _check_declared(_complex(p.type).properties, v, f"{where}.{p.name}")
            elif p.type == edm.JOB_STATUS:
                assert v in JOB_STATUSES
            elif p.type == edm.INT64:
                assert isinstance(v, int) and not isinstance(v, bool), f"{where}.{p.name}"
            elif p.type == edm.DATE_TIME:
                assert isinstance(v, str) and len(v) == 24 and v.endswith("Z"), f"{where}.{p.name}={v}"
            else:
                assert isinstance(v, str), f"{where}.{p.name}"


# $metadata --------------------------------------------------------------

def _metadata() -> etree._Element:
    return etree.fromstring(csdl.metadata_xml())


def test_metadata_is_csdl_4_of_the_namespace() -> None:
    root = _metadata()
    assert root.tag == f"{{{csdl.EDMX}}}Edmx" and root.get("Version") == "4.0"
    schemas = root.xpath("edmx:DataServices/edm:Schema", namespaces=NS)
    assert [s.get("Namespace") for s in schemas] == ["OData.CSC"]
    assert csdl.metadata_xml().startswith(b"<?xml")


def test_metadata_declares_exactly_the_model() -> None:
    schema = _metadata().xpath("edmx:DataServices/edm:Schema", namespaces=NS)[0]

    def names(path: str) -> list[str]:
        return [e.get("Name") for e in schema.xpath(path, namespaces=NS)]

    assert names("edm:EnumType") == [e.name for e in edm.ENUMS]
    assert names("edm:EnumType/edm:Member") == list(edm.JOB_STATUSES)
    assert names("edm:ComplexType") == [c.name for c in edm.COMPLEX_TYPES]
    assert names("edm:EntityType") == [e.name for e in edm.ENTITY_TYPES]
    for entity in edm.ENTITY_TYPES:
        element = schema.xpath(f"edm:EntityType[@Name='{entity.name}']", namespaces=NS)[0]
        assert [k.get("Name") for k in element.xpath("edm:Key/edm:PropertyRef", namespaces=NS)] == [entity.key]
        declared = [(p.get("Name"), p.get("Type"), p.get("Nullable") != "false")
                    for p in element.xpath("edm:Property", namespaces=NS)]
        assert declared == [(p.name, f"Collection({p.type})" if p.collection else p.type, p.nullable)
                            for p in entity.properties]
        navigation = [(n.get("Name"), n.get("Type")) for n in element.xpath("edm:NavigationProperty", namespaces=NS)]
        assert navigation == [(n.name, f"Collection({n.type})" if n.collection else n.type)
                              for n in entity.navigation]
    for complex_type in edm.COMPLEX_TYPES:
        element = schema.xpath(f"edm:ComplexType[@Name='{complex_type.name}']", namespaces=NS)[0]
        assert [p.get("Name") for p in element.xpath("edm:Property", namespaces=NS)] == [
            p.name for p in complex_type.properties]
    actions = [(a.get("Name"), a.get("IsBound"), a.xpath("edm:Parameter", namespaces=NS)[0].get("Type"),
                a.xpath("edm:ReturnType", namespaces=NS)[0].get("Type"))
               for a in schema.xpath("edm:Action", namespaces=NS)]
    assert actions == [(a.name, "true", f"Collection({a.binding})" if a.binding_collection else a.binding, a.returns)
                       for a in edm.ACTIONS]
    parameters = [[(p.get("Name"), p.get("Type")) for p in a.xpath("edm:Parameter", namespaces=NS)[1:]]
                  for a in schema.xpath("edm:Action", namespaces=NS)]
    assert parameters == [[(p.name, f"Collection({p.type})" if p.collection else p.type) for p in a.parameters]
                          for a in edm.ACTIONS]
    assert ("IdentifierList", "Collection(Edm.String)") in parameters[2]
    containers = schema.xpath("edm:EntityContainer", namespaces=NS)
    assert len(containers) == 1
    sets = [(s.get("Name"), s.get("EntityType")) for s in containers[0].xpath("edm:EntitySet", namespaces=NS)]
    assert sets == [(s.name, s.type.qualified) for s in edm.ENTITY_SETS]
    for binding in containers[0].xpath("edm:EntitySet/edm:NavigationPropertyBinding", namespaces=NS):
        assert binding.get("Target") in {s.name for s in edm.ENTITY_SETS}
    assert len(containers[0].xpath("edm:EntitySet/edm:NavigationPropertyBinding", namespaces=NS)) == sum(
        len(s.type.navigation) for s in edm.ENTITY_SETS)


def test_metadata_reads_in_python_odata() -> None:
    """The OData client the acceptance tests use finds every set and action,
    and leaves the server's properties (Core.Computed) out of what it POSTs."""
    reader = object.__new__(MetaData)
    schemas, sets, actions, _ = reader.parse_document(_metadata())
    assert set(sets) == {s.name for s in edm.ENTITY_SETS}
    assert [e["name"] for e in schemas[0]["entities"]] == [e.name for e in edm.ENTITY_TYPES]
    for entity, parsed in zip(edm.ENTITY_TYPES, schemas[0]["entities"]):
        assert [(p["name"], p["is_computed_value"], p["is_primary_key"]) for p in parsed["properties"]] == [
            (p.name, p.computed, p.name == entity.key) for p in entity.properties]
    assert not edm.PRODUCTION_ORDER.field("Id").computed  # type: ignore[union-attr] # (python-odata fails on it)
    assert {p.name for p in edm.PRODUCTION_ORDER.properties if p.computed} >= {"Status", "SubmissionDate"}
    assert sorted((a["fully_qualified_name"], a["is_bound_to"]) for a in actions) == sorted(
        (f"OData.CSC.{a.name}", f"Collection({a.binding})" if a.binding_collection else a.binding)
        for a in edm.ACTIONS)


def test_service_document_lists_every_set() -> None:
    body = orjson.loads(csdl.service_document("https://host/odata/v1/"))
    assert body["@odata.context"] == "https://host/odata/v1/$metadata"
    assert [(v["name"], v["kind"], v["url"]) for v in body["value"]] == [
        (s.name, "EntitySet", s.name) for s in edm.ENTITY_SETS]


# rows -------------------------------------------------------------------

@pytest.mark.parametrize("order", _orders(), ids=lambda o: f"{o.status.status.value}-{o.spec.rest}")
def test_every_row_holds_only_what_the_model_declares(order: Order) -> None:
    """The cannot-drift test: every rendered row's keys are its entity type's."""
    for name, render in RENDERERS.items():
        row = render(order, keep_days=KEEP)
        _check_declared(edm.entity_set(f"{name}s").type.properties, row, name)  # type: ignore[union-attr]
        assert orjson.loads(entities.entity_body("$metadata#X/$entity", row)) == {"@odata.context": "$metadata#X/$entity",
                                                                                 **row}
    ready = [ReadyItem(i, "http", DONE + 99.0) for i in order.items if i.completed_at is not None]
    for row in entities.products(order, ready, keep_days=KEEP, files={"1": ("S2A_PRODUCT_1.dat", 1024)}):
        _check_declared(edm.PRODUCT.properties, row, "Product")


def test_rendering_refuses_an_undeclared_property() -> None:
    with pytest.raises(ValueError, match="undeclared \\['Colour'\\]"):
        entities.shaped(edm.WORKFLOW, {**dict.fromkeys(edm.WORKFLOW.names), "Colour": "red"})
    with pytest.raises(ValueError, match="missing \\['Name'\\]"):
        entities.shaped(edm.OPTION_VALUE, {"Value": "x"})


@pytest.mark.parametrize("status", list(OrderStatus))
def test_status_and_its_message(status: OrderStatus) -> None:
    expected = {
        OrderStatus.Submitted: "queued", OrderStatus.Accepted: "queued", OrderStatus.InProduction: "in_progress",
        OrderStatus.Suspended: "in_progress", OrderStatus.Completed: "completed",
        OrderStatus.Downloaded: "completed", OrderStatus.Terminated: "completed", OrderStatus.Failed: "failed",
        OrderStatus.Cancelled: "cancelled",
    }[status]
    for order in (_order(status), _order(status, rest=REST)):
        for render in RENDERERS.values():
            row = render(order, keep_days=KEEP)
            assert row["Status"] == expected
            assert row["StatusMessage"] == (f"{status.value}: it is {status.value}"
                                            if status is not OrderStatus.Submitted else "Submitted")


def test_dates() -> None:
    for status in OrderStatus:
        row = entities.production_order(_order(status, items=3), keep_days=KEEP)
        assert row["SubmissionDate"] == iso_time(CREATED) == "2026-09-21T14:13:20.000Z"
        assert row["EstimatedDate"] is None
        if status in (OrderStatus.Completed, OrderStatus.Downloaded):
            # The last item's completion (a Downloaded order changed status later).
            assert row["CompletedDate"] == iso_time(DONE)
            assert row["EvictionDate"] == iso_time(DONE + KEEP * 86400)
        elif status is OrderStatus.Terminated:
            assert row["CompletedDate"] == iso_time(DONE)  # no item completed: the status' time
        else:
            assert row["CompletedDate"] is None and row["EvictionDate"] is None


def test_a_soap_order_reads_with_defaults() -> None:
    standard = entities.production_order(_order(OrderStatus.Accepted), keep_days=KEEP)
    fast = entities.production_order(_order(OrderStatus.Accepted, priority=Priority.FAST_TRACK), keep_days=KEEP)
    assert (standard["Priority"], fast["Priority"]) == (50, 90)
    assert standard["Id"] == order_uuid("b3kq7mzt1xw9pa") and order_id_of(standard["Id"]) == "b3kq7mzt1xw9pa"
    assert standard["Name"] == "my ref"
    assert standard["WorkflowName"] == "urn:oseod:demo"
    assert standard["WorkflowId"] == workflow_uuid("urn:oseod:demo")
    assert standard["WorkflowOptions"] == [{"Name": "format", "Value": "NetCDF"}]
    assert standard["InputProductReference"] == {"Reference": "S2A_PRODUCT_1", "ContentDate": None}
    assert standard["NotificationEndpoint"] is None and standard["NotificationEpPassword"] is None


def test_an_odata_order_reads_as_placed() -> None:
    row = entities.production_order(_order(OrderStatus.InProduction, rest=REST, notification=ENDPOINT),
                                    keep_days=KEEP)
    assert row["Priority"] == 77 and row["Name"] == "my production"
    assert row["InputProductReference"] == {
        "Reference": "S2A_PRODUCT_1",
        "ContentDate": {"Start": "2026-01-01T00:00:00.000Z", "End": "2026-01-02T11:00:00.000Z"},
    }
    assert (row["NotificationEndpoint"], row["NotificationEpUsername"]) == ("https://client.example/notify", "bob")
    batch = entities.batch_order(_order(OrderStatus.Accepted, order_type=OrderType.MASSIVE_ORDER, items=4,
                                        reference=MASSIVE_ORDER_REFERENCE,
                                        rest=RestOrder(kind=RestKind.BATCH, priority=12, name="b", batch_size=2)),
                                 keep_days=KEEP)
    assert (batch["Name"], batch["Priority"], batch["BatchSize"], batch["ProductCount"]) == ("b", 12, 2, 4)


def test_the_password_is_never_echoed() -> None:
    for order in _orders():
        if order.notification.endpoint_password is None:
            continue
        for render in RENDERERS.values():
            row = render(order, keep_days=KEEP)
            assert row["NotificationEpPassword"] == "*****"
            body = entities.collection_body("$metadata#ProductionOrders", [row])
            assert SEALED.encode() not in body and b"sealed" not in body


def test_products() -> None:
    order = _order(OrderStatus.InProduction, items=3)
    items = (attrs_evolve_item(order.items[0], OrderStatus.Completed, DONE), order.items[1], order.items[2])
    order = Order(order.order_id, order.owner, order.spec, order.status, order.created_at, items=items)
    rows = entities.products(order, [ReadyItem(items[0], "http", DONE + 5.0)], keep_days=KEEP,
                             files={"1": ("S2A_PRODUCT_1.dat", 1024)})
    assert [r["Id"] for r in rows] == [product_uuid(order.order_id, str(n)) for n in (1, 2, 3)]
    assert len({r["Id"] for r in rows}) == 3
    assert rows[0] == {"Id": rows[0]["Id"], "Name": "S2A_PRODUCT_1.dat", "ContentType": "application/octet-stream",
                       "ContentLength": 1024, "Status": "completed", "StatusMessage": "Completed",
                       "EvictionDate": iso_time(DONE + 5.0)}
    assert (rows[1]["Name"], rows[1]["ContentLength"], rows[1]["Status"], rows[1]["EvictionDate"]) == (
        "S2A_PRODUCT_2", None, "in_progress", None)


def attrs_evolve_item(item: Item, status: OrderStatus, at: float) -> Item:
    return Item(spec=item.spec, status=StatusInfo(status), completed_at=at)


def test_bodies_and_select() -> None:
    row = entities.production_order(_order(OrderStatus.Accepted), keep_days=KEEP)
    assert entities.select(row, ["Status", "Id", "Nope"]) == {"Id": row["Id"], "Status": "queued"}
    assert orjson.loads(entities.collection_body("$metadata#ProductionOrders", [row], count=7, next_link="n?x")) == {
        "@odata.context": "$metadata#ProductionOrders", "@odata.count": 7, "value": [row], "@odata.nextLink": "n?x"}
    assert orjson.loads(entities.collection_body("c", [])) == {"@odata.context": "c", "value": []}


# workflows --------------------------------------------------------------

WORKFLOW_COLLECTIONS = (
    DEMO_COLLECTION,
    CollectionConfig(id="urn:x:numbers", title="Numbers", order_types=("PRODUCT_ORDER", "MASSIVE_ORDER"),
                     option=(OptionConfig(name="resolution", choices=("10", "20.5", "60"), default="10"),
                             OptionConfig(name="free"))),
    CollectionConfig(id="urn:x:subscriptions", order_types=("SUBSCRIPTION_ORDER",)),
)


def test_workflows_are_the_orderable_collections() -> None:
    rows = workflows.workflows_of(WORKFLOW_COLLECTIONS, "9.9")
    for row in rows:
        _check_declared(edm.WORKFLOW.properties, row, "Workflow")
    assert [r["Name"] for r in rows] == ["urn:oseod:demo", "urn:x:numbers"]
    demo, numbers = rows
    assert demo["Id"] == workflow_uuid("urn:oseod:demo") and demo["WorkflowVersion"] == "9.9"
    assert (demo["DisplayName"], demo["InputProductType"], demo["OutputProductType"]) == (
        "oseod demo collection", "urn:oseod:demo", "urn:oseod:demo")
    assert demo["WorkflowOptions"] == [{"Name": "format", "Description": "Output file format", "Type": "string",
                                        "Default": "GeoTIFF", "Value": ["GeoTIFF", "NetCDF"]}]
    assert numbers["DisplayName"] == "Numbers"
    assert numbers["WorkflowOptions"] == [
        {"Name": "resolution", "Description": None, "Type": "number", "Default": "10", "Value": ["10", "20.5", "60"]},
        {"Name": "free", "Description": None, "Type": "string", "Default": None, "Value": []},
    ]


def test_find_workflow_by_name_or_id() -> None:
    find = workflows.find_workflow
    demo_id = workflow_uuid("urn:oseod:demo")
    assert find(WORKFLOW_COLLECTIONS, name="urn:oseod:demo") is DEMO_COLLECTION
    assert find(WORKFLOW_COLLECTIONS, id=demo_id.upper()) is DEMO_COLLECTION
    assert find(WORKFLOW_COLLECTIONS, name="urn:oseod:demo", id=demo_id) is DEMO_COLLECTION
    assert find(WORKFLOW_COLLECTIONS) is None
    assert find(WORKFLOW_COLLECTIONS, name="urn:x:nothing") is None
    assert find(WORKFLOW_COLLECTIONS, name="urn:x:subscriptions") is None  # takes no product orders
    assert find(WORKFLOW_COLLECTIONS, id=workflow_uuid("urn:x:nothing")) is None
    assert find(WORKFLOW_COLLECTIONS, name="urn:x:nothing", id=demo_id) is None
    with pytest.raises(ODataError) as caught:
        find(WORKFLOW_COLLECTIONS, name="urn:x:numbers", id=demo_id)
    assert (caught.value.http_status, caught.value.target) == (400, "WorkflowId")
    # a known name with an Id that is none (python-odata sends "None" for an unset one): the Id is at fault
    with pytest.raises(ODataError) as caught:
        find(WORKFLOW_COLLECTIONS, name="urn:oseod:demo", id="None")
    assert caught.value.target == "WorkflowId" and demo_id in caught.value.message


def test_a_status_message_says_the_status_once() -> None:
    assert entities.status_message(StatusInfo(OrderStatus.Accepted, "Accepted; waiting for processing")) == \
        "Accepted; waiting for processing"
    assert entities.status_message(StatusInfo(OrderStatus.Accepted, "Waiting for processing")) == \
        "Accepted: Waiting for processing"
    assert entities.status_message(StatusInfo(OrderStatus.Failed)) == "Failed"


def test_the_views_stay_pure() -> None:
    """No Twisted, no Redis client, no transport: oseod.odata is a vocabulary."""
    code = ("import sys, oseod.odata.csdl, oseod.odata.entities, oseod.odata.workflows, oseod.odata.requests; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'twisted', 'txredisapi', 'klein'}), "
            "sorted(m for m in sys.modules if m.startswith(('oseod.store', 'oseod.http', 'oseod.jobs'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] []"
