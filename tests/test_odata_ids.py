"""Order and Product Ids in UUID form: reversible without a table, and no
other UUID (or the other kind's) is taken for one."""

from __future__ import annotations

import uuid

import pytest

from oseod.odata.ids import item_matches, order_id_of, order_uuid, product_of, product_uuid, workflow_uuid
from oseod.store.orderids import RandomOrderIds

OLD_IDS = ["1", "42", "9999999999999999999"]  # the counter's ids of old orders

NEW_ID = RandomOrderIds()  # as the store draws them


@pytest.mark.parametrize("order_id", [NEW_ID() for _ in range(200)] + OLD_IDS)
def test_an_order_id_and_its_uuid_reach_each_other(order_id: str) -> None:
    text = order_uuid(order_id)
    assert uuid.UUID(text).version == 8 and str(uuid.UUID(text)) == text
    assert order_id_of(text) == order_id
    assert order_id_of(text.upper()) == order_id and order_id_of(f" {text} ") == order_id
    assert order_id_of(order_id) == order_id  # the OSEO form is a key too
    assert product_of(text) is None


@pytest.mark.parametrize("order_id", [NEW_ID() for _ in range(50)] + OLD_IDS)
def test_a_product_id_carries_its_order_and_names_its_item(order_id: str) -> None:
    text = product_uuid(order_id, "7")
    assert product_uuid(order_id, "7") == text  # the same for ever
    found = product_of(text)
    assert found is not None and found[0] == order_id
    assert item_matches("7", found[1]) and not item_matches("8", found[1])
    assert order_id_of(text) is None
    assert product_uuid(order_id, "8") != text


def test_other_texts_are_no_ids() -> None:
    for text in [str(uuid.uuid4()) for _ in range(100)] + ["", "abc", "0", "01", "x" * 40, workflow_uuid("w")]:
        assert order_id_of(text) is None and product_of(text) is None, text
    with pytest.raises(ValueError):
        order_uuid("not an id")
    # A UUID of ours with one bit changed is refused by the check bits.
    text = order_uuid(NEW_ID())
    flipped = str(uuid.UUID(int=uuid.UUID(text).int ^ 1 << 100))
    assert order_id_of(flipped) is None
