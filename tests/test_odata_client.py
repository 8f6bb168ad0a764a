"""/odata/v1 through a generic OData v4 client: python-odata reads our
``$metadata``, builds its entity classes from it, and drives Workflows and
ProductionOrders with its own query builder and insert, as a user of that
library would, against a real ``twistd -n oseod`` (the demo collection, one row a page).

What python-odata 0.8.1 cannot do against any standard OData v4 service is
said where it matters: its enum literals carry a Microsoft Dynamics namespace
(the $filter is then given as text, which it passes on as it is), its action
calls expect the answer wrapped in ``value``, and it cannot build an entity of
a type that has a bound action but is reached by navigation."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from odata import ODataService  # type: ignore[import-untyped]
from odata.flags import ODataServerFlags  # type: ignore[import-untyped]
from requests.auth import HTTPBasicAuth

from oseod.odata import edm
from oseod.odata.ids import order_id_of, workflow_uuid
from tests.daemon import Daemon
from tests.polling import wait_for

pytestmark = pytest.mark.slow

DEMO = "urn:oseod:demo"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    home = tmp_path_factory.mktemp("odata-client")
    config = home / "oseod.toml"
    # One row a page: every list below reaches python-odata in pages, which it
    # follows by @odata.nextLink.
    config.write_text("[odata]\npage_size = 1\n")
    started = Daemon(home / "data", "--config", str(config))
    try:
        started.start()
        added = started.ctl("user", "add", "carol", "--password-stdin", stdin="carol-password\n")
        assert added.returncode == 0, added.stderr
        yield started
        assert "Traceback" not in started.log()
    finally:
        started.cleanup()


@pytest.fixture
def service(daemon: Daemon) -> ODataService:
    logging.getLogger("odata").setLevel(logging.WARNING)
    # skip_null_properties: an insert then sends what the caller set, not
    # every property of the type as null (the server fields among them).
    return ODataService(f"{daemon.http}/odata/v1/", auth=HTTPBasicAuth("carol", "carol-password"),
                        reflect_entities=True, quiet_progress=True,
                        server_flags=ODataServerFlags(skip_null_properties=True))


def test_the_metadata_reflects_into_entity_classes(service: ODataService) -> None:
    assert set(service.entities) == {s.name for s in edm.ENTITY_SETS}
    production_order = service.entities["ProductionOrders"]
    for name in edm.PRODUCTION_ORDER.names:
        assert hasattr(production_order, name), name
    job_status = service.types[edm.JOB_STATUS]
    assert [m.name for m in job_status] == list(edm.JOB_STATUSES)
    # The bound actions land on the entity types (the binding parameter is
    # named bindingParameter, which this library relies on).
    assert hasattr(production_order, "Cancel") and hasattr(production_order, "Order")


def test_workflows(service: ODataService) -> None:
    Workflow = service.entities["Workflows"]  # noqa: N806 - an entity class
    workflows = service.query(Workflow).all()
    assert [w.Name for w in workflows] == [DEMO]
    demo = service.query(Workflow).get(workflow_uuid(DEMO))  # $filter=(Id eq <uuid>)
    assert demo.Name == DEMO and demo.Id == workflow_uuid(DEMO)
    assert demo.WorkflowOptions == [{"Name": "format", "Description": "Output file format", "Type": "string",
                                     "Default": "GeoTIFF", "Value": ["GeoTIFF", "NetCDF"]}]
    found = service.query(Workflow).filter(Workflow.Name == DEMO).first()
    assert found is not None and found.Id == demo.Id
    assert service.query(Workflow).filter(Workflow.Name == "urn:nope").first() is None


def test_create_read_and_list_production_orders(service: ODataService) -> None:
    ProductionOrder = service.entities["ProductionOrders"]  # noqa: N806 - an entity class
    job_status: Any = service.types[edm.JOB_STATUS]

    made = []
    for n, (option, priority) in enumerate((("NetCDF", 70), ("GeoTIFF", 20))):
        order = ProductionOrder()
        order.Name = f"library-{n}"
        order.WorkflowName = DEMO
        order.WorkflowOptions = [{"Name": "format", "Value": option}]
        order.InputProductReference = {"Reference": f"S1A_IW_GRDH_library_{n}"}
        order.Priority = priority
        service.save(order)  # POST /ProductionOrders
        assert order.Id and order_id_of(order.Id) is not None
        assert order.Status in (job_status.queued, job_status.in_progress, job_status.completed)
        assert order.Priority == priority and order.WorkflowName == DEMO
        made.append(order.Id)

    def completed() -> list[Any]:
        # python-odata writes enum literals as Microsoft.Dynamics.DataEntities.JobStatus'x':
        # the $filter is given as text instead.
        return service.query(ProductionOrder).filter("Status eq 'completed'").all()

    wait_for(lambda: {o.Id for o in completed()} >= set(made), 60, "the library's orders to complete")
    again = service.query(ProductionOrder).get(made[0])
    assert again.Status == job_status.completed and again.Name == "library-0"
    assert again.WorkflowOptions == [{"Name": "format", "Value": "NetCDF"}]
    assert again.CompletedDate is not None and again.CompletedDate >= again.SubmissionDate

    by_priority = (service.query(ProductionOrder).filter(ProductionOrder.Name.startswith("library-"))
                   .order_by(ProductionOrder.Priority.asc()).all())
    assert [o.Id for o in by_priority] == made[::-1]
    top = service.query(ProductionOrder).filter(ProductionOrder.Priority > 50).limit(5).all()
    assert [o.Id for o in top] == [made[0]]
    rows = service.query(ProductionOrder).select(ProductionOrder.Id, ProductionOrder.Priority).all()
    assert sorted((r["Id"], r["Priority"]) for r in rows) == sorted(zip(made, (70, 20)))

    # The navigation ``again.Product`` does GET .../Product, but python-odata
    # 0.8.1 then fails to build the Product object: inspecting its members runs
    # the bound LTA action's descriptor, which needs an entity-set class. The
    # same GET through the library's connection:
    product = service.default_context.connection.execute_get(f"{service.url}ProductionOrders({made[0]})/Product")
    assert product["ContentLength"] == 1024 and product["Status"] == "completed"
