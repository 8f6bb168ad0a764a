"""OData order bodies: every way to get one wrong answered with a 400 that
names the field, and the OSEO order each right one is, accepted by the
real Submit checker."""

from __future__ import annotations

import os
from typing import Any

import orjson
import pytest

from oseod.auth.account import Account
from oseod.auth.secrets import SecretBox
from oseod.config import DEMO_COLLECTION, CollectionConfig, Config, OptionConfig
from oseod.core.catalogue import Catalogue
from oseod.core.validation import SubmitChecker, resolve_collection
from oseod.model.errors import RequestRejected
from oseod.model.orders import (
    MASSIVE_ORDER_REFERENCE,
    DeliveryChoice,
    DeliveryMethod,
    OptionValue,
    OrderType,
    Priority,
    RestKind,
    StatusNotification,
)
from oseod.odata import edm, requests
from oseod.odata.errors import ODataError

NUMBERS = CollectionConfig(id="urn:x:numbers", order_types=("PRODUCT_ORDER",), online_data_access=("http",),
                           identifier_prefixes=("S1B_",),
                           option=(OptionConfig(name="resolution", choices=("10", "20.5", "60"), default="60"),
                                   OptionConfig(name="band", choices=("red", "nir"))))
CONFIG = Config(collections=(DEMO_COLLECTION, NUMBERS))
CHECKER = SubmitChecker(CONFIG, Catalogue(CONFIG), lambda i: resolve_collection(i, CONFIG.collections))
ALICE = Account("alice")
DEMO = {"WorkflowName": "urn:oseod:demo", "InputProductReference": {"Reference": "S2A_MSIL1C_1"}}


def _body(**fields: Any) -> bytes:
    return orjson.dumps({**DEMO, **fields})


def _refused(parse: Any, body: bytes, *args: Any) -> ODataError:
    with pytest.raises(ODataError) as caught:
        parse(body, *args)
    error = caught.value
    assert error.http_status == 400
    assert orjson.loads(error.body())["error"]["message"] == error.message
    return error


@pytest.mark.parametrize("body", [b"{", b"", b"\xff\xfe", b"[1]", b"null", b'"x"', b"1", b"{'a': 1}"])
def test_malformed_json(body: bytes) -> None:
    for parse in (requests.parse_production_order, requests.parse_batch_order):
        error = _refused(parse, body)
        assert error.target is None and "JSON" in error.message
    if body.strip():
        assert _refused(requests.parse_product_order, body, "P1").target is None


@pytest.mark.parametrize("field, value", [
    ("Priority", "high"), ("Priority", True), ("Priority", 1.5), ("Priority", [50]),
    ("Name", 5), ("Name", ""), ("Name", "x" * 31), ("WorkflowName", 3), ("WorkflowId", {"a": 1}),
    ("WorkflowOptions", "format=GeoTIFF"), ("NotificationEndpoint", 7), ("NotificationEpPassword", 7),
])
def test_wrong_types(field: str, value: Any) -> None:
    error = _refused(requests.parse_production_order, _body(**{field: value}))
    assert error.target == field and error.code == "InvalidParameterValue"


@pytest.mark.parametrize("priority", [0, 101, -5, 10**12])
def test_priority_out_of_range(priority: int) -> None:
    for parse, body in ((requests.parse_production_order, _body(Priority=priority)),
                        (requests.parse_batch_order, orjson.dumps({"WorkflowName": "w", "IdentifierList": ["a"],
                                                                   "Priority": priority}))):
        error = _refused(parse, body)
        assert error.target == "Priority" and "1 to 100" in error.message
    assert _refused(requests.parse_product_order, orjson.dumps({"Priority": priority}), "P").target == "Priority"


def test_priority_range_and_default() -> None:
    assert requests.parse_production_order(_body()).priority == 50
    assert requests.parse_production_order(_body(Priority=1)).priority == 1
    assert requests.parse_production_order(_body(Priority=100.0)).priority == 100
    assert requests.parse_product_order(b"", "P1") == requests.ProductOrderRequest("P1", 50)
    assert requests.parse_product_order(b"{}", " P1 ").identifier == "P1"


def test_unknown_fields_are_named() -> None:
    error = _refused(requests.parse_production_order, _body(Colour="red"))
    assert error.target == "Colour" and '"Colour"' in error.message
    error = _refused(requests.parse_production_order, _body(**{"x" * 5000: 1}))
    assert error.target == "x" * 60 and len(error.message) < 400
    error = _refused(requests.parse_production_order, _body(InputProductReference={"Reference": "a", "Size": 1}))
    assert error.target == "Size"
    error = _refused(requests.parse_production_order, _body(WorkflowOptions=[{"Name": "a", "Value": "b", "X": 1}]))
    assert error.target == "WorkflowOptions[0].X"
    assert _refused(requests.parse_product_order, b'{"WorkflowName": "w"}', "P1").target == "WorkflowName"
    assert _refused(requests.parse_batch_order, b'{"InputProductReference": {}}').target == "InputProductReference"


@pytest.mark.parametrize("field", ["DeliveryMethod", "Subscription", "Quotation", "Packaging", "PaymentMethod",
                                   "Items", "SendIntermediateNotifications", "OnlineAddress"])
def test_soap_only_features_name_soap(field: str) -> None:
    for parse, body in ((requests.parse_production_order, _body(**{field: "x"})),
                        (requests.parse_batch_order, orjson.dumps({"WorkflowName": "w", "IdentifierList": ["a"],
                                                                   field: True}))):
        error = _refused(parse, body)
        assert (error.target, error.code) == (field, "OperationNotSupported")
        assert "SOAP" in error.message and "/oseo" in error.message


def test_server_fields_and_annotations() -> None:
    read_back = _body(Id=None, Status=None, SubmissionDate=None, **{"@odata.context": "$metadata#ProductionOrders"})
    assert requests.parse_production_order(read_back).reference == "S2A_MSIL1C_1"
    error = _refused(requests.parse_production_order, _body(Status="completed"))
    assert error.target == "Status" and "server" in error.message


def test_every_declared_parameter_is_read() -> None:
    """The fields read are the order actions' parameters in $metadata."""
    production = requests.parse_production_order(orjson.dumps({
        "Name": "n", "Priority": 9, "InputProductReference": {"Reference": "r"}, "WorkflowId": "i", "WorkflowName": "w",
        "WorkflowOptions": [], "NotificationEndpoint": "mailto:a@b.example", "NotificationEpUsername": "u",
        "NotificationEpPassword": "p"}))
    assert [p.name for p in edm.PRODUCTION_ORDER_PARAMETERS] == [
        "Name", "Priority", "InputProductReference", "WorkflowId", "WorkflowName", "WorkflowOptions",
        "NotificationEndpoint", "NotificationEpUsername", "NotificationEpPassword"]
    assert (production.name, production.priority, production.workflow_id) == ("n", 9, "i")
    batch = requests.parse_batch_order(orjson.dumps({p.name: None for p in edm.BATCH_ORDER_PARAMETERS} | {
        "WorkflowName": "w", "IdentifierList": ["a"], "BatchSize": 5}))
    assert (batch.identifiers, batch.batch_size) == (("a",), 5)
    product = requests.parse_product_order(orjson.dumps({p.name: None for p in edm.PRODUCT_ORDER_PARAMETERS}), "P")
    assert product == requests.ProductOrderRequest("P")


def test_what_python_odata_posts() -> None:
    """python-odata sends every property but the computed ones, null when
    unset, with an @odata.type."""
    body = {p.name: None for p in edm.PRODUCTION_ORDER.properties if not p.computed and p.name != "Id"}
    body.update({"@odata.type": "OData.CSC.ProductionOrder", "WorkflowName": "urn:oseod:demo",
                 "InputProductReference": {"Reference": "S2A_1", "ContentDate": None}})
    request = requests.parse_production_order(orjson.dumps(body))
    assert (request.workflow_name, request.reference, request.priority, request.options) == (
        "urn:oseod:demo", "S2A_1", 50, ())
    assert request.notification == requests.NotificationRequest()


@pytest.mark.parametrize("value, text", [
    ("NetCDF", "NetCDF"), (["NetCDF"], "NetCDF"), (20.5, "20.5"), ([10], "10"), (-3, "-3"),
])
def test_workflow_option_value_forms(value: Any, text: str) -> None:
    request = requests.parse_production_order(_body(WorkflowOptions=[{"Name": "o", "Value": value}]))
    assert request.options == (OptionValue("o", text),)
    request = requests.parse_production_order(_body(WorkflowOptions={"o": value}))
    assert request.options == (OptionValue("o", text),)


@pytest.mark.parametrize("options, target", [
    ([{"Name": "o", "Value": []}], "WorkflowOptions[0].Value"),
    ([{"Name": "o", "Value": ["a", "b"]}], "WorkflowOptions[0].Value"),
    ([{"Name": "o", "Value": True}], "WorkflowOptions[0].Value"),
    ([{"Name": "o", "Value": {"x": 1}}], "WorkflowOptions[0].Value"),
    ([{"Name": "o"}], "WorkflowOptions[0].Value"),
    ([{"Value": "x"}], "WorkflowOptions[0].Name"),
    ([{"Name": "o", "Value": "a"}, {"Name": "o", "Value": "b"}], "WorkflowOptions[1].Name"),
    (["o=a"], "WorkflowOptions[0]"),
])
def test_bad_workflow_options(options: Any, target: str) -> None:
    assert _refused(requests.parse_production_order, _body(WorkflowOptions=options)).target == target


def test_workflow_and_input_needed() -> None:
    error = _refused(requests.parse_production_order, orjson.dumps({"InputProductReference": {"Reference": "a"}}))
    assert (error.target, error.code) == ("WorkflowName", "MissingParameterValue")
    error = _refused(requests.parse_production_order, orjson.dumps({"WorkflowName": "w"}))
    assert error.target == "InputProductReference"
    error = _refused(requests.parse_production_order, _body(InputProductReference="S2A"))
    assert error.target == "InputProductReference"
    request = requests.parse_production_order(orjson.dumps({"WorkflowId": "abc", "InputProductReference": {
        "ContentDate": {"Start": "2026-01-01T00:00:00Z", "End": "2026-01-01T06:00:00.5+01:00"}}}))
    assert (request.workflow_name, request.workflow_id, request.reference) == (None, "abc", None)
    assert (request.content_start, request.content_end) == ("2026-01-01T00:00:00.000Z", "2026-01-01T05:00:00.500Z")


@pytest.mark.parametrize("dates, target", [
    ({"Start": "2026-01-02T00:00:00Z", "End": "2026-01-01T00:00:00Z"}, "InputProductReference.ContentDate"),
    ({"Start": "yesterday", "End": "2026-01-01T00:00:00Z"}, "InputProductReference.ContentDate.Start"),
    ({"Start": "2026-01-01T00:00:00Z", "End": 5}, "InputProductReference.ContentDate.End"),
    ({"Start": "2026-01-01T00:00:00Z"}, "InputProductReference.ContentDate"),
    ("2026", "InputProductReference.ContentDate"),
])
def test_bad_content_dates(dates: Any, target: str) -> None:
    body = _body(InputProductReference={"Reference": "a", "ContentDate": dates})
    assert _refused(requests.parse_production_order, body).target == target


def test_notification_fields() -> None:
    request = requests.parse_production_order(_body(NotificationEndpoint="https://c.example/n",
                                                    NotificationEpUsername="u", NotificationEpPassword="p4ss"))
    assert request.notification == requests.NotificationRequest("https://c.example/n", "u", "p4ss")
    assert "p4ss" not in repr(request)
    assert _refused(requests.parse_production_order, _body(NotificationEpUsername="u")).target == "NotificationEndpoint"
    error = _refused(requests.parse_production_order, _body(NotificationEndpoint="https://c.example/n",
                                                            NotificationEpPassword="p"))
    assert error.target == "NotificationEpUsername"
    box = SecretBox(os.urandom(32))
    name = "odata-notification:alice"
    notification = requests.notification_of(request, lambda e, p: box.seal(name, e, p))
    assert notification.mode is StatusNotification.FINAL and notification.reply_to is None
    assert (notification.endpoint, notification.endpoint_user) == ("https://c.example/n", "u")
    assert notification.endpoint_password is not None and "p4ss" not in notification.endpoint_password
    assert box.unseal(name, "https://c.example/n", notification.endpoint_password) == b"p4ss"
    plain = requests.notification_of(requests.parse_production_order(_body()), lambda e, p: "never")
    assert plain.mode is StatusNotification.NONE and plain.endpoint is None


def test_batch_order_fields() -> None:
    request = requests.parse_batch_order(orjson.dumps({
        "Name": "my batch", "WorkflowName": "urn:oseod:demo", "IdentifierList": ["A", "B", "C"], "BatchSize": 2,
        "WorkflowOptions": [{"Name": "format", "Value": ["NetCDF"]}], "Priority": 80}))
    assert (request.identifiers, request.batch_size, request.priority, request.name) == (("A", "B", "C"), 2, 80,
                                                                                          "my batch")
    base = {"WorkflowName": "w", "IdentifierList": ["a"]}
    for change, target in (({"IdentifierList": None}, "IdentifierList"), ({"IdentifierList": []}, "IdentifierList"),
                           ({"IdentifierList": "a"}, "IdentifierList"), ({"IdentifierList": ["a", 3]},
                                                                         "IdentifierList[1]"),
                           ({"IdentifierList": ["a", ""]}, "IdentifierList[1]"), ({"BatchSize": 0}, "BatchSize"),
                           ({"BatchSize": "2"}, "BatchSize"), ({"BatchVolume": 10}, "BatchVolume")):
        assert _refused(requests.parse_batch_order, orjson.dumps({**base, **change})).target == target


# The OSEO order, through the real Submit checker ------------------------------------------

def _checked(request: requests.OrderRequest, collection: CollectionConfig = DEMO_COLLECTION) -> Any:
    return CHECKER.check(ALICE, requests.order_spec(request, collection))


def test_production_order_is_a_product_order_the_core_accepts() -> None:
    request = requests.parse_production_order(_body(Name="my run", Priority=70, InputProductReference={
        "Reference": "S2A_MSIL1C_1", "ContentDate": {"Start": "2026-01-01T00:00:00Z", "End": "2026-01-02T00:00:00Z"}}))
    checked = _checked(request)
    spec = checked.spec
    assert spec.order_type is OrderType.PRODUCT_ORDER and spec.reference == "my run"
    assert spec.priority is Priority.FAST_TRACK
    (item,) = spec.items
    assert (item.item_id, item.product_id, item.collection_id) == ("1", "S2A_MSIL1C_1", "urn:oseod:demo")
    assert item.options == (OptionValue("format", "GeoTIFF"),)  # the workflow's default
    assert item.delivery == DeliveryChoice(DeliveryMethod.ONLINE_DATA_ACCESS, "http")
    rest = spec.rest
    assert rest is not None and (rest.kind, rest.priority, rest.name, rest.workflow) == (
        RestKind.PRODUCTION, 70, "my run", "urn:oseod:demo")
    assert (rest.content_start, rest.content_end) == ("2026-01-01T00:00:00.000Z", "2026-01-02T00:00:00.000Z")
    chosen = _checked(requests.parse_production_order(_body(WorkflowOptions=[{"Name": "format", "Value": "NetCDF"}])))
    assert chosen.spec.items[0].options == (OptionValue("format", "NetCDF"),)
    assert chosen.spec.priority is Priority.STANDARD


def test_content_date_alone_orders_the_time_range() -> None:
    request = requests.parse_production_order(orjson.dumps({"WorkflowName": "urn:oseod:demo", "InputProductReference": {
        "ContentDate": {"Start": "2026-01-01T00:00:00Z", "End": "2026-01-02T00:00:00Z"}}}))
    item = _checked(request).spec.items[0]
    assert item.product_id == "2026-01-01T00:00:00.000Z/2026-01-02T00:00:00.000Z"


def test_numbers_match_choices_and_defaults_fill_in() -> None:
    request = requests.parse_production_order(_body(WorkflowName="urn:x:numbers", WorkflowOptions=[
        {"Name": "band", "Value": "nir"}, {"Name": "resolution", "Value": 10.0}]))
    assert _checked(request, NUMBERS).spec.items[0].options == (OptionValue("resolution", "10"),
                                                                 OptionValue("band", "nir"))
    request = requests.parse_production_order(_body(WorkflowName="urn:x:numbers"))
    assert _checked(request, NUMBERS).spec.items[0].options == (OptionValue("resolution", "60"),)


@pytest.mark.parametrize("options, target", [
    ([{"Name": "colour", "Value": "red"}], "WorkflowOptions[0].Name"),
    ([{"Name": "format", "Value": "PNG"}], "WorkflowOptions[0].Value"),
    ([{"Name": "format", "Value": ["NetCDF"]}, {"Name": "format2", "Value": 1}], "WorkflowOptions[1].Name"),
])
def test_bad_options_for_the_workflow(options: Any, target: str) -> None:
    request = requests.parse_production_order(_body(WorkflowOptions=options))
    with pytest.raises(ODataError) as caught:
        requests.order_spec(request, DEMO_COLLECTION)
    assert (caught.value.http_status, caught.value.target) == (400, target)
    assert "urn:oseod:demo" in caught.value.message


def test_product_order_is_a_product_order_the_core_accepts() -> None:
    request = requests.parse_product_order(b'{"Priority": 30, "Name": "lta"}', "S1B_IW_GRDH_1")
    collection_id = CHECKER.resolve(request.identifier)
    assert collection_id == "urn:x:numbers"  # by identifier_prefixes, as GetOptions and Submit resolve it
    collection = CONFIG.collection(collection_id)
    assert collection is not None
    spec = _checked(request, collection).spec
    (item,) = spec.items
    assert (item.product_id, item.collection_id, item.options, spec.priority, spec.reference) == (
        "S1B_IW_GRDH_1", "urn:x:numbers", (OptionValue("resolution", "60"),), Priority.STANDARD, "lta")
    demo = _checked(requests.parse_product_order(b"", "urn:oseod:demo:P1")).spec  # the collection id prefixes it
    assert demo.items[0].options == (OptionValue("format", "GeoTIFF"),) and demo.rest.priority == 50
    assert spec.rest is not None and (spec.rest.kind, spec.rest.priority) == (RestKind.PRODUCT, 30)


def test_batch_order_is_a_massive_order_the_core_accepts() -> None:
    identifiers = [f"S2B_{n}" for n in range(25)]
    request = requests.parse_batch_order(orjson.dumps({
        "Name": "my batch", "WorkflowName": "urn:oseod:demo", "IdentifierList": identifiers, "BatchSize": 10,
        "WorkflowOptions": [{"Name": "format", "Value": "NetCDF"}]}))
    spec = _checked(request).spec
    assert spec.order_type is OrderType.MASSIVE_ORDER and spec.reference == MASSIVE_ORDER_REFERENCE
    assert [i.item_id for i in spec.items] == [str(n) for n in range(1, 26)]
    assert [i.product_id for i in spec.items] == identifiers
    assert {i.options for i in spec.items} == {(OptionValue("format", "NetCDF"),)}
    assert spec.rest is not None and (spec.rest.kind, spec.rest.name, spec.rest.batch_size) == (
        RestKind.BATCH, "my batch", 10)


def test_the_core_still_has_its_say() -> None:
    """A workflow that takes no massive orders: the core refuses, as over SOAP."""
    request = requests.parse_batch_order(orjson.dumps({"WorkflowName": "urn:x:numbers", "IdentifierList": ["a"]}))
    with pytest.raises(RequestRejected) as caught:
        _checked(request, NUMBERS)
    assert caught.value.code == "ProductOrderingNotSupported"
