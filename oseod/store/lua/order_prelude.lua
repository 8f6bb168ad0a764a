-- Shared by the scripts that change an order (each includes it): the
-- constants filled in from OrderStatus, the helpers, and the KEYS layout,
-- as built by _order_keys():
--   1 order hash, 2 items hash, 3 ready set, 4 owner's active-item counter,
--   5 every order's results by completion time (for their expiry),
--   6 the items-per-status counters, 7 the order's history, 8 and 9 the hour
--   and minute buckets of the change's time (oseod.store.stats),
--   F+1 .. F+N the owner's per-status indexes, F+N+1 .. F+2N everybody's (N
--   statuses, in OrderStatus order; F the 9 keys before), then the two
--   indexes of every order by last update (the owner's, everybody's) that
--   earlier versions wrote and this one only takes orders out of (the status
--   indexes together are those: layout._scored_indexes), then every index
--   scored but not chosen by status (the two orderReference indexes, the
--   order type's and the collections').
local N = ${N}
local POS = {${POS}}
local FINAL = {${FINAL}}
local WITH_RESULT = {${WITH_RESULT}}
local HISTORY_KEPT = ${HISTORY_KEPT}
-- include: bucket_hook
-- include: order_chunks

local ORDER, ITEMS, READY, ACTIVE, RESULTS = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local ITEM_STATS, HISTORY, HOUR, MINUTE = KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local F = 9
-- Layout 3 (an order with its spec in chunks, p/0 ...) keeps the items'
-- fields (s/ITEM, c/ITEM, ...) in the order hash itself, whose own field
-- names never take those forms: a key of their own cost more than they do.
-- Its items hash (KEYS[2]) then holds only download counts (OrderRecords),
-- made at the first download: file names are often longer than the
-- listpack limit, and would turn the whole order hash into a hashtable.
if redis.call('HEXISTS', ORDER, 'p/0') == 1 then ITEMS = ORDER end
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
-- give it `score` everywhere; out of the indexes by last update of earlier
-- versions (their entries' scores would be stale: nothing reads them, they
-- go away as orders change).
local function reindex(member, old, new, score)
  if old then
    redis.call('ZREM', KEYS[F + POS[old]], member)
    redis.call('ZREM', KEYS[F + N + POS[old]], member)
  end
  redis.call('ZADD', KEYS[F + POS[new]], score, member)
  redis.call('ZADD', KEYS[F + N + POS[new]], score, member)
  redis.call('ZREM', KEYS[F + 2 * N + 1], member)
  redis.call('ZREM', KEYS[F + 2 * N + 2], member)
  for i = F + 2 * N + 3, INDEX_END do redis.call('ZADD', KEYS[i], score, member) end
end

-- Whether the order's items are in the items-per-status counters: orders
-- stored before them are not, until OrderStore.index_older_orders adds them
-- (with the 'collections' field it writes, as create does).
local is_counted = nil
local function counted()
  if is_counted == nil then is_counted = redis.call('HEXISTS', ORDER, 'collections') == 1 end
  return is_counted
end

-- The status name and the additional info in an item's stored status:
-- layout 3's [status, changed_at, info, ...] (layout._packed_status) or
-- layout 2's StatusInfo JSON object.
local function status_of(stored)
  local d = cjson.decode(stored)
  return d[1] or d['status']
end
local function reason_of(stored)
  local d = cjson.decode(stored)
  local reason = d[3] or d['additional_info']
  if type(reason) ~= 'string' then reason = '' end
  return reason
end

-- One more line of the order's history, the oldest dropped past
-- HISTORY_KEPT. `entry`: layout._history_entry's [head, info]. Layout 3
-- keeps the lines in the order hash (a key of their own cost more than
-- the lines): 'h' their number, 'h/N' the head of line N, 'i/N' its info
-- when not empty (apart: both fit the listpack limit, together they often do
-- not). An order whose history is still a list (layout 2) goes on in it.
local function remember(entry)
  local line = cjson.decode(entry)
  if redis.call('EXISTS', HISTORY) == 1 then
    local full = line[1]
    if line[2] ~= '' then full = string.sub(full, 1, -2) .. ',' .. cjson.encode(line[2]) .. ']' end
    redis.call('RPUSH', HISTORY, full)
    redis.call('LTRIM', HISTORY, -HISTORY_KEPT, -1)
    return
  end
  local n = redis.call('HINCRBY', ORDER, 'h', 1)
  redis.call('HSET', ORDER, 'h/' .. n, line[1])
  if line[2] ~= '' then redis.call('HSET', ORDER, 'i/' .. n, line[2]) end
  if n > HISTORY_KEPT then redis.call('HDEL', ORDER, 'h/' .. (n - HISTORY_KEPT), 'i/' .. (n - HISTORY_KEPT)) end
end
