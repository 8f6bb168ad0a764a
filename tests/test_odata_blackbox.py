"""/odata/v1 as Copernicus clients use it, against a real ``twistd -n oseod``:
an ODIP production order, an LTA product order and a batch order placed with
plain HTTP calls (``requests``, as prosEO's aip-client and CDSE scripts do),
followed to ``completed`` with ``$filter``, their result fetched through
``Product/$value``, a cancel, the ODIP completion JSON received on a loopback
receiver, the same orders read back through SOAP GetStatus (schema-valid) and
a SOAP order read over OData; then every refusal a client can provoke, which
must be a 4xx with ``{"error": {"code", "message"}}``, never a 500.

One daemon serves the whole module: it takes seconds to start, and each test
places its own orders (ids never collide), so the tests stay independent."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from lxml import etree

from oseod.jobs.dummy import content
from oseod.odata import edm
from oseod.odata.ids import order_id_of, order_uuid, workflow_uuid
from oseod.oseo.namespaces import OSEO
from tests.callback_receiver import Receiver, receiver
from tests.daemon import Daemon
from tests.odata_wire import (TIME_FORM, UUID_FORM, Client, checked, download, follow, ok, option_of, refused,
                              soap_status, soap_status_text)
from tests.oseo_schema import requires_schemas
from tests.polling import wait_for

pytestmark = [pytest.mark.slow, requires_schemas]

DEMO = "urn:oseod:demo"
HELD = "urn:oseod:held"  # manual moderation: its orders wait, so that they can be cancelled
EDMX = "http://docs.oasis-open.org/odata/ns/edmx"
EDM = "http://docs.oasis-open.org/odata/ns/edm"
SIZE = 2048  # bytes the dummy processor writes per item

CONFIG = f"""
[notifications]
allowed_networks = ["127.0.0.0/8"]
retry_delay = 0.2

[server]
max_request_bytes = 1048576

[odata]
page_size = 3  # lists of more rows come in pages, through @odata.nextLink

[[collection]]
id = "{DEMO}"
title = "oseod demo collection"
processor = "dummy"
processor_options = {{ size = {SIZE} }}
order_types = ["PRODUCT_ORDER", "MASSIVE_ORDER"]
online_data_access = ["ftp", "http"]
identifier_prefixes = ["S2"]
[[collection.option]]
name = "format"
choices = ["GeoTIFF", "NetCDF"]
default = "GeoTIFF"
description = "Output file format"

[[collection]]
id = "{HELD}"
title = "held for approval"
moderation = "manual"
processor = "dummy"
order_types = ["PRODUCT_ORDER", "MASSIVE_ORDER"]
online_data_access = ["http"]
identifier_prefixes = ["HELD_"]
[[collection.option]]
name = "format"
choices = ["GeoTIFF", "NetCDF"]
default = "GeoTIFF"
"""


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    home = tmp_path_factory.mktemp("odata")
    config = home / "oseod.toml"
    config.write_text(CONFIG)
    started = Daemon(home / "data", "--config", str(config))
    try:
        started.start()
        for user in ("alice", "bob", "mallory"):
            added = started.ctl("user", "add", user, "--password-stdin", stdin=f"{user}-password\n")
            assert added.returncode == 0, added.stderr
        yield started
        log = started.log()
        # Whatever the tests sent, the daemon never hit a bug (a 500 is logged so).
        assert "Traceback" not in log and "internal error" not in log, log[-4000:]
    finally:
        started.cleanup()


@pytest.fixture(scope="module")
def hook() -> Iterator[Receiver]:
    """The client's notification receiver, on loopback."""
    with receiver() as server:
        yield server


# --- the service's description ------------------------------------------------------------


def test_service_document_metadata_and_workflows(daemon: Daemon) -> None:
    anonymous = Client(daemon, user=None)
    document = ok(anonymous.get("/"))
    assert {s["name"] for s in document["value"]} >= {s.name for s in edm.ENTITY_SETS} - {"Products"}
    assert all(s["url"] == s["name"] for s in document["value"])

    answer = anonymous.get("/$metadata")
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("application/xml")
    root = etree.fromstring(answer.content)
    assert root.tag == f"{{{EDMX}}}Edmx" and root.get("Version") == "4.0"
    schema = root.find(f".//{{{EDM}}}Schema")
    assert schema is not None and schema.get("Namespace") == edm.NAMESPACE
    # The CSDL says what the model says, type by type.
    for entity_type in edm.ENTITY_TYPES:
        found = schema.find(f"{{{EDM}}}EntityType[@Name='{entity_type.name}']")
        assert found is not None, entity_type.name
        assert [p.get("Name") for p in found.findall(f"{{{EDM}}}Property")] == list(entity_type.names)
        assert [k.get("Name") for k in found.iterfind(f"{{{EDM}}}Key/{{{EDM}}}PropertyRef")] == [entity_type.key]
    members = [m.get("Name") for m in schema.iterfind(f"{{{EDM}}}EnumType[@Name='JobStatus']/{{{EDM}}}Member")]
    assert members == list(edm.JOB_STATUSES)
    container = schema.find(f"{{{EDM}}}EntityContainer")
    assert container is not None
    assert {s.get("Name") for s in container.iterfind(f"{{{EDM}}}EntitySet")} == {s.name for s in edm.ENTITY_SETS}
    actions = {(a.get("Name"), a.find(f"{{{EDM}}}Parameter").get("Type"))  # type: ignore[union-attr]
               for a in schema.iterfind(f"{{{EDM}}}Action")}
    assert ("Order", "Collection(OData.CSC.ProductionOrder)") in actions
    assert ("Cancel", "OData.CSC.ProductionOrder") in actions

    alice = Client(daemon)
    workflows = ok(alice.get("/Workflows"))["value"]
    by_name = {w["Name"]: w for w in workflows}
    assert set(by_name) == {DEMO, HELD}
    demo = by_name[DEMO]
    assert demo["Id"] == workflow_uuid(DEMO) and demo["DisplayName"] == "oseod demo collection"
    assert demo["InputProductType"] == demo["OutputProductType"] == DEMO
    assert set(demo) <= set(edm.WORKFLOW.names) | {"@odata.id", "@odata.etag"}
    [option] = demo["WorkflowOptions"]
    assert (option["Name"], option["Type"], option["Default"], option["Value"]) == (
        "format", "string", "GeoTIFF", ["GeoTIFF", "NetCDF"])
    one = ok(alice.get(f"/Workflows({demo['Id']})"))
    assert {k: v for k, v in one.items() if not k.startswith("@")} == demo
    filtered = ok(alice.get("/Workflows", **{"$filter": f"Name eq '{HELD}'", "$count": "true"}))
    assert filtered["@odata.count"] == 1 and filtered["value"][0]["Name"] == HELD
    refused(alice.get(f"/Workflows({uuid.uuid4()})"), 404)


# --- the three kinds of order, start to end -----------------------------------------------


def test_a_production_order_from_creation_to_download_and_notification(daemon: Daemon, hook: Receiver) -> None:
    alice = Client(daemon)
    body = {
        "Name": "odip-one",
        "WorkflowName": DEMO,
        "WorkflowOptions": [{"Name": "format", "Value": "NetCDF"}],
        "InputProductReference": {"Reference": "S2A_MSIL1C_20260101T101010_N0500_R022_T32TQM.SAFE",
                                  "ContentDate": {"Start": "2026-01-01T10:10:10.000Z",
                                                  "End": "2026-01-01T10:10:40.000Z"}},
        "Priority": 80,
        "NotificationEndpoint": hook.url,
        "NotificationEpUsername": "hook-user",
        "NotificationEpPassword": "hook-secret-1",
    }
    answer = alice.post("/ProductionOrder/OData.CSC.Order", body)
    created = ok(answer, 201)
    order = created["Id"]
    assert UUID_FORM.match(order) and "$metadata#ProductionOrder" in created["@odata.context"]
    assert answer.headers["Location"].endswith(f"/odata/v1/ProductionOrders({order})")
    assert created["Status"] in ("queued", "in_progress", "completed")
    assert (created["Name"], created["Priority"], created["WorkflowName"], created["WorkflowId"]) == (
        "odip-one", 80, DEMO, workflow_uuid(DEMO))
    assert created["WorkflowOptions"] == [{"Name": "format", "Value": "NetCDF"}]
    assert created["InputProductReference"]["Reference"] == body["InputProductReference"]["Reference"]  # type: ignore[index]
    assert created["NotificationEndpoint"] == hook.url and created["NotificationEpUsername"] == "hook-user"
    assert created["NotificationEpPassword"] == "*****"
    assert TIME_FORM.match(created["SubmissionDate"])
    assert set(created) - {"@odata.context"} <= set(edm.PRODUCTION_ORDER.names)

    done = follow(alice, "ProductionOrders", order)
    assert TIME_FORM.match(done["CompletedDate"]) and done["EvictionDate"] > done["CompletedDate"]
    assert done["StatusMessage"].startswith("Completed")
    # Both key forms, and the OSEO orderId itself, reach the same record.
    order_id = order_id_of(order)
    assert order_id is not None and order_uuid(order_id) == order
    shown = daemon.ctl("order", "show", order_id, "--json")  # the operators' view of the same order
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["owner"] == "alice"
    for key in (order, f"'{order}'", f"'{order_id}'"):
        assert ok(alice.get(f"/ProductionOrders({key})"))["Id"] == order
    selected = ok(alice.get(f"/ProductionOrders({order})", **{"$select": "Id,Status"}))
    assert {k for k in selected if not k.startswith("@")} == {"Id", "Status"}

    product = ok(alice.get(f"/ProductionOrders({order})/Product"))
    assert product["ContentLength"] == SIZE and product["Name"].endswith(".dat")
    assert UUID_FORM.match(product["Id"])
    data = download(alice, f"/ProductionOrders({order})/Product", product["Name"])
    assert data == content("1", SIZE)

    # The ODIP completion message, with the Basic credentials the order named.
    def notified() -> dict[str, Any] | None:
        for headers, raw in list(hook.received):
            message = json.loads(raw)
            if message.get("ProductionOrderId") == order:
                assert headers["content-type"].startswith("application/json")
                expected = base64.b64encode(b"hook-user:hook-secret-1").decode()
                assert headers["authorization"] == f"Basic {expected}"
                return message  # type: ignore[no-any-return]
        return None

    message = wait_for(notified, 60, "the completion notification")
    assert message is not None
    assert message["@odata.context"] == "$metadata#Notification/$entity"
    assert message["ProductId"] == product["Id"] and message["ProductName"] == product["Name"]
    assert TIME_FORM.match(message["NotificationDate"]) or message["NotificationDate"].endswith("Z")
    assert "hook-secret-1" not in daemon.log()

    # The same order over SOAP: GetStatus, schema-valid, in OSEO's words.
    monitor = soap_status(daemon, order_id)
    assert monitor.findtext(f"{{{OSEO}}}orderReference") == "odip-one"
    assert monitor.findtext(f"{{{OSEO}}}priority") == "FAST_TRACK"
    assert monitor.findtext(f"{{{OSEO}}}orderType") == "PRODUCT_ORDER"
    assert option_of(monitor) == ["NetCDF"]
    # The download through $value counted: Downloaded over SOAP, still completed over OData.
    wait_for(lambda: soap_status_text(daemon, order_id) == "Downloaded", 30, "the order to be Downloaded")
    again = ok(alice.get(f"/ProductionOrders({order})"))
    assert again["Status"] == "completed" and again["StatusMessage"].startswith("Downloaded")

    # A completed order cannot be cancelled any more.
    refused(alice.post(f"/ProductionOrder({order})/OData.CSC.Cancel", {}), 409)


def test_the_other_create_route_and_defaults(daemon: Daemon) -> None:
    """POST /ProductionOrders (prosEO's form), by WorkflowId, options and Priority left out."""
    alice = Client(daemon)
    created = ok(alice.post("/ProductionOrders", {"WorkflowId": workflow_uuid(DEMO),
                                                 "InputProductReference": {"Reference": "S2B_default_options"}}), 201)
    assert created["Priority"] == 50 and created["WorkflowName"] == DEMO
    assert created["NotificationEpPassword"] is None
    follow(alice, "ProductionOrders", created["Id"])
    order_id = order_id_of(created["Id"])
    assert order_id is not None
    monitor = soap_status(daemon, order_id)
    assert option_of(monitor) == ["GeoTIFF"]  # the workflow's default
    assert monitor.findtext(f"{{{OSEO}}}priority") in (None, "STANDARD")


def test_an_lta_product_order(daemon: Daemon) -> None:
    alice = Client(daemon)
    identifier = "S2B_MSIL2A_20260202T020202_N0500_R031_T31UDQ"
    answer = alice.post(f"/Products('{identifier}')/OData.CSC.Order", {"Priority": 50})
    created = ok(answer, 201)
    order = created["Id"]
    assert UUID_FORM.match(order) and "Order" in created["@odata.context"]
    assert set(created) - {"@odata.context"} <= set(edm.ORDER.names)
    assert created["Priority"] == 50 and created["Status"] in edm.JOB_STATUSES

    done = follow(alice, "Orders", order)
    assert TIME_FORM.match(done["CompletedDate"]) and "OrderSize" in done
    product = ok(alice.get(f"/Orders({order})/Product"))
    assert identifier in product["Name"] and product["ContentLength"] == SIZE
    assert download(alice, f"/Orders({order})/Product", product["Name"]) == content("1", SIZE)
    # LTA clients then use the Product's own Id: Products(<Id>) and Products(<Id>)/$value.
    assert ok(alice.get(f"/Products({product['Id']})"))["Id"] == product["Id"]
    assert download(alice, f"/Products({product['Id']})", product["Name"]) == content("1", SIZE)
    refused(Client(daemon, "bob").get(f"/Products({product['Id']})/$value"), 404)
    refused(alice.get(f"/Products({uuid.uuid4()})"), 404)

    order_id = order_id_of(order)
    assert order_id is not None
    monitor = soap_status(daemon, order_id)
    assert monitor.findtext(f"{{{OSEO}}}orderType") == "PRODUCT_ORDER"
    assert monitor.findtext(f".//{{{OSEO}}}orderItem/{{{OSEO}}}productId/{{{OSEO}}}identifier") == identifier
    assert monitor.findtext(f".//{{{OSEO}}}orderItem/{{{OSEO}}}productId/{{{OSEO}}}collectionId") == DEMO
    # An identifier no collection claims; other users' LTA orders.
    assert alice.post("/Products('X9_unclaimed')/OData.CSC.Order", {}).status_code in (400, 404)
    refused(Client(daemon, "bob").get(f"/Orders({order})/Product"), 404)
    # Also visible as a production order (one record, several views).
    assert ok(alice.get(f"/ProductionOrders({order})"))["Id"] == order


def test_a_batch_order(daemon: Daemon) -> None:
    alice = Client(daemon)
    identifiers = [f"S2A_batch_{n}" for n in range(3)]
    created = ok(alice.post("/BatchOrder/OData.CSC.Order", {
        "Name": "batch-one", "WorkflowName": DEMO, "WorkflowOptions": [{"Name": "format", "Value": ["NetCDF"]}],
        "IdentifierList": identifiers, "BatchSize": 2, "Priority": 30}), 201)
    order = created["Id"]
    assert created["Name"] == "batch-one" and created["BatchSize"] == 2 and created["Priority"] == 30
    assert set(created) - {"@odata.context"} <= set(edm.BATCH_ORDER.names)

    done = follow(alice, "BatchOrders", order)
    assert done["ProductCount"] == 3
    products = ok(alice.get(f"/BatchOrders({order})/Products"))["value"]
    assert len(products) == 3 and {p["Status"] for p in products} == {"completed"}
    assert all(any(i in p["Name"] for i in identifiers) for p in products)
    assert len({p["Id"] for p in products}) == 3

    order_id = order_id_of(order)
    assert order_id is not None
    monitor = soap_status(daemon, order_id)
    # OSEO's massive order: a PRODUCT_ORDER whose orderReference says so.
    assert monitor.findtext(f"{{{OSEO}}}orderType") == "PRODUCT_ORDER"
    assert monitor.findtext(f"{{{OSEO}}}orderReference") == "Massive order"
    assert option_of(monitor) == ["NetCDF"] * 3
    items = monitor.findall(f"{{{OSEO}}}orderItem")
    assert sorted(i.findtext(f"{{{OSEO}}}productId/{{{OSEO}}}identifier") or "" for i in items) == identifiers
    assert {i.findtext(f"{{{OSEO}}}orderItemStatusInfo/{{{OSEO}}}status") for i in items} == {"Completed"}
    for product in products:  # each item's result by its Product Id, as an LTA client fetches a batch
        name = product["Name"]
        item = next(str(n + 1) for n, i in enumerate(identifiers) if i in name)
        assert download(alice, f"/Products({product['Id']})", name) == content(item, SIZE)
    # Only massive orders are batch orders; a batch order is also one of the caller's production orders.
    single = ok(alice.post("/ProductionOrders", {"WorkflowName": DEMO,
                                                 "InputProductReference": {"Reference": "S2_not_a_batch"}}), 201)["Id"]
    refused(alice.get(f"/BatchOrders({single})"), 404)
    for entity_set, expected in (("BatchOrders", 0), ("ProductionOrders", 1)):
        listed = ok(alice.get(f"/{entity_set}", **{"$filter": f"Id eq {single}", "$count": "true"}))
        assert listed["@odata.count"] == expected, (entity_set, listed)
    assert ok(alice.get("/BatchOrders", **{"$filter": f"Id eq {order}", "$count": "true"}))["@odata.count"] == 1


def test_cancel_a_waiting_order(daemon: Daemon) -> None:
    alice = Client(daemon)
    created = ok(alice.post("/ProductionOrder/OData.CSC.Order", {
        # CDSE's form: keyed by WorkflowName, WorkflowId null.
        "Name": "to-cancel", "WorkflowName": HELD, "WorkflowId": None, "InputProductReference": {"Reference": "HELD_1"}}),
        201)
    order = created["Id"]
    assert created["Status"] == "queued" and created["StatusMessage"].startswith("Submitted")
    waiting = ok(alice.get("/ProductionOrders", **{"$filter": f"Id eq {order} and Status eq 'queued'",
                                                    "$count": "true"}))
    assert waiting["@odata.count"] == 1

    cancelled = ok(alice.post(f"/ProductionOrder({order})/OData.CSC.Cancel", {}))
    assert cancelled["Id"] == order and cancelled["Status"] == "cancelled"
    follow(alice, "ProductionOrders", order, "cancelled")
    order_id = order_id_of(order)
    assert order_id is not None and soap_status_text(daemon, order_id) == "Cancelled"
    refused(alice.post(f"/ProductionOrders({order})/OData.CSC.Cancel", {}), 409)
    refused(alice.get(f"/ProductionOrders({order})/Product/$value"), 404)

    batch = ok(alice.post("/BatchOrder/OData.CSC.Order", {
        "WorkflowName": HELD, "IdentifierList": ["HELD_a", "HELD_b"], "BatchSize": 1}), 201)
    gone = ok(alice.post(f"/BatchOrders({batch['Id']})/OData.CSC.Cancel", {}))
    assert gone["Status"] == "cancelled"


def test_the_flow_with_curl(daemon: Daemon, tmp_path: Path) -> None:
    """The README's calls, with curl itself: create, poll with $filter,
    fetch $value following the 307 with the credentials."""
    curl = shutil.which("curl")
    assert curl, "curl is needed (Debian: apt-get install curl)"
    base = daemon.http + "/odata/v1"

    def run(*args: str) -> str:
        done = subprocess.run([curl, "-sS", "--fail-with-body", "-u", "alice:alice-password", *args],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, (args, done.returncode, done.stdout, done.stderr)
        return done.stdout

    created = json.loads(run("-H", "Content-Type: application/json", f"{base}/ProductionOrder/OData.CSC.Order",
                             "-d", json.dumps({"Name": "by curl", "WorkflowName": DEMO,
                                               "InputProductReference": {"Reference": "S2_by_curl"}})))
    order = created["Id"]

    def completed() -> bool:
        page = json.loads(run("-G", f"{base}/ProductionOrders", "--data-urlencode",
                              f"$filter=Id eq {order} and Status eq 'completed'", "--data-urlencode", "$count=true"))
        return page["@odata.count"] == 1  # type: ignore[no-any-return]

    wait_for(completed, 60, "the curl order to complete")
    target = tmp_path / "product.dat"
    run("-L", "-o", str(target), f"{base}/ProductionOrders({order})/Product/$value")
    assert target.read_bytes() == content("1", SIZE)


# --- both doors, one record ---------------------------------------------------------------


def test_a_soap_order_read_over_odata(daemon: Daemon) -> None:
    from tests.test_daemon import oseo_call
    from tests.test_http_ordering import submit

    ack = oseo_call(daemon, "alice", submit("x1", reference="from-soap", option="NetCDF"))
    order_id = ack.findtext(f"{{{OSEO}}}orderId")
    assert order_id
    order = order_uuid(order_id)
    alice = Client(daemon)
    row = follow(alice, "ProductionOrders", order)
    assert (row["Name"], row["Priority"]) == ("from-soap", 50)
    assert ok(alice.get(f"/Orders({order})"))["Id"] == order
    by_name = ok(alice.get("/ProductionOrders", **{"$filter": "Name eq 'from-soap'", "$count": "true"}))
    assert [r["Id"] for r in by_name["value"]] == [order] and by_name["@odata.count"] == 1
    product = ok(alice.get(f"/ProductionOrders({order})/Product"))
    assert product["ContentLength"] == SIZE
    refused(Client(daemon, "bob").get(f"/ProductionOrders({order})"), 404)


def test_listing_ordering_and_paging(daemon: Daemon) -> None:
    bob = Client(daemon, "bob")
    made = [ok(bob.post("/ProductionOrder/OData.CSC.Order", {
        "Name": f"page-{n}", "WorkflowName": DEMO, "Priority": 10 + n,
        "InputProductReference": {"Reference": f"S2_page_{n}"}}), 201)["Id"] for n in range(5)]
    for order in made:
        follow(bob, "ProductionOrders", order)
    # Pages of [odata] page_size rows, the next one through @odata.nextLink, as a client follows them.
    for options in ({"$count": "true", "$orderby": "Priority desc"}, {"$count": "true"}):
        pages = [ok(bob.get("/ProductionOrders", **options))]
        while "@odata.nextLink" in pages[-1]:
            assert len(pages) < 5, pages
            answer = bob.session.get(pages[-1]["@odata.nextLink"], allow_redirects=False, timeout=30)
            pages.append(ok(checked(answer)))
        assert [len(p["value"]) for p in pages] == [3, 2] and pages[0]["@odata.count"] == 5
        listed = [r["Id"] for p in pages for r in p["value"]]
        if "$orderby" in options:
            assert listed == made[::-1]
        assert sorted(listed) == sorted(made)
    page = ok(bob.get("/ProductionOrders", **{"$top": "2", "$skip": "1", "$orderby": "Priority asc",
                                               "$select": "Id,Priority"}))
    assert [r["Id"] for r in page["value"]] == made[1:3]
    high = ok(bob.get("/ProductionOrders", **{"$filter": "Priority ge 13 and startswith(Name,'page-')",
                                               "$count": "true"}))
    assert sorted(r["Id"] for r in high["value"]) == sorted(made[3:])
    enum_form = ok(bob.get("/ProductionOrders", **{"$filter": "Status eq OData.CSC.JobStatus'completed'",
                                                    "$count": "true"}))
    assert enum_form["@odata.count"] == 5
    recent = ok(bob.get("/ProductionOrders", **{"$filter": "SubmissionDate gt 2020-01-01T00:00:00.000Z "
                                                            "and Status in ('completed','failed')",
                                                 "$count": "true"}))
    assert recent["@odata.count"] == 5 and len(recent["value"]) == 3 and "@odata.nextLink" in recent


# --- what a client gets wrong -------------------------------------------------------------


def test_refusals_are_4xx_in_the_error_shape(daemon: Daemon) -> None:
    alice = Client(daemon)
    create = "/ProductionOrder/OData.CSC.Order"
    good = {"WorkflowName": DEMO, "InputProductReference": {"Reference": "S2_ok"}}

    assert refused(alice.post(create, raw=b'{"WorkflowName": '), 400)
    assert refused(alice.post(create, raw=b"[1, 2]"), 400)
    assert refused(alice.post(create, raw=b"\xff\xfe not utf-8"), 400)
    unknown = refused(alice.post(create, {**good, "WorkflowName": "urn:no:such-workflow"}), 400)
    assert unknown.get("target") == "WorkflowName"
    refused(alice.post(create, {**good, "WorkflowId": str(uuid.uuid4())}), 400)
    refused(alice.post(create, {**good, "WorkflowId": workflow_uuid(HELD)}), 400)  # disagrees with the name
    bad_value = refused(alice.post(create, {**good, "WorkflowOptions": [{"Name": "format", "Value": "JPEG"}]}), 400)
    assert "JPEG" in bad_value["message"] and bad_value.get("target", "").startswith("WorkflowOptions"), bad_value
    refused(alice.post(create, {**good, "WorkflowOptions": [{"Name": "colour", "Value": "red"}]}), 400)
    refused(alice.post(create, {**good, "WorkflowOptions": [{"Name": "format"}]}), 400)
    for priority in (0, 101, "high", 5.5):
        assert refused(alice.post(create, {**good, "Priority": priority}), 400).get("target") == "Priority"
    extra = refused(alice.post(create, {**good, "Colour": "red"}), 400)
    assert "Colour" in extra["message"], extra
    soap_only = refused(alice.post(create, {**good, "DeliveryMethod": "ftp"}), 400)
    assert "/oseo" in soap_only["message"], soap_only
    refused(alice.post(create, {"WorkflowName": DEMO}), 400)  # no input product
    refused(alice.post(create, {**good, "NotificationEndpoint": "gopher://example.org/"}), 400)
    metadata_service = refused(alice.post(create, {**good, "NotificationEndpoint": "http://169.254.169.254/latest"}),
                               400)  # the SSRF guard of the call-backs, at Submit
    assert metadata_service.get("target") == "NotificationEndpoint", metadata_service
    refused(alice.post("/BatchOrder/OData.CSC.Order", {"WorkflowName": DEMO, "IdentifierList": []}), 400)
    refused(alice.post("/BatchOrder/OData.CSC.Order", {"WorkflowName": DEMO, "IdentifierList": "S2_x"}), 400)

    for params in ({"$filter": "Status eq"}, {"$filter": "Nope eq 1"}, {"$filter": "Status eq 'sleeping' or"},
                   {"$orderby": "Nope"}, {"$top": "-1"}, {"$top": "many"}, {"$skip": "x"},
                   {"$count": "perhaps"}, {"$select": "Nope"}, {"$filter": "WorkflowOptions eq 'x'"}):
        refused(alice.get("/ProductionOrders", **params), 400)

    refused(alice.get(f"/ProductionOrders({uuid.uuid4()})"), 404)
    assert alice.get("/ProductionOrders(not-an-id)").status_code in (400, 404)
    refused(alice.get("/NoSuchSet"), 404)
    refused(alice.get("/ProductionOrders", **{"$expand": "Product"}), 400)
    for method in ("PUT", "PATCH", "DELETE"):  # orders change through their actions only
        refused(checked(alice.session.request(method, f"{alice.base}/ProductionOrders({uuid.uuid4()})", json={},
                                              timeout=30)), 405)
    # Too large: refused by the site before any route reads it, in OData's shape all the same.
    huge = alice.session.post(alice.base + create, data=b"{" + b" " * (1 << 20) + b"}", timeout=30,
                              headers={"Content-Type": "application/json"})
    assert refused(huge, 413)["code"] == "TooLarge" and "1048576" in huge.json()["error"]["message"]
    assert huge.headers["OData-Version"] == "4.0"
    refused(alice.post(f"/ProductionOrder({uuid.uuid4()})/OData.CSC.Cancel", {}), 404)


def test_other_users_orders_are_not_found(daemon: Daemon) -> None:
    alice, bob = Client(daemon), Client(daemon, "bob")
    order = ok(alice.post("/ProductionOrder/OData.CSC.Order", {
        "WorkflowName": DEMO, "InputProductReference": {"Reference": "S2_alice_only"}}), 201)["Id"]
    follow(alice, "ProductionOrders", order)
    for path in (f"/ProductionOrders({order})", f"/Orders({order})", f"/ProductionOrders({order})/Product",
                 f"/ProductionOrders({order})/Product/$value", f"/Orders({order})/Product"):
        mine = alice.get(path)
        assert mine.status_code in (200, 307), (path, mine.status_code)
        theirs = refused(bob.get(path), 404)
        nobodys = refused(bob.get(path.replace(order, str(uuid.uuid4()))), 404)
        assert theirs["code"] == nobodys["code"]  # alike: nothing tells that the order exists
    refused(bob.post(f"/ProductionOrder({order})/OData.CSC.Cancel", {}), 404)
    listed = ok(bob.get("/ProductionOrders", **{"$filter": f"Id eq {order}", "$count": "true"}))
    assert listed["@odata.count"] == 0 and listed["value"] == []


def test_credentials(daemon: Daemon) -> None:
    for client in (Client(daemon, user=None), Client(daemon, "alice", "wrong-password"),
                   Client(daemon, token="not-a-token")):
        answer = client.get("/ProductionOrders")
        refused(answer, 401)
        challenge = answer.headers["WWW-Authenticate"]
        assert "Basic" in challenge and "Bearer" in challenge
        refused(client.post("/ProductionOrder/OData.CSC.Order", {"WorkflowName": DEMO}), 401)
    refused(Client(daemon, user=None).get("/Workflows"), 401)


def test_a_locked_out_name_gets_429(daemon: Daemon) -> None:
    """[auth] max_failures_per_user (5) wrong passwords lock the name out of
    /odata too, even with the right one; the answer says for how long."""
    wrong = Client(daemon, "mallory", "not-her-password")
    for _ in range(5):
        refused(wrong.get("/Workflows"), 401)
    for client in (wrong, Client(daemon, "mallory")):
        answer = client.get("/Workflows")
        refused(answer, 429)
        assert int(answer.headers["Retry-After"]) > 0


def test_a_bearer_token(daemon: Daemon) -> None:
    token_url = daemon.http + "/odata/v1/token"
    answer = requests.post(token_url, data={"grant_type": "password", "username": "alice",
                                            "password": "alice-password"}, timeout=30)
    assert answer.status_code == 200, answer.text
    token = answer.json()
    assert token["token_type"].lower() == "bearer" and token["expires_in"] > 0
    assert "alice-password" not in answer.text

    with_token = Client(daemon, token=token["access_token"])
    created = ok(with_token.post("/ProductionOrder/OData.CSC.Order", {
        "WorkflowName": DEMO, "InputProductReference": {"Reference": "S2_by_token"}}), 201)
    assert ok(Client(daemon).get(f"/ProductionOrders({created['Id']})"))["Id"] == created["Id"]  # alice's
    follow(with_token, "ProductionOrders", created["Id"])
    product = ok(with_token.get(f"/ProductionOrders({created['Id']})/Product"))
    assert download(with_token, f"/ProductionOrders({created['Id']})/Product", product["Name"]) == content("1", SIZE)

    # client_credentials with HTTP Basic, as prosEO's token endpoint takes it.
    second = requests.post(token_url, data={"grant_type": "client_credentials"}, auth=("bob", "bob-password"),
                           timeout=30)
    assert second.status_code == 200, second.text
    ok(Client(daemon, token=second.json()["access_token"]).get("/Workflows"))

    wrong = requests.post(token_url, data={"grant_type": "password", "username": "alice", "password": "nope"},
                          timeout=30)
    assert wrong.status_code in (400, 401) and wrong.json()["error"] == "invalid_grant"
    unsupported = requests.post(token_url, data={"grant_type": "implicit"}, timeout=30)
    assert unsupported.status_code == 400 and unsupported.json()["error"] == "unsupported_grant_type"
