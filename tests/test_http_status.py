"""StatusPresenter: GetStatusResponse documents, reusing each order's
rendering while the order's version stays the same."""

from __future__ import annotations

from lxml import etree

from oseod.http.status import StatusPresenter
from oseod.model.orders import Item, ItemSpec, Order, OrderSpec, OrderStatus, OrderType, StatusInfo
from oseod.oseo.namespaces import OSEO, SOAP12
from oseod.oseo.soap import Encoding
from tests.oseo_schema import assert_valid, requires_schemas

NS = {"oseo": OSEO, "soap": SOAP12}


def order(order_id: str, version: int, status: OrderStatus = OrderStatus.InProduction) -> Order:
    specs = (ItemSpec("i1", product_id="p1", collection_id="c"), ItemSpec("i2", product_id="p2", collection_id="c"))
    return Order(order_id=order_id, owner="alice", spec=OrderSpec(OrderType.PRODUCT_ORDER, specs),
                 status=StatusInfo(status, f"{status.value} now", changed_at=10.0), created_at=5.0,
                 items=tuple(Item(s, StatusInfo(status, changed_at=10.0)) for s in specs), version=version)


def statuses(document: bytes) -> list[str]:
    root = etree.fromstring(document)
    return root.xpath("//oseo:orderMonitorSpecification/oseo:orderStatusInfo/oseo:status/text()", namespaces=NS)


@requires_schemas
def test_documents_are_valid_in_every_form() -> None:
    presenter = StatusPresenter()
    for encoding in Encoding:
        for full in (True, False):
            document = presenter.render(encoding, [order("1", 1), order("2", 4)], full)
            assert_valid(etree.fromstring(document))
            items = etree.fromstring(document).findall(".//oseo:orderItem", NS)
            assert len(items) == (4 if full else 0)


def test_a_new_version_is_rendered_anew() -> None:
    presenter = StatusPresenter()
    first = presenter.render(Encoding.SOAP12, [order("1", 1)], True)
    assert presenter.render(Encoding.SOAP12, [order("1", 1)], True) == first
    assert statuses(presenter.render(Encoding.SOAP12, [order("1", 2, OrderStatus.Completed)], True)) == ["Completed"]


def test_brief_and_full_are_kept_apart() -> None:
    presenter = StatusPresenter()
    full = presenter.render(Encoding.BARE, [order("1", 1)], True)
    brief = presenter.render(Encoding.BARE, [order("1", 1)], False)
    assert full != brief and b"orderItem" in full and b"orderItem" not in brief


def test_unstored_orders_and_a_full_cache() -> None:
    presenter = StatusPresenter(cache_size=2)
    # version 0: not from the store, so nothing says two such orders are equal
    assert statuses(presenter.render(Encoding.BARE, [order("1", 0)], True)) == ["InProduction"]
    assert statuses(presenter.render(Encoding.BARE, [order("1", 0, OrderStatus.Failed)], True)) == ["Failed"]
    for n in range(5):  # evictions keep answering right
        assert statuses(presenter.render(Encoding.BARE, [order(str(n), 1)], True)) == ["InProduction"]
    assert statuses(presenter.render(Encoding.BARE, [order("0", 2, OrderStatus.Cancelled)], True)) == ["Cancelled"]
