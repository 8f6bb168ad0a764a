"""/odata/v1 over the wire: the daemon's own wiring (oseod.tap.build_parts),
the real Klein resources behind the real site on loopback, a real Redis.
Production orders, LTA orders and batch orders placed, read, listed,
downloaded and cancelled; the same records read through SOAP (answers
validated against the OSEO schemas); every refusal's status and shape."""

from __future__ import annotations

import base64
import json
import os
from typing import Any
from urllib.parse import quote

import pytest_twisted
import treq
from lxml import etree
from twisted.internet import reactor

from oseod.auth.secrets import SecretBox
from oseod.config import Config, parse_config
from oseod.core.accounts import AccountService
from oseod.http.site import OseodSite
from oseod.odata.ids import order_id_of, order_uuid
from oseod.oseo.namespaces import OSEO
from oseod.store.connection import Redis
from tests.oseo_schema import assert_valid, requires_schemas
from tests.parts import guarded, make_parts
from tests.polling import eventually
from tests.pools import POOLS
from tests.redis_process import RedisProcess
from tests.test_http_ordering import envelope, get_status, submit, token

pytestmark = requires_schemas

JSON = "application/json;odata.metadata=minimal"
WORKFLOW = "urn:oseod:demo"


class Answer:
    def __init__(self, code: int, headers: Any, body: bytes) -> None:
        self.code = code
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        values = self.headers.getRawHeaders(name)
        return values[0] if values else None

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error(self) -> dict[str, Any]:
        assert self.header("content-type") == JSON, self.header("content-type")
        error = self.json["error"]
        assert isinstance(error, dict) and error["message"], error
        return error


class Server:
    def __init__(self, redis: Redis, config: Config) -> None:
        secrets = SecretBox(os.urandom(32))
        self.parts = make_parts(config, redis, digest_secrets=secrets, listener_url=lambda scheme: self.base)
        self.accounts = AccountService(self.parts.users, reactor, secrets=secrets, threads=POOLS)
        site = OseodSite(self.parts.frontend.resource(), config.server.max_request_bytes)
        self.port: Any = reactor.listenTCP(0, guarded(site, config), interface="127.0.0.1")
        self.base = f"http://127.0.0.1:{self.port.getHost().port}"
        self.root = f"{self.base}/odata/v1"

    async def call(self, method: str, path: str, body: Any = None, *, user: str | None = "alice",
                   password: str | None = None, raw: bytes | None = None, **headers: str) -> Answer:
        all_headers = dict(headers)
        if user is not None:
            credentials = f"{user}:{password or user + '-password'}".encode()
            all_headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode()
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None:
            all_headers.setdefault("Content-Type", "application/json")
        url = path if path.startswith("http") else f"{self.root}{path}"
        response = await treq.request(method, url, data=data, headers=all_headers, persistent=False,
                                      allow_redirects=False)
        content = await response.content()
        assert response.code < 500 or response.code == 503, content  # never a 500
        if url.startswith(self.root) and not url.endswith("/token"):
            assert response.headers.getRawHeaders("odata-version") == ["4.0"], (url, response.code)
        return Answer(response.code, response.headers, content)

    async def soap(self, payload: str, user: str = "alice") -> etree._Element:
        response = await treq.post(f"{self.base}/oseo", data=envelope(payload, token(user, f"{user}-password")),
                                   headers={"Content-Type": "application/soap+xml"}, persistent=False)
        answer = await response.content()
        assert response.code == 200, answer
        return assert_valid(answer)

    async def production_order(self, **fields: Any) -> dict[str, Any]:
        body = {"WorkflowName": WORKFLOW, "InputProductReference": {"Reference": "S2A_MSIL1C_1"}, **fields}
        created = await self.call("POST", "/ProductionOrder/OData.CSC.Order", body)
        assert created.code == 201, created.body
        row: dict[str, Any] = created.json
        assert created.header("location") == f"{self.root}/ProductionOrders({row['Id']})"
        return row


@pytest_twisted.async_yield_fixture
async def server(redis: Redis) -> Any:
    made: list[Server] = []

    async def make(config: Config = Config()) -> Server:
        srv = Server(redis, config)
        made.append(srv)
        await srv.parts.engine.start()
        await srv.accounts.add("alice", "alice-password")
        await srv.accounts.add("bob", "bob-password")
        return srv

    yield make
    for srv in made:
        await srv.port.stopListening()
        await srv.parts.engine.drain()
        await srv.parts.engine.stop()


@pytest_twisted.ensureDeferred
async def test_service_document_metadata_and_workflows(server: Any) -> None:
    srv = await server()
    for path in ("", "/"):
        document = await srv.call("GET", path, user=None)
        assert document.code == 200 and document.header("content-type") == JSON
        assert document.json["@odata.context"] == f"{srv.root}/$metadata"
        assert {"ProductionOrders", "Orders", "BatchOrders", "Workflows"} <= {s["name"] for s in document.json["value"]}
    for path in ("/$metadata", "/%24metadata"):
        metadata = await srv.call("GET", path, user=None)
        assert metadata.code == 200 and metadata.header("content-type").startswith("application/xml")
        assert etree.fromstring(metadata.body).tag.endswith("Edmx")

    workflows = await srv.call("GET", "/Workflows")
    assert workflows.code == 200 and workflows.header("content-type") == JSON
    [workflow] = workflows.json["value"]
    assert workflow["Name"] == WORKFLOW
    [option] = workflow["WorkflowOptions"]
    assert option["Name"] == "format" and option["Default"] == "GeoTIFF" and set(option["Value"]) == {"GeoTIFF", "NetCDF"}
    one = await srv.call("GET", f"/Workflows({workflow['Id']})")
    assert one.code == 200 and one.json["Name"] == WORKFLOW
    assert (await srv.call("GET", f"/Workflows('{workflow['Id']}')")).json["Id"] == workflow["Id"]
    assert (await srv.call("GET", "/Workflows(00000000-0000-0000-0000-000000000000)")).code == 404


@pytest_twisted.ensureDeferred
async def test_production_order_created_read_listed_downloaded(server: Any) -> None:
    srv = await server()
    row = await srv.production_order(Name="odip 1", Priority=80,
                                     WorkflowOptions=[{"Name": "format", "Value": "NetCDF"}])
    assert row["Status"] == "queued" and row["Priority"] == 80 and row["Name"] == "odip 1"
    assert row["@odata.context"] == f"{srv.root}/$metadata#ProductionOrders/$entity"
    order_id = order_id_of(row["Id"])
    assert order_id is not None
    await srv.parts.engine.drain()

    for key in (row["Id"], f"'{row['Id']}'", order_id, quote(f"'{row['Id']}'")):
        read = await srv.call("GET", f"/ProductionOrders({key})")
        assert read.code == 200, (key, read.body)
        assert read.json["Id"] == row["Id"] and read.json["Status"] == "completed"
    assert read.json["WorkflowOptions"] == [{"Name": "format", "Value": "NetCDF"}]
    assert read.json["StatusMessage"].startswith("Completed")
    singular = await srv.call("GET", f"/ProductionOrder({row['Id']})?$select=Id,Status")
    assert set(singular.json) == {"@odata.context", "Id", "Status"}

    listed = await srv.call("GET", "/ProductionOrders?$filter=Status eq 'completed'&$count=true")
    assert listed.code == 200 and row["Id"] in [r["Id"] for r in listed.json["value"]]
    assert listed.json["@odata.count"] == 1

    product = await srv.call("GET", f"/ProductionOrders({row['Id']})/Product")
    assert product.code == 200 and product.json["Status"] == "completed" and product.json["ContentLength"] > 0
    value = await srv.call("GET", f"/ProductionOrders({row['Id']})/Product/$value")
    assert value.code == 307
    location = value.header("location")
    assert location is not None and location.startswith(f"{srv.base}/results/{order_id}/1/")
    download = await srv.call("GET", location)
    assert download.code == 200 and len(download.body) == product.json["ContentLength"]
    # The download counted: the order is Downloaded (still "completed" in OData's words).
    async def downloaded() -> bool:
        after = (await srv.call("GET", f"/ProductionOrders({row['Id']})")).json
        return bool(after["Status"] == "completed" and after["StatusMessage"].startswith("Downloaded"))

    await eventually(downloaded, what="the order Downloaded")  # (recorded once the answer was sent)

    refused = await srv.call("POST", f"/ProductionOrder({row['Id']})/OData.CSC.Cancel", {})
    assert refused.code == 409 and refused.error["code"] == "Conflict"


@pytest_twisted.ensureDeferred
async def test_production_order_by_the_set_name_then_cancelled(server: Any) -> None:
    srv = await server(parse_config({"orders": {"moderation": "manual"}}))
    created = await srv.call("POST", "/ProductionOrders", {"WorkflowId": (await srv.call("GET", "/Workflows")).json[
        "value"][0]["Id"], "InputProductReference": {"Reference": "S2A_2"}})
    assert created.code == 201 and created.json["Status"] == "queued"
    assert created.json["StatusMessage"].startswith("Submitted")
    not_ready = await srv.call("GET", f"/ProductionOrders({created.json['Id']})/Product/$value")
    assert not_ready.code == 404 and not_ready.error["code"] == "NotFound"
    cancelled = await srv.call("POST", f"/ProductionOrders({created.json['Id']})/OData.CSC.Cancel", {})
    assert cancelled.code == 200 and cancelled.json["Status"] == "cancelled"
    again = await srv.call("POST", f"/ProductionOrder({created.json['Id']})/OData.CSC.Cancel", {})
    assert again.code == 409 and again.error["target"] == "Id"


@pytest_twisted.ensureDeferred
async def test_lta_product_order(server: Any) -> None:
    srv = await server()
    created = await srv.call("POST", "/Products(S2A_MSIL2A_20260101)/OData.CSC.Order", {"Priority": 50})
    assert created.code == 201, created.body
    assert created.json["@odata.context"] == f"{srv.root}/$metadata#Orders/$entity"
    assert "OrderSize" in created.json and "WorkflowName" not in created.json
    uuid = created.json["Id"]
    assert created.header("location") == f"{srv.root}/Orders({uuid})"
    await srv.parts.engine.drain()
    polled = await srv.call("GET", f"/Orders?$filter=Id eq {uuid}&$count=true&$top=1000")
    assert polled.code == 200 and polled.json["@odata.count"] == 1
    assert polled.json["value"][0]["Status"] == "completed"
    assert (await srv.call("GET", f"/Orders('{uuid}')")).json["Status"] == "completed"
    product = await srv.call("GET", f"/Orders({uuid})/Product")
    assert product.code == 200 and product.json["Status"] == "completed"
    value = await srv.call("GET", f"/Order({uuid})/Product/$value")
    assert value.code == 307 and (value.header("location") or "").startswith(f"{srv.base}/results/")
    # The LTA download: by the Product's own Id, as its row gave it.
    by_id = await srv.call("GET", f"/Products({product.json['Id']})")
    assert by_id.code == 200 and by_id.json["Id"] == product.json["Id"] and by_id.json["Status"] == "completed"
    assert by_id.json["@odata.context"] == f"{srv.root}/$metadata#Products/$entity"
    lta_value = await srv.call("GET", f"/Products('{product.json['Id']}')/$value")
    assert lta_value.code == 307 and lta_value.header("location") == value.header("location")
    for path in (f"/Products({product.json['Id']})", f"/Products({product.json['Id']})/$value"):
        others = await srv.call("GET", path, user="bob")
        assert others.code == 404 and others.error["code"] == "NotFound", path
    assert (await srv.call("GET", f"/Products({uuid})/$value")).code == 404  # an order's Id is no Product's


@pytest_twisted.ensureDeferred
async def test_batch_order(server: Any) -> None:
    srv = await server()
    created = await srv.call("POST", "/BatchOrder/OData.CSC.Order", {
        "Name": "my batch", "WorkflowName": WORKFLOW, "IdentifierList": ["P1", "P2", "P3"], "BatchSize": 2,
        "WorkflowOptions": [{"Name": "format", "Value": ["NetCDF"]}]})
    assert created.code == 201, created.body
    uuid = created.json["Id"]
    assert created.json["ProductCount"] == 3 and created.json["Name"] == "my batch"
    assert created.header("location") == f"{srv.root}/BatchOrders({uuid})"
    await srv.parts.engine.drain()
    read = await srv.call("GET", f"/BatchOrders({uuid})")
    assert read.code == 200 and read.json["Status"] == "completed"
    products = await srv.call("GET", f"/BatchOrders({uuid})/Products")
    assert products.code == 200 and [p["Status"] for p in products.json["value"]] == ["completed"] * 3
    production = await srv.production_order()
    listed = await srv.call("GET", "/BatchOrders")
    assert [r["Id"] for r in listed.json["value"]] == [uuid]  # production orders are not batches
    assert (await srv.call("GET", f"/BatchOrders({production['Id']})")).code == 404
    # ...but every order is a ProductionOrder and an Order.
    assert (await srv.call("GET", f"/Orders({uuid})")).code == 200
    done = await srv.call("POST", f"/BatchOrder({uuid})/OData.CSC.Cancel", {})
    assert done.code == 409


@pytest_twisted.ensureDeferred
async def test_one_record_through_both_doors(server: Any) -> None:
    srv = await server()
    ack = await srv.soap(submit("x1", reference="over soap"))
    soap_id = ack.findtext(f"{{{OSEO}}}orderId")
    assert soap_id is not None
    await srv.parts.engine.drain()
    for key in (soap_id, order_uuid(soap_id)):
        read = await srv.call("GET", f"/ProductionOrders({key})")
        assert read.code == 200 and read.json["Id"] == order_uuid(soap_id)
    assert read.json["Priority"] == 50 and read.json["Status"] == "completed"
    assert read.json["WorkflowName"] == WORKFLOW
    assert (await srv.call("GET", f"/Orders({soap_id})")).json["Status"] == "completed"
    # Ordered for FTP over SOAP, its result is downloaded over HTTP all the same.
    value = await srv.call("GET", f"/Orders({soap_id})/Product/$value")
    assert value.code == 307 and (await srv.call("GET", value.header("location") or "")).code == 200

    row = await srv.production_order(Name="over odata")
    status = await srv.soap(get_status(order_id_of(row["Id"]) or ""))
    monitor = status.find(f"{{{OSEO}}}orderMonitorSpecification")
    assert monitor is not None
    assert monitor.findtext(f"{{{OSEO}}}orderReference") == "over odata"
    assert monitor.findtext(f"{{{OSEO}}}orderStatusInfo/{{{OSEO}}}status") in ("Accepted", "InProduction",
                                                                               "Completed")


@pytest_twisted.ensureDeferred
async def test_refusals(server: Any) -> None:
    srv = await server(parse_config({"server": {"max_request_bytes": 4096}}))
    bad_json = await srv.call("POST", "/ProductionOrder/OData.CSC.Order", raw=b"{not json")
    assert bad_json.code == 400 and bad_json.error
    unknown = await srv.call("POST", "/ProductionOrders", {"WorkflowName": "urn:nope",
                                                           "InputProductReference": {"Reference": "x"}})
    assert unknown.code == 400 and unknown.error["target"] == "WorkflowName"
    bad_option = await srv.call("POST", "/ProductionOrders", {
        "WorkflowName": WORKFLOW, "InputProductReference": {"Reference": "x"},
        "WorkflowOptions": [{"Name": "format", "Value": "JPEG2000"}]})
    assert bad_option.code == 400 and bad_option.error["code"] == "InvalidParameterValue"
    soap_only = await srv.call("POST", "/ProductionOrders", {
        "WorkflowName": WORKFLOW, "InputProductReference": {"Reference": "x"}, "DeliveryMethod": "ftp"})
    assert soap_only.code == 400 and "/oseo" in soap_only.error["message"]
    bad_filter = await srv.call("GET", "/ProductionOrders?$filter=Nonsense eq 1")
    assert bad_filter.code == 400 and bad_filter.error["target"] == "$filter"
    too_large = await srv.call("POST", "/ProductionOrders", raw=b"{" + b" " * 8192 + b"}")
    assert too_large.code == 413 and too_large.error["code"] == "TooLarge"

    anonymous = await srv.call("GET", "/ProductionOrders", user=None)
    assert anonymous.code == 401 and anonymous.error["code"] == "AuthenticationFailed"
    challenge = anonymous.header("www-authenticate") or ""
    assert "Basic" in challenge and "Bearer" in challenge
    wrong = await srv.call("GET", "/Workflows", password="wrong")
    assert wrong.code == 401 and wrong.header("www-authenticate")

    row = await srv.production_order()
    for path in (f"/ProductionOrders({row['Id']})", f"/Orders({row['Id']})/Product",
                 f"/ProductionOrders({order_id_of(row['Id'])})"):
        others = await srv.call("GET", path, user="bob")
        assert others.code == 404 and others.error["code"] == "NotFound", path
    nobody = await srv.call("GET", "/ProductionOrders(12345678-1234-8234-9234-123456789abc)")
    assert nobody.code == 404 and nobody.error == {**nobody.error, "code": "NotFound"}
    assert (await srv.call("POST", f"/ProductionOrder({row['Id']})/OData.CSC.Cancel", {}, user="bob")).code == 404

    not_allowed = await srv.call("DELETE", f"/ProductionOrders({row['Id']})")
    assert not_allowed.code == 405 and not_allowed.error["code"] == "MethodNotAllowed"
    assert "GET" in (not_allowed.header("allow") or "")
    assert (await srv.call("GET", "/ProductionOrder/OData.CSC.Order")).code == 405
    unknown_path = await srv.call("GET", "/Subscriptions")
    assert unknown_path.code == 404 and unknown_path.error["code"] == "NotFound"


@pytest_twisted.ensureDeferred
async def test_odata_off(server: Any) -> None:
    srv = await server(parse_config({"odata": {"enabled": False}}))
    response = await treq.get(f"{srv.root}/$metadata", persistent=False)
    await response.content()
    assert response.code == 404


@pytest_twisted.ensureDeferred
async def test_lock_out_and_metrics(server: Any) -> None:
    srv = await server(parse_config({"auth": {"max_failures_per_user": 2}}))
    assert (await srv.call("GET", "/ProductionOrders")).code == 200
    for _ in range(2):
        assert (await srv.call("GET", "/ProductionOrders", password="wrong")).code == 401
    locked = await srv.call("GET", "/ProductionOrders")
    assert locked.code == 429 and int(locked.header("retry-after") or 0) > 0
    assert locked.error["code"] == "AuthenticationFailed"
    metrics = srv.parts.metrics.render()
    assert 'operation="OData.ProductionOrders.list",outcome="ok"' in metrics
    assert 'operation="OData.ProductionOrders.list",outcome="AuthenticationFailed"' in metrics


@pytest_twisted.ensureDeferred
async def test_redis_away_is_503_with_retry_after(redis_process: RedisProcess) -> None:
    redis = Redis(redis_process.address, command_timeout=2.0, clock=reactor)
    await redis.connect()
    srv = Server(redis, Config())
    try:
        await srv.accounts.add("alice", "alice-password")
        row = await srv.production_order()
        redis_process.kill()
        for method, path in (("GET", f"/ProductionOrders({row['Id']})"), ("GET", "/ProductionOrders"),
                             ("POST", "/ProductionOrders")):
            body = {"WorkflowName": WORKFLOW, "InputProductReference": {"Reference": "x"}}
            away = await srv.call(method, path, body if method == "POST" else None)
            assert away.code == 503 and away.header("retry-after"), (path, away.code, away.body)
            assert away.error["code"] == "Unavailable"
    finally:
        await srv.port.stopListening()
        await redis.close()


@pytest_twisted.ensureDeferred
async def test_odd_requests_get_4xx(server: Any) -> None:
    """Whatever a client sends gets a 4xx in the error shape, never a 500."""
    srv = await server()
    odd = [("GET", "/ProductionOrders(%00)"), ("GET", "/ProductionOrders('')"), ("GET", "/ProductionOrders(" + "9" * 500 + ")"),
           ("GET", "/Orders(not-a-uuid)/Product/$value"), ("GET", "/BatchOrders(x)/Products"),
           ("GET", "/ProductionOrders?$top=-1"), ("GET", "/ProductionOrders?$filter=Status eq"),
           ("GET", "/ProductionOrders?$skiptoken=garbage"), ("GET", "/ProductionOrders?$expand=Product"),
           ("GET", "/ProductionOrders?$select=Nope"), ("GET", "/ProductionOrders(1)?$select=Nope"),
           ("GET", "/Workflows?$orderby=WorkflowOptions"), ("POST", "/Products('')/OData.CSC.Order"),
           ("GET", "/ProductionOrders(12345678-1234-8234-9234-123456789abc)/Product")]
    for method, path in odd:
        answer = await srv.call(method, path)
        assert 400 <= answer.code < 500 and answer.error, (path, answer.code, answer.body)
    for raw in (b"[]", b"null", b"\xff\xfe", b'{"WorkflowName": 5}', b'{"Priority": 500}', b""):
        answer = await srv.call("POST", "/ProductionOrder/OData.CSC.Order", raw=raw)
        assert answer.code == 400 and answer.error, (raw, answer.body)
        answer = await srv.call("POST", "/Products(S2A_1)/OData.CSC.Order", raw=raw)
        assert answer.code == 400 or (raw == b"" and answer.code == 201), (raw, answer.body)
        answer = await srv.call("POST", "/BatchOrder/OData.CSC.Order", raw=raw)
        assert answer.code == 400 and answer.error, (raw, answer.body)


@pytest_twisted.ensureDeferred
async def test_bearer_token_from_the_token_endpoint(server: Any) -> None:
    srv = await server()
    issued = await srv.call("POST", "/token", user=None, raw=b"grant_type=password&username=alice&password=alice-password",
                            **{"Content-Type": "application/x-www-form-urlencoded"})
    assert issued.code == 200, issued.body
    bearer = {"Authorization": f"Bearer {issued.json['access_token']}"}
    row = await srv.production_order()
    read = await srv.call("GET", f"/ProductionOrders({row['Id']})", user=None, **bearer)
    assert read.code == 200 and read.json["Id"] == row["Id"]
    created = await srv.call("POST", "/Products(S2A_T)/OData.CSC.Order", {}, user=None, **bearer)
    assert created.code == 201
    wrong = await srv.call("GET", "/ProductionOrders", user=None, Authorization="Bearer not-a-token")
    assert wrong.code == 401 and "Bearer" in (wrong.header("www-authenticate") or "")


@pytest_twisted.ensureDeferred
async def test_pages_follow_next_links(server: Any) -> None:
    srv = await server(parse_config({"odata": {"page_size": 2}, "orders": {"moderation": "manual"}}))
    made = {(await srv.production_order(Name=f"paged {n}"))["Id"] for n in range(5)}
    seen: list[str] = []
    url: str | None = f"{srv.root}/ProductionOrders?$filter=startswith(Name,'paged')&$count=true&$select=Id,Name"
    while url is not None:
        page = await srv.call("GET", url)
        assert page.code == 200 and page.json["@odata.count"] == 5 and len(page.json["value"]) <= 2
        assert all(set(row) == {"Id", "Name"} for row in page.json["value"])
        seen += [row["Id"] for row in page.json["value"]]
        url = page.json.get("@odata.nextLink")
        assert url is None or url.startswith(f"{srv.root}/ProductionOrders?")
    assert sorted(seen) == sorted(made)
    ordered = await srv.call("GET", "/ProductionOrders?$orderby=Name desc&$top=3")
    assert [r["Name"] for r in ordered.json["value"]] == ["paged 4", "paged 3"]  # (pages of 2)
    rest = await srv.call("GET", ordered.json["@odata.nextLink"])
    assert [r["Name"] for r in rest.json["value"]] == ["paged 2"] and "@odata.nextLink" not in rest.json
