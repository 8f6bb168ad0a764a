"""Quotations in Redis, each until it expires.

One hash per quotation (:func:`keys.quotation`), fields ``owner`` and
``data`` (the quotation's JSON), with a TTL equal to the quotation's
validity: Redis forgets it when it expires, so nothing has to sweep. Ids are
unguessable, and a quotation is only ever given to its owner: to anybody
else it does not exist.

An asynchronous quotation's GetQuotationResponse is written to the outbox by
the same Lua script that stores the quotation: a crash at any moment loses
neither, and never leaves one without the other. Its queue (channel
:data:`QUOTATION`, named by the quotation id) holds that one message, so it
is numbered 1 there and then, without the per-queue counter
``OutboxStore.enqueue`` keeps (a field per queue, which one-message queues
would leave behind for ever). The message carries the whole quotation: it
still goes out if the client orders the quotation before it arrives.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from ..model.orders import Notification
from ..model.quotations import Quotation, quotation_from_data, quotation_to_data
from . import keys, lua
from .outbox import OutboxMessage

# The outbox channel of GetQuotationResponse call-backs.
QUOTATION = "quotation"
# Longer ids are nobody's quotation (and never become key names).
MAX_QUOTATION_ID = 200

# The quotations' scripts (lua/quotation_*.lua, each headed by its KEYS and ARGV).
_SAVE = lua.load("quotation_save")
_TAKE = lua.load("quotation_take")
_RESTORE = lua.load("quotation_restore")


@attrs.frozen
class Taken:
    """A quotation taken out of the store, and how long it had left (for
    putting it back)."""

    quotation: Quotation
    ttl_ms: int


def _ttl_ms(seconds: float) -> str:
    return str(max(1, int(seconds * 1000)))


def _known(quotation_id: str) -> bool:
    return 0 < len(quotation_id) <= MAX_QUOTATION_ID


def _dumps(quotation: Quotation) -> str:
    return json.dumps(quotation_to_data(quotation), ensure_ascii=False, separators=(",", ":"), allow_nan=False)


class QuotationStore:
    def __init__(self, redis: Any) -> None:
        self._redis = redis

    async def save(self, owner: str, quotation: Quotation, ttl: float, *, reply: Notification | None = None,
                   now: float = 0.0) -> None:
        """Keep ``owner``'s ``quotation`` for ``ttl`` seconds; with
        ``reply`` (where the client wants it: ReplyTo, MessageID, SOAP
        version), queue its GetQuotationResponse in the same step, due ``now``."""
        text = _dumps(quotation)
        key = keys.quotation(quotation.quotation_id)
        if reply is None:
            await self._redis.conn.eval(_SAVE, [key], [owner, text, _ttl_ms(ttl)])
            return
        message = {"seq": 1, "to": reply.reply_to, "relates_to": reply.message_id,
                   "soap_version": reply.soap_version, "quotation": quotation_to_data(quotation)}
        name = quotation.quotation_id
        await self._redis.conn.eval(
            _SAVE, [key, keys.outbox_queue(QUOTATION, name), keys.outbox_due()],
            [owner, text, _ttl_ms(ttl), f"{QUOTATION}:{name}", repr(now),
             json.dumps(message, ensure_ascii=False, separators=(",", ":"), allow_nan=False)])

    async def get(self, owner: str, quotation_id: str) -> Quotation | None:
        """``owner``'s quotation ``quotation_id``; None when there is none
        (unknown, expired, ordered, or somebody else's)."""
        if not _known(quotation_id):
            return None
        found_owner, data = await self._redis.conn.hmget(keys.quotation(quotation_id), ["owner", "data"])
        if found_owner != owner or data is None:
            return None
        return quotation_from_data(json.loads(data))

    async def take(self, owner: str, quotation_id: str) -> Taken | None:
        """Remove ``owner``'s quotation ``quotation_id`` and return it (one
        step: two takers never both get it); None when there is none."""
        if not _known(quotation_id):
            return None
        answer = await self._redis.conn.eval(_TAKE, [keys.quotation(quotation_id)], [owner])
        if not answer:
            return None
        data, left = answer
        return Taken(quotation_from_data(json.loads(data)), int(left))

    async def restore(self, owner: str, taken: Taken) -> bool:
        """Put back a quotation taken but not used (its order was refused),
        with the time it had left."""
        if taken.ttl_ms <= 0:
            return False
        return int(await self._redis.conn.eval(
            _RESTORE, [keys.quotation(taken.quotation.quotation_id)],
            [owner, _dumps(taken.quotation), str(taken.ttl_ms)])) == 1

    async def seconds_left(self, quotation_id: str) -> float | None:
        """How long Redis keeps the quotation still (None: not there)."""
        if not _known(quotation_id):
            return None
        left = int(await self._redis.conn.execute_command("PTTL", keys.quotation(quotation_id)))
        return left / 1000 if left >= 0 else None


def quotation_message(message: OutboxMessage) -> tuple[Quotation, Notification]:
    """What a :data:`QUOTATION` outbox message holds: the quotation, and
    where it goes (``reply_to``, ``message_id`` to relate to, ``soap_version``).
    ValueError when the message is not one."""
    data = message.data
    if not isinstance(data.get("quotation"), dict) or not data.get("to"):
        raise ValueError(f"outbox message {message.member} holds no quotation")
    reply = Notification(reply_to=str(data["to"]),
                         message_id=str(data["relates_to"]) if data.get("relates_to") else None,
                         soap_version=str(data["soap_version"]) if data.get("soap_version") else None)
    return quotation_from_data(data["quotation"]), reply
