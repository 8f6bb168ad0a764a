"""Order ids in UUID form, and back, without a table.

OData clients (ODIP, LTA) expect an order's ``Id`` to be a Guid; OSEO's
orderId is a short random text (``oseod.store.orderids``) or, for old
orders, a counter. Every order has both: its UUID *is* its orderId, written
reversibly into a UUID version 8 (RFC 9562, "custom"), so an id given in
either form reaches the same record and nothing is stored or looked up.

Layout of the 122 free bits: 71 bits of payload (1 bit for the form, then
70: the random id's 14 base32 characters, or the counter), the rest a
checksum of the payload. The checksum makes the UUIDs look as random as the
ids they carry, and lets a mistyped UUID be told apart from an order that
does not exist (both are answered alike anyway: not found).
"""

from __future__ import annotations

import hashlib
import re
import uuid

DIGITS = "0123456789abcdefghjkmnpqrstvwxyz"  # as oseod.store.orderids
_RANDOM = re.compile(r"^[a-hjkmnp-tv-z][0-9a-hjkmnp-tv-z]{13}$")
_COUNTER = re.compile(r"^[1-9][0-9]{0,18}$")
_PAYLOAD_BITS = 71
_CHECK_BITS = 122 - _PAYLOAD_BITS


def _check(payload: int) -> int:
    digest = hashlib.sha256(b"oseod-order-uuid:" + payload.to_bytes(9, "big")).digest()
    return int.from_bytes(digest[:8], "big") >> (64 - _CHECK_BITS)


def _payload(order_id: str) -> int:
    """The 71 bits that say ``order_id``. ValueError for a text that is no order id."""
    if _RANDOM.match(order_id):
        payload = 0
        for character in order_id:
            payload = payload << 5 | DIGITS.index(character)
        return payload
    if _COUNTER.match(order_id) and int(order_id) < 1 << 70:
        return 1 << 70 | int(order_id)
    raise ValueError(f"not an order id: {order_id[:40]!r}")


def _order_id(payload: int) -> str | None:
    if payload >> 70:
        number = payload & ((1 << 70) - 1)
        return str(number) if number and _COUNTER.match(str(number)) else None
    characters = []
    for _ in range(14):
        characters.append(DIGITS[payload & 0x1F])
        payload >>= 5
    order_id = "".join(reversed(characters))
    return order_id if _RANDOM.match(order_id) else None


def _spread(bits: int) -> str:
    """122 bits as a version 8 UUID, around its version (4 bits) and variant (2 bits)."""
    high = bits >> 74  # 48 bits
    middle = (bits >> 62) & 0xFFF  # 12 bits
    low = bits & ((1 << 62) - 1)  # 62 bits
    return str(uuid.UUID(int=high << 80 | 0x8 << 76 | middle << 64 | 0b10 << 62 | low))


def _gather(text: str) -> int | None:
    """The 122 bits of a version 8 UUID (None: not one)."""
    try:
        value = uuid.UUID(text.strip()).int
    except ValueError:
        return None
    if (value >> 76) & 0xF != 0x8 or (value >> 62) & 0b11 != 0b10:
        return None
    return (value >> 80) << 74 | ((value >> 64) & 0xFFF) << 62 | (value & ((1 << 62) - 1))


def order_uuid(order_id: str) -> str:
    """The UUID form of ``order_id`` (lower case, hyphenated). ValueError for
    a text that is no order id."""
    payload = _payload(order_id)
    return _spread(_check(payload) << _PAYLOAD_BITS | payload)


def order_id_of(text: str) -> str | None:
    """The orderId a client's key names: a UUID made by :func:`order_uuid`,
    or an orderId itself; None when it is neither (or a UUID not ours)."""
    text = text.strip()
    if _RANDOM.match(text) or _COUNTER.match(text):
        return text
    bits = _gather(text)
    if bits is None:
        return None
    payload = bits & ((1 << _PAYLOAD_BITS) - 1)
    if bits >> _PAYLOAD_BITS != _check(payload):
        return None
    return _order_id(payload)


def workflow_uuid(name: str) -> str:
    """A Workflow's Id: the same for the same Name, on every daemon, for ever."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"oseod:workflow:{name}"))


def _item_hash(item_id: str) -> int:
    return int.from_bytes(hashlib.sha256(b"oseod-item:" + item_id.encode()).digest()[:4], "big")


def _product_check(payload: int) -> int:
    digest = hashlib.sha256(b"oseod-product-uuid:" + payload.to_bytes(13, "big")).digest()
    return int.from_bytes(digest[:8], "big") >> (64 - _PRODUCT_CHECK_BITS)


_ITEM_BITS = 32
_PRODUCT_CHECK_BITS = 122 - _PAYLOAD_BITS - _ITEM_BITS


def product_uuid(order_id: str, item_id: str) -> str:
    """A Product's Id: the result of item ``item_id`` of order ``order_id``
    (the ProductId of the ODIP completion notification, the Id of the
    order's Products), the same on every daemon, for ever. Like an order's,
    it carries its order: an LTA client downloads ``Products(<Id>)/$value``
    and that finds the order without a table. The item is named by a 32-bit
    hash of its id, which :func:`product_of` gives back to be matched
    against the order's items."""
    payload = (_payload(order_id) << _ITEM_BITS) | _item_hash(item_id)  # 103 bits
    return _spread(_product_check(payload) << (_PAYLOAD_BITS + _ITEM_BITS) | payload)


def product_of(text: str) -> tuple[str, int] | None:
    """The order id and the item hash a Product Id made by :func:`product_uuid`
    carries; None for any other text."""
    bits = _gather(text)
    if bits is None:
        return None
    payload = bits & ((1 << (_PAYLOAD_BITS + _ITEM_BITS)) - 1)
    if bits >> (_PAYLOAD_BITS + _ITEM_BITS) != _product_check(payload):
        return None
    order_id = _order_id(payload >> _ITEM_BITS)
    return (order_id, payload & ((1 << _ITEM_BITS) - 1)) if order_id is not None else None


def item_matches(item_id: str, item_hash: int) -> bool:
    """Whether ``item_id`` is the item a Product Id's hash names."""
    return _item_hash(item_id) == item_hash
