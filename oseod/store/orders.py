"""Orders and their items in Redis, and the indexes that GetStatus searches.

Layout (names in :mod:`oseod.store.keys`; ID a random order id, or a
number for orders stored before ids were random: :mod:`.orderids`):

* ``order:ID`` hash: ``owner``, ``order_type``, ``reference``, ``created_at``,
  ``spec`` (the OrderSpec with its items, JSON, written once),
  ``notification`` (JSON), ``status`` (the bare name, for the scripts),
  ``status_info`` (StatusInfo JSON), ``updated_at``, ``version`` (bumped by
  every change, for compare-and-set and for the readers' caches: a write that
  skipped it would leave them stale), ``completion_seq`` and ``ready_cursor``
  (DescribeResultAccess nextReady), and what deriving the order's status from
  its items needs without reading them: ``items_total``, ``n/STATUS`` (how
  many items are in each status), ``failed_item`` and ``failed_reason`` (the
  latest failure).
* ``order:ID:items`` hash: per item ``s/ITEM`` (StatusInfo JSON), ``c/ITEM``
  (completion time) and ``b/ITEM`` (batch, when not 0); a status change
  rewrites one small field, never the spec.
* ``order:ID:ready`` sorted set: the items with a result, by completion sequence.
* indexes, per owner and across owners, all scored by the order's last update
  (any change to the order or one of its items): every order; per status; per
  orderReference. Plus a per-owner counter of items not in a final status.

Every change is one Lua script that updates the data, the counter and every
index together, so an index never disagrees with the order it points to.
Searches read one sorted-set range per index (no scans, no KEYS).
"""

from __future__ import annotations

import collections
import hashlib
import importlib.resources
import json
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import attrs
import txredisapi
from twisted.logger import Logger

from ..model import codec
from ..model.orders import Item, ItemSpec, Notification, Order, OrderSpec, OrderStatus, OrderType, StatusInfo
from . import keys
from .connection import ReplicationShortfall
from .jobs import GROUP as JOB_GROUP
from .jobs import Job, job_fields
from .leader import FENCE_HOOK, Deposed, Fence, deposed
from .orderids import ORDER_ID, new_order_id
from .outbox import CALLBACK, MAIL, ORDER_CHANNELS, Failure, failure_from_json
from .stats import BUCKET_HOOK, DOWNLOADS, bucket_keys
from .wsn import NOTIFY_HOOK, WSN

# The decoded orders an OrderStore keeps (see _OrderCache): enough for every
# order a busy service's clients poll; bigger (massive) orders are not kept.
CACHED_ORDERS = 4096
ID_ATTEMPTS = 8  # candidate ids drawn for one new order before giving up
# How long a Submit's wsa:MessageID names the order it made: a retry within
# that answers the same order (issue 14).
MESSAGE_SECONDS = 24 * 3600
CACHED_ITEMS = 1000
_MEMBER_WIDTH = 20
_STATUSES = tuple(OrderStatus)
_WITH_RESULT = (OrderStatus.Completed, OrderStatus.Downloaded)
# The layout this code writes (keys.schema_version once every order is in it):
# 2 added the collection and type indexes and the items-per-status counters.
LAYOUT_VERSION = "2"
HISTORY_KEPT = 200  # status changes kept per order (a subscription changes little; items do not write here)
DOWNLOADS_KEPT = 500  # transfers kept per order

# Shared by the scripts that change an order. KEYS, as built by _order_keys():
#   1 order hash, 2 items hash, 3 ready set, 4 owner's active-item counter,
#   5 every order's results by completion time (for their expiry),
#   6 the items-per-status counters, 7 the order's history, 8 and 9 the hour
#   and minute buckets of the change's time (oseod.store.stats),
#   F+1 .. F+N the owner's per-status indexes, F+N+1 .. F+2N everybody's (N
#   statuses, in OrderStatus order; F the 9 keys before), then every index
#   scored but not chosen by status (all orders of the owner, of everybody,
#   the two orderReference indexes, the order type's and the collections').
_PRELUDE = (
    "local N = %d\n" % len(_STATUSES)
    + "local POS = {%s}\n" % ", ".join(f"{s.value} = {i + 1}" for i, s in enumerate(_STATUSES))
    + "local FINAL = {%s}\n" % ", ".join(f"{s.value} = true" for s in _STATUSES if s.is_final)
    + "local WITH_RESULT = {%s}\n" % ", ".join(f"{s.value} = true" for s in _WITH_RESULT)
    + "local HISTORY_KEPT = %d\n" % HISTORY_KEPT
    + BUCKET_HOOK
    + """
local ORDER, ITEMS, READY, ACTIVE, RESULTS = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local ITEM_STATS, HISTORY, HOUR, MINUTE = KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local F = 9
-- The last index key; a script with a job to queue has the stream after it.
local INDEX_END = #KEYS

local function in_set(set, value)
  return set == '' or string.find(set, '|' .. value .. '|', 1, true) ~= nil
end

-- Record an update at time `at` (a string, passed through exactly); the last
-- update never goes backwards. Returns the score for the indexes.
local function touch(at)
  local last = redis.call('HGET', ORDER, 'updated_at')
  if last and tonumber(last) > tonumber(at) then at = last end
  redis.call('HSET', ORDER, 'updated_at', at)
  redis.call('HINCRBY', ORDER, 'version', 1)
  return at
end

-- Put the order in the status indexes of `new` (out of those of `old`) and
-- give it `score` everywhere.
local function reindex(member, old, new, score)
  if old then
    redis.call('ZREM', KEYS[F + POS[old]], member)
    redis.call('ZREM', KEYS[F + N + POS[old]], member)
  end
  redis.call('ZADD', KEYS[F + POS[new]], score, member)
  redis.call('ZADD', KEYS[F + N + POS[new]], score, member)
  for i = F + 2 * N + 1, INDEX_END do redis.call('ZADD', KEYS[i], score, member) end
end

-- Whether the order's items are in the items-per-status counters: orders
-- stored before them are not, until OrderStore.index_older_orders adds them
-- (with the 'collections' field it writes, as create does).
local is_counted = nil
local function counted()
  if is_counted == nil then is_counted = redis.call('HEXISTS', ORDER, 'collections') == 1 end
  return is_counted
end

-- One more line of the order's history (a JSON entry), the oldest dropped past HISTORY_KEPT.
local function remember(entry)
  redis.call('RPUSH', HISTORY, entry)
  redis.call('LTRIM', HISTORY, -HISTORY_KEPT, -1)
end
"""
)

# KEYS: order hash, items hash, owner's active-item counter, the job stream,
# the items-per-status counters, the order's history, then the indexes the
# new order goes into. ARGV: member, time, number of new
# unfinished items, the limit of unfinished items per owner ('' none), the
# order-hash field/value pairs and the items-hash ones, each a JSON array (a
# few arguments instead of hundreds: each one costs the client to encode),
# then the jobs to queue ('' none, else a JSON array of field/value arrays),
# then how many of the KEYS before the last two are subscription indexes, the
# subscription's end time (their score), the spec JSON, and, when e-mail is
# on, the order id and its StatusInfo JSON (else ''): the new order is then
# queued for the e-mail channel, whose last two KEYS are its queue and the
# outbox's due set; then the first history entry (JSON) and the items per
# status (a JSON object); then, for a Submit that named itself with a
# wsa:MessageID, how long (seconds) to remember which order it made ('' not
# named), and the order id. The last KEY is where that is remembered.
# Returns {1, '', the ids of the jobs queued...}; over the limit, {0, items
# unfinished now}; {2, ''} when the id is taken (the caller draws another);
# {3, order id} when the MessageID made that order already.
_CREATE = """
local ORDER, ITEMS, ACTIVE = KEYS[1], KEYS[2], KEYS[3]
local SEEN, TAIL = KEYS[#KEYS], #KEYS - 1  -- TAIL: the last key before SEEN
local member, at, added, limit = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
if ARGV[15] ~= '' then
  local first = redis.call('GET', SEEN)
  if first then return {3, first} end
end
if redis.call('EXISTS', ORDER, ITEMS) ~= 0 then return {2, ''} end
if limit ~= '' and added > 0 then
  local active = tonumber(redis.call('GET', ACTIVE) or '0')
  if active + added > tonumber(limit) then return {0, tostring(active)} end
end
-- HSET in slices: unpack() overflows Lua's stack on big orders.
local function hset_all(key, pairs)
  for i = 1, #pairs, 1000 do
    redis.call('HSET', key, unpack(pairs, i, math.min(i + 999, #pairs)))
  end
end
hset_all(ORDER, cjson.decode(ARGV[5]))
redis.call('HSET', ORDER, 'spec', ARGV[10])
local items = cjson.decode(ARGV[6])
if #items > 0 then hset_all(ITEMS, items) end
if added > 0 then redis.call('INCRBY', ACTIVE, added) end
redis.call('HSET', ORDER, 'updated_at', at, 'version', '1')
local answer = {1, ''}
if ARGV[7] ~= '' then
  for _, job in ipairs(cjson.decode(ARGV[7])) do table.insert(answer, redis.call('XADD', KEYS[4], '*', unpack(job))) end
end
local last = TAIL - 2  -- then the mail queue and the outbox's due set
local subscribed = tonumber(ARGV[8])
for i = 7, last - subscribed do redis.call('ZADD', KEYS[i], at, member) end
redis.call('RPUSH', KEYS[6], ARGV[13])
for status, n in pairs(cjson.decode(ARGV[14])) do redis.call('HINCRBY', KEYS[5], status, n) end
for i = last - subscribed + 1, last do redis.call('ZADD', KEYS[i], ARGV[9], member) end
if ARGV[11] ~= '' then
  local status = cjson.decode(ARGV[12])
  redis.call('RPUSH', KEYS[TAIL - 1], cjson.encode({seq = redis.call('HINCRBY', ORDER, 'mail_seq', 1), old = '',
                                                    status = status['status'], info = ARGV[12]}))
  redis.call('ZADD', KEYS[TAIL], 'NX', at, 'mail:' .. ARGV[11])
end
if ARGV[15] ~= '' then redis.call('SET', SEEN, ARGV[16], 'EX', ARGV[15]) end
return answer
"""

# KEYS: a Submit's MessageID key. ARGV: the order it named, now gone.
_FORGET_MESSAGE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# A new order WAIT found on too few replicas, taken back whole: as _PRELUDE's
# KEYS, then the subscription indexes, the job stream, the e-mail queue, the
# outbox's due set and the wsa:MessageID key. ARGV: member, order id, how
# many subscription indexes, the ids of the jobs queued (JSON array), the
# workers' consumer group (a job claimed meanwhile is acknowledged).
_UNACCEPT = _PRELUDE + (importlib.resources.files(__package__) / "order_unaccept.lua").read_text(encoding="utf-8")

# KEYS: as _order_keys, then the job stream when jobs are queued, then the
# owner's WS-Notification subscriptions and the outbox's sequence hash
# (oseod.store.wsn), the order's e-mail and call-back queues and the outbox's
# due set (oseod.store.outbox).
# ARGV: member, status, StatusInfo JSON, time, allowed current statuses
# ('|A|B|', '' any), expected version ('' any), notification JSON ('' keep),
# jobs to queue with the change ('' none: else a JSON array of field/value
# arrays), the order id, '1' when e-mail is on (else ''), the name of the
# WS-Notification queues less the subscription id, the history entry (JSON)
# and who made the change ('' the service: then a change that keeps the
# status, such as a new count of items done, is not history).
# A change of the order's status that its statusNotification asks to hear
# of (All: every one; Final: a final one) is queued for the call-back in the
# same step, so that no crash can lose it; with e-mail on, every change is
# queued for the e-mail channel too, which decides who hears of it; a final
# status is queued for each of the owner's live WS-Notification subscriptions.
# Returns 1 done, 0 refused (status or version), -1 no such order.
_SET_ORDER_STATUS = _PRELUDE + NOTIFY_HOOK + """
local SUBS, SEQS, MAILS, CALLBACKS, DUE = KEYS[#KEYS - 4], KEYS[#KEYS - 3], KEYS[#KEYS - 2], KEYS[#KEYS - 1],
                                         KEYS[#KEYS]
INDEX_END = #KEYS - 5
if ARGV[8] ~= '' then INDEX_END = #KEYS - 6 end
local current = redis.call('HGET', ORDER, 'status')
if not current then return -1 end
if not in_set(ARGV[5], current) then return 0 end
if ARGV[6] ~= '' and redis.call('HGET', ORDER, 'version') ~= ARGV[6] then return 0 end
redis.call('HSET', ORDER, 'status', ARGV[2], 'status_info', ARGV[3])
if ARGV[7] ~= '' then redis.call('HSET', ORDER, 'notification', ARGV[7]) end
if ARGV[8] ~= '' then
  for _, job in ipairs(cjson.decode(ARGV[8])) do redis.call('XADD', KEYS[#KEYS - 5], '*', unpack(job)) end
end
reindex(ARGV[1], current, ARGV[2], touch(ARGV[4]))
if current ~= ARGV[2] or ARGV[13] ~= '' then remember(ARGV[12]) end
if current ~= ARGV[2] then
  local notification = cjson.decode(redis.call('HGET', ORDER, 'notification') or '{}')
  local mode = notification['mode']
  if mode == 'All' or (mode == 'Final' and FINAL[ARGV[2]]) then
    local seq = redis.call('HINCRBY', ORDER, 'callback_seq', 1)
    redis.call('RPUSH', CALLBACKS, cjson.encode({seq = seq, status = ARGV[2], info = ARGV[3],
                                                 to = notification['reply_to'] or ''}))
    redis.call('ZADD', DUE, 'NX', ARGV[4], 'callback:' .. ARGV[9])
  end
  if ARGV[10] ~= '' then
    redis.call('RPUSH', MAILS, cjson.encode({seq = redis.call('HINCRBY', ORDER, 'mail_seq', 1), old = current,
                                             status = ARGV[2], info = ARGV[3]}))
    redis.call('ZADD', DUE, 'NX', ARGV[4], 'mail:' .. ARGV[9])
  end
  if FINAL[ARGV[2]] then notify_subscribers(SUBS, SEQS, DUE, ARGV[11], ARGV[9], ARGV[2], ARGV[3], ARGV[4]) end
end
return 1
"""

# KEYS: as _order_keys, then the job stream when jobs are queued.
# ARGV: member, time, allowed current statuses ('|A|B|', '' any), then the
# changes as a JSON array of [item id, status, StatusInfo JSON, completion
# time ('' the time)], applied in order, then the jobs to queue ('' none: else
# a JSON array of field/value arrays; then every item must be in an allowed
# status, or nothing is done). Returns -1 when there is no such
# order, else per change 1 done or 0 refused (status). An unknown item fails
# the whole call (error NOITEM), before anything is changed.
_SET_ITEMS_STATUS = _PRELUDE + """
if ARGV[5] ~= '' then INDEX_END = #KEYS - 1 end
local current = redis.call('HGET', ORDER, 'status')
if not current then return -1 end
local at, allowed = ARGV[2], ARGV[3]
local changes = cjson.decode(ARGV[4])
for _, change in ipairs(changes) do
  if redis.call('HEXISTS', ITEMS, 's/' .. change[1]) == 0 then return redis.error_reply('NOITEM ' .. change[1]) end
end
local results = {}
if ARGV[5] ~= '' then
  for i, change in ipairs(changes) do
    if not in_set(allowed, cjson.decode(redis.call('HGET', ITEMS, 's/' .. change[1]))['status']) then
      for j = 1, #changes do results[j] = 0 end
      return results
    end
  end
  for _, job in ipairs(cjson.decode(ARGV[5])) do redis.call('XADD', KEYS[#KEYS], '*', unpack(job)) end
end
for i, change in ipairs(changes) do
  local item, new, info, completed = change[1], change[2], change[3], change[4]
  -- an earlier change of the same call may have moved the item already
  local old = cjson.decode(redis.call('HGET', ITEMS, 's/' .. item))['status']
  if not in_set(allowed, old) then
    results[i] = 0
  else
    results[i] = 1
    redis.call('HSET', ITEMS, 's/' .. item, info)
    redis.call('HINCRBY', ORDER, 'n/' .. old, -1)
    redis.call('HINCRBY', ORDER, 'n/' .. new, 1)
    if old ~= new and counted() then
      redis.call('HINCRBY', ITEM_STATS, old, -1)
      redis.call('HINCRBY', ITEM_STATS, new, 1)
    end
    if new == 'Failed' then
      redis.call('HSET', ORDER, 'failed_item', item, 'failed_reason', cjson.decode(info)['additional_info'] or '')
      if old ~= 'Failed' then count_event(HOUR, MINUTE, 'failed', 1) end
    elseif new == 'Completed' and not WITH_RESULT[old] then
      count_event(HOUR, MINUTE, 'completed', 1)
    end
    if FINAL[old] and not FINAL[new] then redis.call('INCR', ACTIVE)
    elseif FINAL[new] and not FINAL[old] then redis.call('DECR', ACTIVE) end
    if WITH_RESULT[new] then
      if not WITH_RESULT[old] then
        if completed == '' then completed = at end
        redis.call('HSET', ITEMS, 'c/' .. item, completed)
        redis.call('ZADD', READY, redis.call('HINCRBY', ORDER, 'completion_seq', 1), item)
        redis.call('ZADD', RESULTS, completed, cjson.encode({ARGV[1], item}))
      end
    else
      redis.call('HDEL', ITEMS, 'c/' .. item)
      redis.call('ZREM', READY, item)
      redis.call('ZREM', RESULTS, cjson.encode({ARGV[1], item}))
    end
  end
end
reindex(ARGV[1], current, current, touch(at))
return results
"""

# KEYS: as _order_keys, then the job stream. ARGV: member, time, a marker
# field of the order ('' none: else the call does nothing when the order
# has it already), the new items as a JSON array of [item id, ItemSpec data,
# StatusInfo JSON], their batch, the job's field/value pairs as a JSON array.
# Returns 1 added, 0 not (the order is final, or has the marker), -1 no such
# order. Items added so are kept as x/ITEM fields: the spec is never rewritten.
_ADD_ITEMS = _PRELUDE + """
INDEX_END = #KEYS - 1
local current = redis.call('HGET', ORDER, 'status')
if not current then return -1 end
if FINAL[current] then return 0 end
if ARGV[3] ~= '' and redis.call('HEXISTS', ORDER, ARGV[3]) == 1 then return 0 end
local items = cjson.decode(ARGV[4])
for _, item in ipairs(items) do
  if redis.call('HEXISTS', ITEMS, 's/' .. item[1]) == 1 then return redis.error_reply('ITEMEXISTS ' .. item[1]) end
end
for _, item in ipairs(items) do
  local seq = redis.call('HINCRBY', ORDER, 'added_seq', 1)
  local status = cjson.decode(item[3])['status']
  redis.call('HSET', ITEMS, 'x/' .. item[1], cjson.encode({seq, item[2]}), 's/' .. item[1], item[3],
             'b/' .. item[1], ARGV[5])
  redis.call('HINCRBY', ORDER, 'n/' .. status, 1)
  if counted() then redis.call('HINCRBY', ITEM_STATS, status, 1) end
  redis.call('HINCRBY', ORDER, 'items_total', 1)
  if not FINAL[status] then redis.call('INCR', ACTIVE) end
end
if ARGV[3] ~= '' then redis.call('HSET', ORDER, ARGV[3], ARGV[2]) end
redis.call('XADD', KEYS[#KEYS], '*', unpack(cjson.decode(ARGV[6])))
reindex(ARGV[1], current, current, touch(ARGV[2]))
return 1
"""

# KEYS: as _order_keys, then the order's logs (downloads, outbox queues),
# then the leader's epoch. ARGV: member, the statuses it must be in
# ('|A|B|'), how many logs, the leader's token ('' unfenced: FENCE_HOOK).
# Removes the order, its items, its history and logs, every index entry of
# it, and its items from the counters. Returns 1 done, 0 refused (not in
# those statuses), -1 no such order.
_PURGE = _PRELUDE + FENCE_HOOK + """
if fenced(KEYS[#KEYS], ARGV[4]) then return redis.error_reply(DEPOSED) end
INDEX_END = #KEYS - 1 - tonumber(ARGV[3])
local current = redis.call('HGET', ORDER, 'status')
if not current then return -1 end
if not in_set(ARGV[2], current) then return 0 end
for status, _ in pairs(POS) do
  local n = tonumber(redis.call('HGET', ORDER, 'n/' .. status) or '0')
  if n ~= 0 and counted() then redis.call('HINCRBY', ITEM_STATS, status, -n) end
end
for i = INDEX_END + 1, #KEYS - 1 do redis.call('DEL', KEYS[i]) end
local fields = redis.call('HKEYS', ITEMS)
for _, field in ipairs(fields) do
  if string.sub(field, 1, 2) == 's/' then
    redis.call('ZREM', RESULTS, cjson.encode({ARGV[1], string.sub(field, 3)}))
  end
end
for i = F + 1, INDEX_END do redis.call('ZREM', KEYS[i], ARGV[1]) end
redis.call('DEL', ORDER, ITEMS, READY, HISTORY)
return 1
"""

# Orders stored before the collection and type indexes and the
# items-per-status counters (layout 1) are added to them here, a range of
# order ids per call, in id order: the cursor survives restarts and a change
# of leader, and ids never move (whereas an order's place in the indexes
# does). An order already there (it has 'collections') is left alone.
# KEYS: the items-per-status counters, the layout version, the cursor (the
# next order id), everybody's orders by last update, the order id sequence.
# ARGV: the key prefixes of an order hash, a type index and a collection
# index, how many ids to look at, the version this makes, the statuses (JSON
# array), the leader's token ('' unfenced: FENCE_HOOK; KEYS[6] the epoch).
# Returns {1 when every order is indexed, orders indexed now}.
_INDEX_OLDER = FENCE_HOOK.replace("%", "%%") + """
if fenced(KEYS[6], ARGV[7]) then return redis.error_reply(DEPOSED) end
if redis.call('GET', KEYS[2]) == ARGV[5] then return {1, 0} end
local last = tonumber(redis.call('GET', KEYS[5]) or '0')
local first = tonumber(redis.call('GET', KEYS[3]) or '1')
local stop = math.min(last, first + tonumber(ARGV[4]) - 1)
local statuses = cjson.decode(ARGV[6])
local done = 0
for n = first, stop do
  local order_id = string.format('%%d', n)
  local order = ARGV[1] .. order_id
  if redis.call('HEXISTS', order, 'spec') == 1 and redis.call('HEXISTS', order, 'collections') == 0 then
    local member = string.rep('0', %d - #order_id) .. order_id
    local score = redis.call('ZSCORE', KEYS[4], member)
    local seen, names = {}, {}
    for _, item in ipairs(cjson.decode(redis.call('HGET', order, 'spec'))['items'] or {}) do
      local c = item['collection_id']
      if c and not seen[c] then seen[c] = true names[#names + 1] = c end
    end
    table.sort(names)
    if score then
      redis.call('ZADD', ARGV[2] .. redis.call('HGET', order, 'order_type'), score, member)
      for _, c in ipairs(names) do redis.call('ZADD', ARGV[3] .. c, score, member) end
    end
    for _, status in ipairs(statuses) do
      local count = tonumber(redis.call('HGET', order, 'n/' .. status) or '0')
      if count ~= 0 then redis.call('HINCRBY', KEYS[1], status, count) end
    end
    local encoded = '[]'
    if #names > 0 then encoded = cjson.encode(names) end
    redis.call('HSET', order, 'collections', encoded)
    done = done + 1
  end
end
if stop >= last then
  redis.call('SET', KEYS[2], ARGV[5])
  redis.call('DEL', KEYS[3])
  return {1, done}
end
redis.call('SET', KEYS[3], tostring(stop + 1))
return {0, done}
""" % _MEMBER_WIDTH

# KEYS: order hash, ready set. Returns the ids completed since the previous
# call and moves the cursor past them; false when there is no such order.
_NEXT_READY = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local cursor = redis.call('HGET', KEYS[1], 'ready_cursor') or '0'
local last = redis.call('HGET', KEYS[1], 'completion_seq') or '0'
redis.call('HSET', KEYS[1], 'ready_cursor', last)
return redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. cursor, last)
"""

# KEYS: order hash, its e-mail queue, the outbox's due set. ARGV: the order
# id, the time, the message JSON (without its number). Queues a message for
# the e-mail channel after those of the order's changes (the same numbering).
_QUEUE_MAIL = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local message = cjson.decode(ARGV[3])
message['seq'] = redis.call('HINCRBY', KEYS[1], 'mail_seq', 1)
redis.call('RPUSH', KEYS[2], cjson.encode(message))
redis.call('ZADD', KEYS[3], 'NX', ARGV[2], 'mail:' .. ARGV[1])
return 1
"""

# KEYS: order hash, its downloads log, the hour and minute buckets. ARGV:
# the log entry (JSON), '1' when the transfer was complete. Logs the
# transfer, and counts a complete one. Returns 0 when there is no such order.
_RECORD_TRANSFER = BUCKET_HOOK + """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('LTRIM', KEYS[2], -%d, -1)
if ARGV[2] == '1' then count_event(KEYS[3], KEYS[4], '%s', 1) end
return 1
""" % (DOWNLOADS_KEPT, DOWNLOADS)

# KEYS: (order hash, items hash) per order. ARGV: per order, the version the
# caller already holds ('' none). One consistent snapshot; per order:
# {} no such order; {version} unchanged; else {version, owner, status_info,
# created_at, notification, spec (false when the caller holds the order:
# written once, never changed), the items hash as field/value pairs}.
_LOAD = """
local out = {}
for i = 1, #KEYS, 2 do
  local known = ARGV[(i + 1) / 2]
  local version = redis.call('HGET', KEYS[i], 'version')
  if not version then
    out[#out + 1] = {}
  elseif version == known then
    out[#out + 1] = {version}
  else
    local wanted = {'owner', 'status_info', 'created_at', 'notification'}
    if known == '' then wanted[#wanted + 1] = 'spec' end
    local fields = redis.call('HMGET', KEYS[i], unpack(wanted))
    if known ~= '' then fields[5] = false end
    out[#out + 1] = {version, fields[1], fields[2], fields[3], fields[4], fields[5],
                     redis.call('HGETALL', KEYS[i + 1])}
  end
end
return out
"""

# KEYS: the indexes of each criterion, one criterion after another. ARGV: a
# JSON array of how many keys each criterion has, max score, min score,
# limit, '1' for oldest first ('' newest), the cursor's score and member ('':
# from the start; the page begins after it), the budget (the most index
# entries to examine; 0: no bound).
# An order matches when it is in one index of each criterion. The criterion
# with the fewest orders in the time range is read, the others only tested
# (ZSCORE), so the work is bounded by the smallest side, not by all orders;
# and by the budget, shared by the keys read, so that an unlucky search
# (few matches among many candidates) ends. Each key is read until it gives
# ``limit`` matches, ends, or has used its share. Where a key stopped early,
# what lies past it is unknown: the page ends there (the frontier) and the
# next page starts after it.
# Returns {members in page order, next cursor score, next cursor member
# ('' both: no more), 1 when the budget cut the page short}. Ties in score go
# by member, the same way as the score.
_FIND = """
local sizes = cjson.decode(ARGV[1])
local max, min, limit, asc = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5] == '1'
local cs, cm, budget = ARGV[6], ARGV[7], tonumber(ARGV[8])
local ncs = nil
if cs ~= '' then
  ncs = tonumber(cs)
  if asc then
    if min == '-inf' or ncs > tonumber(min) then min = cs end
  elseif max == '+inf' or ncs < tonumber(max) then
    max = cs
  end
end
local criteria, k = {}, 1
for i, n in ipairs(sizes) do
  local ks = {}
  for j = 1, n do ks[j] = KEYS[k] k = k + 1 end
  criteria[i] = ks
end
local best = 1
if #criteria > 1 then
  local fewest = nil
  for i, ks in ipairs(criteria) do
    local n = 0
    for _, key in ipairs(ks) do n = n + redis.call('ZCOUNT', key, min, max) end
    if fewest == nil or n < fewest then best, fewest = i, n end
    if n == 0 then return {{}, '', '', 0} end
  end
end
local read, tests = criteria[best], {}
for i, ks in ipairs(criteria) do if i ~= best then tests[#tests + 1] = ks end end
local function matches(member)
  for _, ks in ipairs(tests) do
    local found = false
    for _, key in ipairs(ks) do
      if redis.call('ZSCORE', key, member) then found = true break end
    end
    if not found then return false end
  end
  return true
end
-- Whether entry a comes before entry b in the page's order.
local function before(a, b)
  if a[1] ~= b[1] then
    if asc then return a[1] < b[1] else return a[1] > b[1] end
  end
  if asc then return a[2] < b[2] else return a[2] > b[2] end
end
local cursor = nil
if ncs then cursor = {ncs, cm} end
local share = 0
if budget > 0 then share = math.max(1, math.floor(budget / #read)) end
local page = limit
if #tests > 0 then page = math.max(limit, 256) end
local found, frontier, cut = {}, nil, false
for _, key in ipairs(read) do
  local offset, taken, examined, last, done = 0, 0, 0, nil, false
  while taken < limit do
    local want = page
    if share > 0 then want = math.min(page, share - examined) end
    if want <= 0 then cut = true break end
    local rows
    if asc then rows = redis.call('ZRANGEBYSCORE', key, min, max, 'WITHSCORES', 'LIMIT', offset, want)
    else rows = redis.call('ZREVRANGEBYSCORE', key, max, min, 'WITHSCORES', 'LIMIT', offset, want) end
    for i = 1, #rows, 2 do
      local entry = {tonumber(rows[i + 1]), rows[i], rows[i + 1]}
      examined = examined + 1
      last = entry
      if (cursor == nil or before(cursor, entry)) and matches(rows[i]) then
        found[#found + 1] = entry
        taken = taken + 1
        if taken == limit then break end
      end
    end
    if taken < limit and #rows < 2 * want then done = true break end
    offset = offset + want
  end
  if not done and last ~= nil and (frontier == nil or before(last, frontier)) then frontier = last end
end
table.sort(found, before)
local members, n, final = {}, 0, nil
for _, entry in ipairs(found) do
  if frontier ~= nil and before(frontier, entry) then break end
  n = n + 1
  members[n] = entry[2]
  final = entry
  if n == limit then break end
end
if n == limit and (#found > limit or frontier ~= nil) then return {members, final[3], final[2], 0} end
if n < limit and cut and frontier ~= nil then return {members, frontier[3], frontier[2], 1} end
return {members, '', '', 0}
"""

# Examined at most per search of every user's orders (operators' lists):
# bounds the time of a search whose criteria match few of many orders.
SEARCH_BUDGET = 20_000


@attrs.frozen
class FoundOrders:
    """A page of a search: the ids, the cursor of the next page (None: no
    more), and whether the budget ended the page (more may match beyond)."""

    order_ids: tuple[str, ...]
    next: str | None
    truncated: bool = False


class BadCursor(ValueError):
    pass


class ItemChange(NamedTuple):
    """A new status for one item (see OrderStore.set_items_status)."""

    item_id: str
    status: StatusInfo
    completed_at: float | None = None


class StoredResult(NamedTuple):
    """An item with a result, as the expiry index holds it."""

    order_id: str
    item_id: str
    entry: str  # the index member, as the scripts wrote it


@attrs.frozen
class Transfer:
    """One transfer of a result file (or package) to a client, as logged."""

    at: float
    item_id: str  # "" for the order's package
    file: str
    user: str
    via: str  # "ftp", "ftps", "sftp" or "http"
    address: str
    bytes: int
    complete: bool


@attrs.frozen
class HistoryLine:
    """One change of an order's status, as logged."""

    at: float
    status: str
    info: str
    by: str = ""


class Resubmitted(Exception):
    """A Submit with a wsa:MessageID its owner used before: ``order`` is the
    one that first Submit made (answer it again)."""

    def __init__(self, order: Order) -> None:
        super().__init__(order.order_id)
        self.order = order


class NoSuchOrder(KeyError):
    pass


class NoSuchItem(KeyError):
    pass


class TooManyActiveItems(Exception):
    """Creating the order would put its owner over the limit of unfinished items."""

    def __init__(self, active: int, added: int, limit: int) -> None:
        super().__init__(f"{active} items unfinished, {added} more, limit {limit}")
        self.active = active
        self.added = added
        self.limit = limit


@attrs.frozen
class OrderProgress:
    """Where an order's items stand, as counts: what deriving the order's
    status needs, read in one step whatever the number of items."""

    order_id: str
    order_type: OrderType
    status: StatusInfo
    total: int
    counts: Mapping[OrderStatus, int]  # statuses with no item are left out
    last_failure: tuple[str, str] | None = None  # (item id, reason) of the latest failed item

    def count(self, *statuses: OrderStatus) -> int:
        return sum(self.counts.get(s, 0) for s in statuses)


class Conflict(Exception):
    """A compare-and-set lost too many races in a row."""


def collections_of(order: Order) -> set[str]:
    """The collections of the order's items (its entries in the collection indexes)."""
    return {item.spec.collection_id for item in order.items if item.spec.collection_id}


def _history_entry(status: StatusInfo, by: str) -> str:
    return codec.json_text({"at": status.changed_at, "status": status.status.value,
                            "info": status.additional_info or "", "by": by})


def _cursor(text: str | None) -> tuple[str, str]:
    """A page's cursor (made by OrderStore.find) as the script's score and member."""
    if not text:
        return "", ""
    score, _, member = text.partition("~")
    try:
        float(score)
    except ValueError:
        raise BadCursor(f"not a cursor: {text[:40]!r}") from None
    if len(member) != _MEMBER_WIDTH or not ORDER_ID.match(_order_id(member)):
        raise BadCursor(f"not a cursor: {text[:40]!r}")
    return score, member


def _member(order_id: str) -> str:
    return order_id.zfill(_MEMBER_WIDTH)


def _order_id(member: str) -> str:
    return member.lstrip("0")


def _score(moment: float) -> str:
    return repr(float(moment))


def _statuses(allowed: Iterable[OrderStatus] | None) -> str:
    return "" if allowed is None else "|" + "|".join(s.value for s in allowed) + "|"


def _order_keys(order_id: str, identity: _Identity, at: float) -> list[str]:
    """The KEYS of the order-changing scripts (see _PRELUDE), for a change at ``at``."""
    owner, reference = identity.owner, identity.reference
    layout = [
        keys.order(order_id), keys.order_items(order_id), keys.order_ready(order_id), keys.active_items(owner),
        keys.results_by_completion(), keys.items_by_status(), keys.order_history(order_id), *bucket_keys(at),
        *(keys.orders_in_status(owner, s.value) for s in _STATUSES),
        *(keys.orders_in_status(None, s.value) for s in _STATUSES),
        *_scored_indexes(identity),
    ]  # fmt: skip
    return layout


def _scored_indexes(identity: _Identity) -> list[str]:
    """The indexes an order is in whatever its status."""
    owner, reference = identity.owner, identity.reference
    found = [keys.orders_updated(owner), keys.orders_updated(None)]
    if reference:
        found += [keys.orders_with_reference(owner, reference), keys.orders_with_reference(None, reference)]
    if identity.order_type:
        found.append(keys.orders_of_type(identity.order_type))
    found += [keys.orders_in_collection(c) for c in identity.collections]
    return found


def _collections_field(collections: Iterable[str]) -> str:
    return codec.json_text(sorted(collections))


@attrs.frozen
class _Identity:
    """What never changes about an order and is needed to name its index keys."""

    owner: str
    reference: str | None
    order_type: str = ""
    collections: tuple[str, ...] = ()


class OrderStore:
    """Orders, their items and the indexes over them. Only the ordering core writes."""

    log = Logger()

    def __init__(self, redis: Any, *, cached_orders: int = CACHED_ORDERS, mail: bool = False,
                 new_id: Callable[[], str] = new_order_id, message_seconds: int = MESSAGE_SECONDS) -> None:
        """``mail``: e-mail is on, so every new order and change of status
        is queued for the e-mail channel with it. ``new_id``: draws a
        candidate id for a new order (:mod:`.orderids`)."""
        self._redis = redis
        self._mail = mail
        self._identities: dict[str, _Identity] = {}
        self._orders = _OrderCache(cached_orders)
        self._new_id = new_id
        self._message_seconds = message_seconds

    # ------------------------------------------------------------------ writing

    async def create(self, order: Order, *, max_active_items: int | None = None,
                     jobs: Callable[[str], Sequence[Job]] = lambda order_id: (),
                     subscribed_until: float | None = None, message_id: str | None = None,
                     acknowledged: bool = False) -> Order:
        """Store ``order`` under a new id (its ``order_id`` is ignored) and
        return it with that id. With ``max_active_items``, refuse with
        TooManyActiveItems when the owner's unfinished items plus this order's
        would exceed it (checked and counted in the same atomic step).
        ``jobs(order_id)``: the jobs to queue with it, in the same step (all
        of one priority). A subscription (``subscribed_until``, Unix time)
        is entered in the index of each of its items' collections.

        ``message_id`` (the Submit's wsa:MessageID): when the owner sent a
        Submit with it within MESSAGE_SECONDS, no order is made and
        Resubmitted raised with the first one (decided in the same atomic
        step, so concurrent retries make one order). ``acknowledged``: the
        client is told, so with ``[redis] min_replicas`` the order must be
        on the replicas; when it is not, it is taken back whole and
        ReplicationShortfall raised."""
        order = attrs.evolve(order, spec=attrs.evolve(order.spec, items=tuple(i.spec for i in order.items)))
        status = order.status.status
        fields = [
            "owner", order.owner,
            "order_type", order.spec.order_type.value,
            "reference", order.spec.reference or "",
            "created_at", _score(order.created_at),
            "notification", codec.dumps(order.notification),
            "status", status.value,
            "status_info", codec.dumps(order.status),
            "completion_seq", "0",
            "ready_cursor", "0",
            "items_total", str(len(order.items)),
            "collections", _collections_field(collections_of(order)),
        ]  # fmt: skip
        counts = collections.Counter(i.status.status.value for i in order.items)
        for item_status, count in counts.items():
            fields += [f"n/{item_status}", str(count)]
        item_fields: list[str] = []
        encoded: dict[StatusInfo, str] = {}  # the items of a new order mostly share one status
        for item in order.items:
            if item.status.status in _WITH_RESULT:
                raise ValueError(f"item {item.spec.item_id} cannot be created {item.status.status.value}")
            if item.status not in encoded:
                encoded[item.status] = codec.dumps(item.status)
            item_fields += [f"s/{item.spec.item_id}", encoded[item.status]]
            if item.batch:
                item_fields += [f"b/{item.spec.item_id}", str(item.batch)]
        added = sum(1 for item in order.items if not item.status.status.is_final)
        reference = order.spec.reference or None
        identity = _Identity(order.owner, reference, order.spec.order_type.value, tuple(sorted(collections_of(order))))
        subscription_keys = [] if subscribed_until is None else [
            keys.subscriptions(c) for c in sorted({i.spec.collection_id or "" for i in order.items})]
        # The same for every candidate id: encoded once.
        encoded_fields, encoded_items = _json_array(fields), _json_array(item_fields)
        spec, first_status = codec.dumps(order.spec), codec.dumps(order.status) if self._mail else ""
        history, per_status = _history_entry(order.status, ""), codec.json_text(counts)
        # Where the MessageID names the order (without one, a key the script leaves alone).
        seen = keys.submit_message(order.owner, hashlib.sha256(message_id.encode()).hexdigest()
                                   if message_id else "")
        for _ in range(ID_ATTEMPTS):
            # A random id is taken only by a one-in-2^69 chance; the script checks.
            order_id = self._new_id()
            queued = list(jobs(order_id))
            stream = _stream_of(queued)
            create_keys = [keys.order(order_id), keys.order_items(order_id), keys.active_items(order.owner),
                          stream, keys.items_by_status(), keys.order_history(order_id),
                          keys.orders_in_status(order.owner, status.value), keys.orders_in_status(None, status.value),
                          *_scored_indexes(identity), *subscription_keys, keys.outbox_queue(MAIL, order_id),
                          keys.outbox_due(), seen]
            try:
                answer = await self._redis.conn.eval(
                    _CREATE, create_keys,
                    [_member(order_id), _score(order.status.changed_at or order.created_at), str(added),
                     "" if max_active_items is None else str(max_active_items),
                     encoded_fields, encoded_items, _jobs_argument(queued), str(len(subscription_keys)),
                     # The spec on its own: the largest value, not encoded a second time inside the fields' JSON.
                     _score(subscribed_until or 0.0), spec, order_id if self._mail else "", first_status,
                     history, per_status, str(self._message_seconds) if message_id else "", order_id],
                    acknowledged=acknowledged,
                )
            except ReplicationShortfall as e:
                if isinstance(e.reply, list) and str(e.reply[0]) == "1":
                    await self._unaccept(order_id, identity, subscription_keys, stream, seen,
                                         [str(job) for job in e.reply[2:]])
                raise
            if str(answer[0]) == "3":
                first = await self.get(str(answer[1]))
                if first is not None:
                    raise Resubmitted(first)
                # Its order is gone (purged): the MessageID is free again, unless a concurrent retry took it.
                await self._redis.conn.eval(_FORGET_MESSAGE, [seen], [str(answer[1])])
                continue
            if str(answer[0]) != "2":
                break
        else:
            raise RuntimeError(f"no free order id in {ID_ATTEMPTS} attempts: is new_id random?")
        if str(answer[0]) != "1":
            raise TooManyActiveItems(int(answer[1]), added, max_active_items or 0)
        self._remember(order_id, identity)
        items = tuple(i if i.completed_at is None else attrs.evolve(i, completed_at=None) for i in order.items)
        return attrs.evolve(order, order_id=order_id, items=items, version=1)

    async def _unaccept(self, order_id: str, identity: _Identity, subscription_keys: list[str], stream: str,
                        seen: str, job_ids: list[str]) -> None:
        """Take back a new order its client is not told of (see _UNACCEPT)."""
        try:
            await self._redis.conn.eval(
                _UNACCEPT,
                _order_keys(order_id, identity, 0.0) + subscription_keys
                + [stream, keys.outbox_queue(MAIL, order_id), keys.outbox_due(), seen],
                [_member(order_id), order_id, str(len(subscription_keys)), _json_array(job_ids), JOB_GROUP])
        except Exception as e:
            # Left for an operator: the order stands, though its client was told to try again.
            self.log.error("order {order_id} was not replicated and could not be taken back: {error}",
                           order_id=order_id, error=e)
        self._orders.drop(order_id)
        self._identities.pop(order_id, None)

    async def set_order_status(self, order_id: str, status: StatusInfo, *,
                               allowed: Collection[OrderStatus] | None = None,
                               notification: Notification | None = None, jobs: Sequence[Job] = (),
                               by: str = "", acknowledged: bool = False) -> bool:
        """Set the order's status, at ``status.changed_at``. With ``allowed``,
        only if its current status is one of those; False when refused. A
        ``notification`` replaces the stored one, and ``jobs`` (of one
        priority) are queued, in the same step. ``by``: the operator who
        asked for the change (the order's history says so).
        ``acknowledged``: somebody is told of it (see ``Scripting.eval``)."""
        return await self._set_order_status(order_id, status, allowed, None, notification, jobs, by,
                                            acknowledged=acknowledged)

    async def set_item_status(self, order_id: str, item_id: str, status: StatusInfo,
                              completed_at: float | None = None, *,
                              allowed: Collection[OrderStatus] | None = None) -> bool:
        """Set one item's status, at ``status.changed_at``. On reaching
        Completed (or Downloaded) the item is ready for DescribeResultAccess,
        completed at ``completed_at`` (default: ``status.changed_at``); back in
        a status without a result, it is not. With ``allowed``, only if the
        item's current status is one of those; False when refused."""
        (done,) = await self.set_items_status(order_id, [ItemChange(item_id, status, completed_at)], allowed=allowed)
        return done

    async def queue_mail(self, order_id: str, data: Mapping[str, object], at: float) -> None:
        """With e-mail on, queue ``data`` for the e-mail channel behind the
        order's other mails (an event no status change tells, such as a
        batch being ready)."""
        if self._mail and ORDER_ID.match(order_id):
            await self._redis.conn.eval(_QUEUE_MAIL, [keys.order(order_id), keys.outbox_queue(MAIL, order_id),
                                                      keys.outbox_due()], [order_id, _score(at), json.dumps(data)])

    async def callback_failure(self, order_id: str) -> Failure | None:
        """The last status call-back of the order that the outbox gave up on."""
        text = await self._redis.conn.hget(keys.order(order_id), f"{CALLBACK}_failure")
        return failure_from_json(text) if text else None

    async def set_items_status(self, order_id: str, changes: Sequence[ItemChange], *,
                               allowed: Collection[OrderStatus] | None = None,
                               jobs: Sequence[Job] = (), acknowledged: bool = False) -> list[bool]:
        """:meth:`set_item_status` for several items of one order in one
        atomic step (a batch finishing, a cancel); the order counts as
        updated at the latest of their times. ``jobs`` (of one priority)
        are queued in the same step, unless a change was refused (items put
        back in the queue never get a job for items that did not move).
        Which changes were made."""
        if not changes:
            return []
        identity = await self._identity(order_id)
        payload = _json_array([
            [change.item_id, change.status.status.value, codec.dumps(change.status),
             "" if change.completed_at is None else _score(change.completed_at)]
            for change in changes
        ])
        try:
            at = max(c.status.changed_at for c in changes)
            answer = await self._redis.conn.eval(
                _SET_ITEMS_STATUS,
                _order_keys(order_id, identity, at) + ([_stream_of(jobs)] if jobs else []),
                [_member(order_id), _score(at), _statuses(allowed), payload, _jobs_argument(jobs)],
                acknowledged=acknowledged,
            )
        except txredisapi.ResponseError as e:
            message = str(e)
            if "NOITEM " in message:
                raise NoSuchItem(message.split("NOITEM ", 1)[1]) from None
            raise
        if not isinstance(answer, list):
            raise NoSuchOrder(order_id)
        return [int(result) == 1 for result in answer]

    async def update_order_status(self, order_id: str, decide: Callable[[OrderProgress], StatusInfo | None], *,
                                  attempts: int = 20) -> OrderProgress:
        """Compare-and-set: read the order's progress (O(1), whatever its
        number of items), ask ``decide`` for its new status (None: leave it),
        write it only if nothing changed the order or its items meanwhile,
        else start over. Returns the progress with the status decided on."""
        fields = ["version", "order_type", "status_info", "items_total", "failed_item", "failed_reason",
                  *(f"n/{s.value}" for s in _STATUSES)]
        for _ in range(attempts):
            values = await self._redis.conn.hmget(keys.order(order_id), fields) if ORDER_ID.match(order_id) else []
            if not values or values[0] is None:
                raise NoSuchOrder(order_id)
            version, order_type, status_info, total, failed_item, failed_reason, *counts = values
            progress = OrderProgress(
                order_id=order_id,
                order_type=OrderType(order_type),
                status=codec.loads(StatusInfo, status_info),
                total=int(total),
                counts={s: int(n) for s, n in zip(_STATUSES, counts) if n and int(n)},
                last_failure=(failed_item, failed_reason) if failed_item is not None else None,
            )
            status = decide(progress)
            if status is None:
                return progress
            if await self._set_order_status(order_id, status, None, version, None):
                return attrs.evolve(progress, status=status)
        raise Conflict(f"order {order_id} kept changing while its status was derived")

    async def next_ready(self, order_id: str) -> frozenset[str]:
        """The ids of the items that got a result since the previous call
        (all of them at the first call); the next call starts after them."""
        if not ORDER_ID.match(order_id):
            raise NoSuchOrder(order_id)
        ids = await self._redis.conn.eval(_NEXT_READY, [keys.order(order_id), keys.order_ready(order_id)], [])
        if ids is None:
            raise NoSuchOrder(order_id)
        return frozenset(ids)

    async def add_items(self, order_id: str, items: Sequence[Item], job: Job, *, marker: str | None = None) -> bool:
        """Add ``items`` (all of one batch) to an unfinished order and queue
        ``job`` for them, in one step; with ``marker``, only once per marker
        (a subscription's timeslot). False when not added."""
        identity = await self._identity(order_id)
        payload = _json_array([[item.spec.item_id, codec.to_data(item.spec), codec.dumps(item.status)]
                               for item in items])
        try:
            answer = int(await self._redis.conn.eval(
                _ADD_ITEMS, _order_keys(order_id, identity, max(i.status.changed_at for i in items))
                + [_stream_of([job])],
                [_member(order_id), _score(max(i.status.changed_at for i in items)),
                 f"m/{marker}" if marker else "", payload, str(items[0].batch), _json_array(job_fields(job))]))
        except txredisapi.ResponseError as e:
            if "ITEMEXISTS " in str(e):
                raise ValueError(f"order {order_id} has an item {str(e).split('ITEMEXISTS ', 1)[1]} already") from None
            raise
        if answer == -1:
            raise NoSuchOrder(order_id)
        return answer == 1

    async def subscriptions(self, collection_id: str, active_at: float) -> list[str]:
        """Ids of the subscriptions on ``collection_id`` whose end is after
        ``active_at`` (those cancelled since may be among them)."""
        members = await self._redis.conn.execute_command(
            "ZRANGEBYSCORE", keys.subscriptions(collection_id), f"({_score(active_at)}", "+inf")
        return [_order_id(m) for m in members or ()]

    async def subscriptions_ended(self, collection_id: str, before: float) -> list[str]:
        members = await self._redis.conn.execute_command(
            "ZRANGEBYSCORE", keys.subscriptions(collection_id), "-inf", _score(before))
        return [_order_id(m) for m in members or ()]

    async def subscribed_until(self, order_id: str, collection_ids: Iterable[str]) -> float | None:
        """When the subscription ends (its score in the collections'
        subscription indexes; None: in none of them)."""
        ends = []
        for collection_id in collection_ids:
            score = await self._redis.conn.execute_command("ZSCORE", keys.subscriptions(collection_id),
                                                           _member(order_id))
            if score is not None:
                ends.append(float(score))
        return min(ends) if ends else None

    async def unsubscribe(self, order_id: str, collection_ids: Iterable[str]) -> None:
        """Take the order out of these collections' subscription indexes."""
        for collection_id in collection_ids:
            await self._redis.conn.execute_command("ZREM", keys.subscriptions(collection_id), _member(order_id))

    async def record_download(self, order_id: str, item_id: str, name: str, at: float) -> set[str]:
        """Count a complete download of file ``name`` of the item, at ``at``;
        the names of the item's files downloaded completely so far."""
        prefix = f"d/{json.dumps(item_id)}/"
        items_key = keys.order_items(order_id)
        await self._redis.conn.hincrby(items_key, prefix + name, 1)
        await self._redis.conn.hset(items_key, f"dl/{item_id}", _score(at))
        fields = await self._redis.conn.hkeys(items_key)
        return {f[len(prefix):] for f in fields if f.startswith(prefix)}

    async def record_downloads(self, order_id: str, item_ids: Sequence[str], name: str, at: float) -> None:
        """Count a complete download of ``name`` for each of the items, at
        ``at``: a package holding them all."""
        items_key = keys.order_items(order_id)
        for item_id in item_ids:
            await self._redis.conn.hincrby(items_key, f"d/{json.dumps(item_id)}/{name}", 1)
        if item_ids:
            await self._redis.conn.hmset(items_key, {f"dl/{item_id}": _score(at) for item_id in item_ids})

    async def downloads(self, order_id: str) -> dict[str, tuple[int, float]]:
        """Per item: complete downloads so far (all files) and the last one's time."""
        fields: dict[str, str] = await self._redis.conn.hgetall(keys.order_items(order_id))
        counts: dict[str, int] = {}
        for field, value in fields.items():
            if field.startswith("d/"):
                item_id, _ = json.JSONDecoder().raw_decode(field[2:])
                counts[item_id] = counts.get(item_id, 0) + int(value)
        return {item_id: (count, float(fields.get(f"dl/{item_id}", "0"))) for item_id, count in counts.items()}

    async def record_transfer(self, order_id: str, transfer: Transfer) -> None:
        """Log one transfer of the order's results, complete or not (a
        complete one counts in the downloads of its hour and minute)."""
        if ORDER_ID.match(order_id):
            await self._redis.conn.eval(
                _RECORD_TRANSFER, [keys.order(order_id), keys.order_downloads(order_id), *bucket_keys(transfer.at)],
                [json.dumps(attrs.asdict(transfer), ensure_ascii=False), "1" if transfer.complete else ""])

    async def transfers(self, order_id: str) -> list[Transfer]:
        """The transfers of the order's results, oldest first (the last DOWNLOADS_KEPT)."""
        if not ORDER_ID.match(order_id):
            return []
        found = await self._redis.conn.lrange(keys.order_downloads(order_id), 0, -1) or ()
        return [Transfer(**json.loads(text)) for text in found]

    async def history(self, order_id: str) -> list[HistoryLine]:
        """The order's changes of status, oldest first (the last HISTORY_KEPT)."""
        if not ORDER_ID.match(order_id):
            return []
        found = await self._redis.conn.lrange(keys.order_history(order_id), 0, -1) or ()
        return [HistoryLine(**json.loads(text)) for text in found]

    async def index_older_orders(self, ids: int = 500, calls: int = 20, *,
                                 fence: Fence | None = None) -> tuple[bool, int]:
        """Add orders stored by a version before the collection and type
        indexes and the item counters to them, ``ids`` order ids per script
        (a few milliseconds of Redis), at most ``calls`` scripts. Whether
        every order is indexed now (then this is one GET), and how many were
        indexed by this call."""
        indexed = 0
        for _ in range(calls):
            finished, count = await _fenced(self._redis.conn.eval(
                _INDEX_OLDER,
                [keys.items_by_status(), keys.schema_version(), keys.index_cursor(), keys.orders_updated(None),
                 keys.order_sequence(), keys.leader_epoch()],
                [keys.order(""), keys.orders_of_type(""), keys.orders_in_collection(""), str(ids), LAYOUT_VERSION,
                 codec.json_text([s.value for s in _STATUSES]), "" if fence is None else fence.argument]))
            indexed += int(count)
            if str(finished) == "1":
                return True, indexed
        return False, indexed

    async def purge(self, order_id: str, statuses: Collection[OrderStatus], *, fence: Fence | None = None) -> bool:
        """Remove the order (and everything about it) if it is in one of
        ``statuses``; False when it is not. Final orders only: an unfinished
        one would leave its owner's count of active items wrong. With the
        leader's ``fence``, Deposed (and nothing removed) when a newer leader
        exists."""
        if not all(s.is_final for s in statuses):
            raise ValueError("only final orders are purged")
        identity = await self._identity(order_id)
        logs = [keys.order_downloads(order_id), *(keys.outbox_log(channel, order_id) for channel in ORDER_CHANNELS)]
        answer = int(await _fenced(self._redis.conn.eval(
            _PURGE, _order_keys(order_id, identity, 0.0) + logs + [keys.leader_epoch()],
            [_member(order_id), _statuses(statuses), str(len(logs)), "" if fence is None else fence.argument])))
        if answer == -1:
            raise NoSuchOrder(order_id)
        if answer == 1:
            self._orders.drop(order_id)
            self._identities.pop(order_id, None)
        return answer == 1

    async def final_before(self, moment: float, limit: int) -> list[str]:
        """Ids of orders in a final status whose last update is before ``moment``."""
        found: list[str] = []
        for status in _STATUSES:
            if status.is_final and len(found) < limit:
                members = await self._redis.conn.execute_command(
                    "ZRANGEBYSCORE", keys.orders_in_status(None, status.value), "-inf", f"({_score(moment)}",
                    "LIMIT", "0", str(limit - len(found)))
                found += [_order_id(m) for m in members or ()]
        return found

    async def results_completed_before(self, moment: float, limit: int) -> list[StoredResult]:
        """Results completed before ``moment``, oldest first."""
        members = await self._redis.conn.execute_command(
            "ZRANGEBYSCORE", keys.results_by_completion(), "-inf", f"({_score(moment)}", "LIMIT", "0", str(limit))
        found = []
        for member in members or ():
            order_member, item_id = json.loads(member)
            found.append(StoredResult(_order_id(order_member), item_id, member))
        return found

    async def forget_results(self, results: Sequence[StoredResult]) -> None:
        """Take these results out of the expiry index (they have expired)."""
        if results:
            await self._redis.conn.execute_command("ZREM", keys.results_by_completion(),
                                                   *(result.entry for result in results))

    # ------------------------------------------------------------------ reading

    async def get(self, order_id: str) -> Order | None:
        if not ORDER_ID.match(order_id):
            return None
        loaded = await self._load([order_id])
        return loaded[0] if loaded else None

    async def get_many(self, order_ids: Iterable[str]) -> list[Order]:
        """The orders that exist among ``order_ids``, in that order."""
        return await self._load([i for i in order_ids if ORDER_ID.match(i)])

    async def count_active_items(self, owner: str) -> int:
        """How many items of ``owner``'s orders are not in a final status."""
        return int(await self._redis.conn.get(keys.active_items(owner)) or 0)

    async def search(self, owner: str | None, last_update: float | None, last_update_end: float | None,
                     statuses: Collection[OrderStatus], reference: str | None, limit: int) -> list[Order]:
        """The orders of ``owner`` (None: of everybody) last updated within
        [last_update, last_update_end], in one of ``statuses`` (empty: any),
        with orderReference ``reference`` (None: any); newest update first, at
        most ``limit``."""
        ids = await self.search_ids(owner, last_update, last_update_end, statuses, reference, limit)
        return await self.get_many(ids)

    async def search_ids(self, owner: str | None, last_update: float | None, last_update_end: float | None,
                         statuses: Collection[OrderStatus], reference: str | None, limit: int) -> list[str]:
        if limit <= 0:
            return []
        found = await self.find(owner=owner, statuses=statuses, reference=reference, updated_from=last_update,
                                updated_to=last_update_end, limit=limit, budget=0)
        return list(found.order_ids)

    async def find(self, *, owner: str | None = None, statuses: Collection[OrderStatus] = (),
                   reference: str | None = None, collection: str | None = None, order_type: str | None = None,
                   updated_from: float | None = None, updated_to: float | None = None, oldest_first: bool = False,
                   after: str | None = None, limit: int = 50, budget: int = SEARCH_BUDGET) -> FoundOrders:
        """A page of the orders matching every criterion given (of
        ``owner``, None: everybody; in one of ``statuses``; with
        orderReference ``reference``; with an item of ``collection``; of
        ``order_type``; last updated within [updated_from, updated_to]),
        newest update first (``oldest_first``: the other way), after the
        cursor ``after`` of the page before (BadCursor when it is not one).
        Reads indexes only, examining at most ``budget`` entries (0: no bound)."""
        criteria: list[list[str]] = []
        if statuses:
            criteria.append([keys.orders_in_status(owner, s.value) for s in _STATUSES if s in statuses])
        if reference:
            criteria.append([keys.orders_with_reference(owner, reference)])
        if collection:
            criteria.append([keys.orders_in_collection(collection)])
        if order_type:
            criteria.append([keys.orders_of_type(order_type)])
        if not criteria or (owner is not None and not (statuses or reference)):
            criteria.insert(0, [keys.orders_updated(owner)])
        cursor_score, cursor_member = _cursor(after)
        if limit <= 0:
            return FoundOrders((), None)
        members, next_score, next_member, cut = await self._redis.conn.eval(
            _FIND, [k for criterion in criteria for k in criterion],
            [codec.json_text([len(c) for c in criteria]),
             "+inf" if updated_to is None else _score(updated_to), "-inf" if updated_from is None else _score(updated_from),
             str(limit), "1" if oldest_first else "", cursor_score, cursor_member, str(budget)])
        return FoundOrders(tuple(_order_id(m) for m in members or ()),
                           f"{next_score}~{next_member}" if next_member else None, bool(int(cut)))

    # ------------------------------------------------------------------ internals

    async def _set_order_status(self, order_id: str, status: StatusInfo, allowed: Collection[OrderStatus] | None,
                                version: str | None, notification: Notification | None,
                                jobs: Sequence[Job] = (), by: str = "", *, acknowledged: bool = False) -> bool:
        identity = await self._identity(order_id)
        answer = int(await self._redis.conn.eval(
            _SET_ORDER_STATUS,
            _order_keys(order_id, identity, status.changed_at) + ([_stream_of(jobs)] if jobs else [])
            + [keys.wsn_subscriptions(identity.owner), keys.outbox_sequences(), keys.outbox_queue(MAIL, order_id),
               keys.outbox_queue(CALLBACK, order_id), keys.outbox_due()],
            [_member(order_id), status.status.value, codec.dumps(status), _score(status.changed_at),
             _statuses(allowed), version or "", "" if notification is None else codec.dumps(notification),
             _jobs_argument(jobs), order_id, "1" if self._mail else "", keys.outbox_queue(WSN, ""),
             _history_entry(status, by), by],
            acknowledged=acknowledged,
        ))
        if answer == -1:
            raise NoSuchOrder(order_id)
        return answer == 1

    async def _identity(self, order_id: str) -> _Identity:
        identity = self._identities.get(order_id)
        if identity is None:
            if not ORDER_ID.match(order_id):
                raise NoSuchOrder(order_id)
            owner, reference, order_type, collections = await self._redis.conn.hmget(
                keys.order(order_id), ["owner", "reference", "order_type", "collections"])
            if owner is None:
                raise NoSuchOrder(order_id)
            if collections is None:
                # An order stored before the collection indexes: its spec says (once: identities are kept).
                spec = codec.loads(OrderSpec, await self._redis.conn.hget(keys.order(order_id), "spec"))
                collections = _collections_field({i.collection_id for i in spec.items if i.collection_id})
            identity = _Identity(owner, reference or None, order_type or "", tuple(json.loads(collections)))
            self._remember(order_id, identity)
        return identity

    def _remember(self, order_id: str, identity: _Identity) -> None:
        # Owner and reference never change, so any daemon may cache them; the
        # bound only keeps memory flat.
        if len(self._identities) >= 10_000:
            self._identities.clear()
        self._identities[order_id] = identity

    async def _load(self, order_ids: list[str]) -> list[Order]:
        """The existing orders among ``order_ids``, in that order. An order
        read before and unchanged since (same version) costs one HGET and no
        decoding: status polling reads the same orders over and over."""
        if not order_ids:
            return []
        known = [self._orders.get(order_id) for order_id in order_ids]
        replies = await self._redis.conn.eval(
            _LOAD, [k for order_id in order_ids for k in (keys.order(order_id), keys.order_items(order_id))],
            ["" if order is None else str(order.version) for order in known])
        loaded = []
        for order_id, held, reply in zip(order_ids, known, replies):
            if not reply:
                self._orders.drop(order_id)
                continue
            if len(reply) == 1 and held is not None:
                order = held
            else:
                version, owner, status_info, created_at, notification, spec, item_flat = reply
                order = Order(
                    order_id=order_id,
                    owner=owner,
                    spec=held.spec if spec is None and held is not None else codec.loads(OrderSpec, spec),
                    status=codec.loads(StatusInfo, status_info),
                    created_at=float(created_at),
                    notification=codec.loads(Notification, notification),
                    version=int(version),
                )
                fields = _pairs(item_flat)
                order = attrs.evolve(order, items=_items((*order.spec.items, *_added_specs(fields)), fields))
                self._orders.put(order)
            loaded.append(order)
        return loaded


class _OrderCache:
    """The orders read last, by id, least recently used dropped first. Kept
    only as a starting point: every read still asks Redis for the version."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._orders: dict[str, Order] = {}

    def get(self, order_id: str) -> Order | None:
        order = self._orders.pop(order_id, None)
        if order is not None:
            self._orders[order_id] = order  # most recently used: last
        return order

    def put(self, order: Order) -> None:
        if self._limit <= 0 or len(order.items) > CACHED_ITEMS:
            return
        self._orders.pop(order.order_id, None)
        self._orders[order.order_id] = order
        if len(self._orders) > self._limit:
            del self._orders[next(iter(self._orders))]

    def drop(self, order_id: str) -> None:
        self._orders.pop(order_id, None)


async def _fenced(answer: Awaitable[Any]) -> Any:
    """``answer``; a fenced script's refusal raised as Deposed."""
    try:
        return await answer
    except txredisapi.ResponseError as e:
        if deposed(e):
            raise Deposed(str(e)) from None
        raise


def _stream_of(jobs: Sequence[Job]) -> str:
    priorities = {job.priority for job in jobs} or {"STANDARD"}
    if len(priorities) > 1:
        raise ValueError("the jobs queued with one change share one priority")
    return keys.job_stream(priorities.pop())


def _jobs_argument(jobs: Sequence[Job]) -> str:
    return _json_array([job_fields(job) for job in jobs]) if jobs else ""


def _json_array(values: Sequence[object]) -> str:
    return codec.json_text(values)


def _pairs(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[0::2], flat[1::2]))


def _added_specs(item_fields: dict[str, str]) -> list[ItemSpec]:
    """The items added after the order was made (a subscription's
    timeslots), in the order they were added."""
    added = [json.loads(value) for field, value in item_fields.items() if field.startswith("x/")]
    return [codec.from_data(ItemSpec, spec) for _, spec in sorted(added, key=lambda pair: pair[0])]


def _items(specs: Iterable[ItemSpec], item_fields: dict[str, str]) -> tuple[Item, ...]:
    items = []
    for spec in specs:
        item_id = spec.item_id
        completed = item_fields.get(f"c/{item_id}")
        items.append(Item(
            spec=spec,
            status=codec.loads(StatusInfo, item_fields[f"s/{item_id}"]),
            batch=int(item_fields.get(f"b/{item_id}", "0")),
            completed_at=float(completed) if completed is not None else None,
        ))
    return tuple(items)
