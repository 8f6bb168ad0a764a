from __future__ import annotations

import json

import pytest

from oseod.model import codec
from oseod.model.orders import (
    DeliveryChoice,
    DeliveryMethod,
    Fragment,
    Item,
    ItemSpec,
    Notification,
    OnlineAddress,
    OptionValue,
    Order,
    OrderSpec,
    OrderStatus,
    OrderType,
    Priority,
    StatusInfo,
    StatusNotification,
)

FULL_ITEM = ItemSpec(
    item_id="item 1 ü",
    product_id="urn:oseod:demo:p1",
    collection_id="urn:oseod:demo",
    product_order_options_id="opts",
    remark="a remark\nwith a line break",
    options=(OptionValue("format", "GeoTIFF"), OptionValue("format", "NetCDF")),
    delivery=DeliveryChoice(DeliveryMethod.ONLINE_DATA_ACCESS, protocol="ftp"),
    payment_method="account",
    fragments=(Fragment("option", '<os:option xmlns:os="http://www.opengis.net/oseo/1.0">"x"&amp;</os:option>'),),
)

VALUES = [
    FULL_ITEM,
    ItemSpec(item_id="0012"),
    ItemSpec(item_id="s", collection_id="c", subscription=True),
    ItemSpec(item_id="t", tasking_request_id="urn:sps:42"),
    DeliveryChoice(DeliveryMethod.MEDIA_DELIVERY, package_medium="DVD"),
    OnlineAddress("ftp", "ftp.example.org", user_name="bob", user_password="s3cret", path="/in"),
    Notification(StatusNotification.ALL, reply_to="http://client/cb", message_id="uuid:1", soap_version="1.2"),
    Notification(),
    StatusInfo(OrderStatus.Completed, "done", "mission", changed_at=1700000000.123456),
    StatusInfo(OrderStatus.Submitted),
    OrderSpec(
        order_type=OrderType.MASSIVE_ORDER,
        items=(FULL_ITEM, ItemSpec(item_id="2", product_id="p2")),
        reference="Massive order",
        remark="r",
        packaging="zip",
        priority=Priority.FAST_TRACK,
        options=(OptionValue("format", "NetCDF"),),
        delivery=DeliveryChoice(DeliveryMethod.ONLINE_DATA_DELIVERY, protocol="ftp"),
        online_addresses=(OnlineAddress("ftp", "h"),),
        fragments=(Fragment("extension", "<x/>"),),
    ),
    Order(
        order_id="42",
        owner="alice",
        spec=OrderSpec(OrderType.PRODUCT_ORDER, items=(FULL_ITEM,)),
        status=StatusInfo(OrderStatus.InProduction, "1 of 2", changed_at=3.5),
        created_at=1.0,
        notification=Notification(StatusNotification.FINAL, "http://x", "m"),
        items=(Item(FULL_ITEM, StatusInfo(OrderStatus.Completed, changed_at=2.0), batch=3, completed_at=2.0),),
    ),
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_round_trip(value: object) -> None:
    text = codec.dumps(value)
    assert codec.loads(type(value), text) == value
    json.loads(text)  # plain JSON


def test_absent_values_are_left_out() -> None:
    assert json.loads(codec.dumps(ItemSpec(item_id="a"))) == {"item_id": "a", "subscription": False}
    assert json.loads(codec.dumps(StatusInfo(OrderStatus.Accepted, changed_at=2.0))) == {
        "status": "Accepted", "changed_at": 2.0}


def test_float_precision_survives() -> None:
    moment = 1712345678.9876543
    assert codec.loads(StatusInfo, codec.dumps(StatusInfo(OrderStatus.Failed, changed_at=moment))).changed_at == moment


def test_unknown_keys_are_ignored_and_integers_read_as_floats() -> None:
    info = codec.loads(StatusInfo, '{"status": "Failed", "changed_at": 5, "from_the_future": 1}')
    assert info == StatusInfo(OrderStatus.Failed, changed_at=5.0)
    assert isinstance(info.changed_at, float)


@pytest.mark.parametrize("text", [
    '{"status": "Nope"}',
    '{"status": "Failed", "changed_at": "5"}',
    '{"status": "Failed", "additional_info": 7}',
    '[]',
])  # fmt: skip
def test_bad_data_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        codec.loads(StatusInfo, text)


def test_bad_nested_data_is_refused() -> None:
    with pytest.raises(ValueError, match=r"ItemSpec\.options\[0\]"):
        codec.loads(ItemSpec, '{"item_id": "a", "options": [3]}')
    with pytest.raises(ValueError):
        codec.loads(ItemSpec, '{"item_id": "a", "subscription": 1}')


def test_unencodable_value() -> None:
    with pytest.raises(TypeError):
        codec.dumps({"a": 1})


@pytest.mark.parametrize("moment", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_numbers_are_refused_not_stored_as_null(moment: float) -> None:
    with pytest.raises(ValueError, match="not a finite number"):
        codec.dumps(StatusInfo(OrderStatus.Failed, changed_at=moment))


def test_non_ascii_text_is_written_as_it_is() -> None:
    assert codec.dumps(ItemSpec(item_id="α→β")) == '{"item_id":"α→β","subscription":false}'
