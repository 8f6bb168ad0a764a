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
from . import keys

CALLBACK = "callback"
MAIL = "mail"
# The channels whose queues are named by an order id: their logs belong to the order.
ORDER_CHANNELS = (CALLBACK, MAIL)
FAILURES_KEPT = 1000
LOG_KEPT = 100  # entries of a queue's log (oseod.store.keys.outbox_log)
LOG_SECONDS = 30 * 86400  # a log not written for this long goes (an order's goes with the order)

# Appends ARGV[LOG] to the queue's log, KEYS[LOG_KEY], capped.
_LOG = """
local function log(key, entry)
  redis.call('RPUSH', key, entry)
  redis.call('LTRIM', key, -%d, -1)
  redis.call('EXPIRE', key, %d)
end
""" % (LOG_KEPT, LOG_SECONDS)

# KEYS: queue, due set, the hash numbering such queues' messages. ARGV:
# member, now, the message JSON without its seq, the queue's field in that hash. Appends the message,
# numbered, and makes the queue due (unless it already is). Returns the seq.
_ENQUEUE = """
local seq = redis.call('HINCRBY', KEYS[3], ARGV[4], 1)
local message = cjson.decode(ARGV[3])
message['seq'] = seq
redis.call('RPUSH', KEYS[1], cjson.encode(message))
redis.call('ZADD', KEYS[2], 'NX', ARGV[2], ARGV[1])
return seq
"""

# KEYS: due set. ARGV: now, lease end, how many, the prefix of the queues'
# names. Returns, per queue now due, its CHANNEL:NAME member and its first
# message (false when it is empty), its score moved to the lease end (claimed).
_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, member in ipairs(due) do
  redis.call('ZADD', KEYS[1], ARGV[2], member)
  out[#out + 1] = member
  out[#out + 1] = redis.call('LINDEX', ARGV[4] .. member, 0)
end
return out
"""

# The end of a message: the queue is due again now if more wait, else no more.
_NEXT_OR_DONE = """
if redis.call('LLEN', KEYS[1]) > 0 then redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
else redis.call('ZREM', KEYS[2], ARGV[1]) end
"""

# KEYS: queue, due set, counters, the queue's log. ARGV: member, seq sent,
# now, channel, the log entry. Removes the first message if it is still the
# one sent (a queue taken over after a lease ran out may have been served
# meanwhile); the queue is due again now when more wait. Returns 1 removed, 0 not.
_DONE = _LOG + """
local head = redis.call('LINDEX', KEYS[1], 0)
local removed = 0
if head and tostring(cjson.decode(head)['seq']) == ARGV[2] then
  redis.call('LPOP', KEYS[1])
  redis.call('HINCRBY', KEYS[3], ARGV[4] .. ':sent', 1)
  log(KEYS[4], ARGV[5])
  removed = 1
end
""" + _NEXT_OR_DONE + """return removed
"""

# KEYS: queue, due set, counters, the queue's log. ARGV: member, seq, when
# due again, channel, error, the log entry. Counts a failed attempt on the
# first message (if still it) and schedules the queue. Returns the attempts
# made so far.
_RETRY = _LOG + """
local head = redis.call('LINDEX', KEYS[1], 0)
if not head then redis.call('ZREM', KEYS[2], ARGV[1]) return 0 end
local message = cjson.decode(head)
if tostring(message['seq']) ~= ARGV[2] then redis.call('ZADD', KEYS[2], 0, ARGV[1]) return 0 end
message['attempts'] = (message['attempts'] or 0) + 1
message['error'] = ARGV[5]
redis.call('LSET', KEYS[1], 0, cjson.encode(message))
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('HINCRBY', KEYS[3], ARGV[4] .. ':retried', 1)
log(KEYS[4], ARGV[6])
return message['attempts']
"""

# KEYS: queue, due set, counters, failures list, the queue's log, then the
# hash that records the failure of its subject (none: no such key is
# passed). ARGV: member, seq, now, channel, failure JSON, kept failures, the
# log entry. Gives up on the first message (if still it). Returns 1 given
# up, 0 not.
_GIVE_UP = _LOG + """
local head = redis.call('LINDEX', KEYS[1], 0)
local dropped = 0
if head and tostring(cjson.decode(head)['seq']) == ARGV[2] then
  redis.call('LPOP', KEYS[1])
  redis.call('HINCRBY', KEYS[3], ARGV[4] .. ':failed', 1)
  redis.call('LPUSH', KEYS[4], ARGV[5])
  redis.call('LTRIM', KEYS[4], 0, tonumber(ARGV[6]) - 1)
  log(KEYS[5], ARGV[7])
  if KEYS[6] and redis.call('EXISTS', KEYS[6]) == 1 then
    redis.call('HSET', KEYS[6], ARGV[4] .. '_failure', ARGV[5])
  end
  dropped = 1
end
""" + _NEXT_OR_DONE + """return dropped
"""


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
