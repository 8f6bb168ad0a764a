"""The outbox: messages the server sends on its own (status call-backs, and
what later channels add), durable in Redis.

Layout (names in :mod:`oseod.store.keys`): one list per (channel, name), e.g.
``outbox:callback:ORDER``, holding that order's messages oldest first, so
they leave in the order their changes happened; and one sorted set of the
queues that have something to send, scored by when their first message is
due. A message is written by the same Lua script as the change that causes
it (see ``lua/order_set_status.lua``, run by :mod:`oseod.store.orders`): a crash at any
moment loses none.

Sending is at least once. A daemon claims a due queue by moving its score a
lease ahead (one atomic step, so two daemons never take the same queue);
when the first message is delivered it is removed and the queue is due
again at once if more wait. A daemon that dies holding a queue delays it by
the lease; the next daemon sends its first message again. Messages carry a
sequence number that the sender turns into a stable ``wsa:MessageID``, so a
repeated message reads the same and the client can drop the duplicate.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from ..model.outbox import Failure, OutboxMessage
from . import keys, lua

CALLBACK = "callback"
MAIL = "mail"
# The channels whose queues are named by an order id: their logs belong to the order.
ORDER_CHANNELS = (CALLBACK, MAIL)
FAILURES_KEPT = 1000
LOG_KEPT = 100  # entries of a queue's log (oseod.store.keys.outbox_log)
LOG_SECONDS = 30 * 86400  # a log not written for this long goes (an order's goes with the order)

# The outbox's scripts (lua/outbox_*.lua, each headed by its KEYS and ARGV;
# outbox_log.lua and outbox_next_or_done.lua are fragments the others include).
_SCRIPT_VALUES = {"LOG_KEPT": LOG_KEPT, "LOG_SECONDS": LOG_SECONDS}
_ENQUEUE = lua.load("outbox_enqueue")
_CLAIM = lua.load("outbox_claim")
_DONE = lua.load("outbox_done", **_SCRIPT_VALUES)
_RETRY = lua.load("outbox_retry", **_SCRIPT_VALUES)
_GIVE_UP = lua.load("outbox_give_up", **_SCRIPT_VALUES)


class OutboxStore:
    def __init__(self, redis: Any) -> None:
        self._redis = redis

    async def enqueue(self, channel: str, name: str, data: dict[str, Any], now: float) -> int:
        """Queue a message that no order change causes (a quotation, a
        notification to a subscriber...) after the others of its queue;
        its number in the queue. Messages caused by an order's change are
        queued by the script that makes the change, not here."""
        return int(await self._redis.conn.eval(
            _ENQUEUE, [keys.outbox_queue(channel, name), keys.outbox_due(), keys.outbox_sequences()],
            [f"{channel}:{name}", repr(now), json.dumps(data), f"{channel}:{name}"]))

    async def claim(self, now: float, lease: float, limit: int) -> list[OutboxMessage]:
        """The first message of up to ``limit`` due queues, each now held by
        the caller for ``lease`` seconds."""
        found = await self._redis.conn.eval(_CLAIM, [keys.outbox_due()],
                                            [repr(now), repr(now + lease), str(limit), keys.outbox_queue_prefix()])
        claimed = []
        found = list(found or ())
        for member, head in zip(found[0::2], found[1::2]):
            channel, _, name = str(member).partition(":")
            if not head:
                # Served by another daemon after our lease on it had run out.
                await self._redis.conn.eval(_DONE, [keys.outbox_queue(channel, name), keys.outbox_due(),
                                                    keys.outbox_counters(), keys.outbox_log(channel, name)],
                                            [member, "", repr(now), channel, ""])
                continue
            data = json.loads(head)
            claimed.append(OutboxMessage(channel, name, int(data.pop("seq")), data, int(data.pop("attempts", 0)),
                                         str(data.pop("error", ""))))
        return claimed

    async def done(self, message: OutboxMessage, now: float) -> bool:
        """``message`` was delivered."""
        return int(await self._redis.conn.eval(
            _DONE, [keys.outbox_queue(message.channel, message.name), keys.outbox_due(), keys.outbox_counters(),
                    keys.outbox_log(message.channel, message.name)],
            [message.member, str(message.seq), repr(now), message.channel, _log_entry(now, message.seq, SENT)])) == 1

    async def postpone(self, message: OutboxMessage, when: float) -> None:
        """Not tried now (its destination is busy): due again at ``when``,
        no attempt counted."""
        await self._redis.conn.zadd(keys.outbox_due(), repr(when), message.member)

    async def retry(self, message: OutboxMessage, when: float, error: str, *, now: float) -> int:
        """A failed attempt (at ``now``): ``message`` is tried again at
        ``when``. The attempts made so far."""
        return int(await self._redis.conn.eval(
            _RETRY, [keys.outbox_queue(message.channel, message.name), keys.outbox_due(), keys.outbox_counters(),
                     keys.outbox_log(message.channel, message.name)],
            [message.member, str(message.seq), repr(when), message.channel, error[:1000],
             _log_entry(now, message.seq, RETRY, error)]))

    async def give_up(self, message: OutboxMessage, now: float, error: str) -> bool:
        """No more attempts for ``message``: recorded as failed (on its order,
        for call-backs) and the queue moves on."""
        failure = json.dumps({"channel": message.channel, "name": message.name, "seq": message.seq, "at": now,
                              "attempts": message.attempts + 1, "error": error[:1000]})
        subject = [keys.order(message.name)] if message.channel == CALLBACK else []
        return int(await self._redis.conn.eval(
            _GIVE_UP, [keys.outbox_queue(message.channel, message.name), keys.outbox_due(), keys.outbox_counters(),
                       keys.outbox_failures(), keys.outbox_log(message.channel, message.name), *subject],
            [message.member, str(message.seq), repr(now), message.channel, failure, str(FAILURES_KEPT),
             _log_entry(now, message.seq, GIVEN_UP, error)])) == 1

    async def failures(self, limit: int = 20) -> list[Failure]:
        """The messages given up on last, newest first."""
        return [failure_from_json(t) for t in await self._redis.conn.lrange(keys.outbox_failures(), 0, limit - 1) or ()]

    async def pending(self) -> dict[str, int]:
        """Queues with something to send, per channel (for /metrics)."""
        counts: dict[str, int] = {}
        for member in await self._redis.conn.zrange(keys.outbox_due(), 0, -1) or ():
            channel = str(member).partition(":")[0]
            counts[channel] = counts.get(channel, 0) + 1
        return counts

    async def log(self, channel: str, name: str) -> list[LogEntry]:
        """What became of the messages of the queue (``channel``, ``name``), oldest first."""
        entries = []
        for text in await self._redis.conn.lrange(keys.outbox_log(channel, name), 0, -1) or ():
            data = json.loads(text)
            entries.append(LogEntry(float(data["at"]), int(data["seq"]), str(data["outcome"]), str(data["detail"])))
        return entries

    async def counters(self) -> dict[str, int]:
        """Messages sent, retried and failed, keyed ``CHANNEL:sent`` etc."""
        found = await self._redis.conn.hgetall(keys.outbox_counters()) or {}
        return {str(k): int(v) for k, v in found.items()}


@attrs.frozen
class LogEntry:
    """What became of one message of a queue."""

    at: float
    seq: int
    outcome: str  # SENT, RETRY or GIVEN_UP
    detail: str = ""  # the error, for the last two


SENT, RETRY, GIVEN_UP = "sent", "retry", "given up"


def _log_entry(at: float, seq: int, outcome: str, detail: str = "") -> str:
    return json.dumps({"at": at, "seq": seq, "outcome": outcome, "detail": detail[:500]}, ensure_ascii=False)


def failure_from_json(text: str) -> Failure:
    data = json.loads(text)
    return Failure(data["channel"], data["name"], int(data["seq"]), float(data["at"]), int(data["attempts"]),
                   data["error"])
