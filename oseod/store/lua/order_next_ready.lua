-- KEYS: order hash, items hash, ready set (layout 2). Returns the ids
-- completed since the previous call and moves the cursor past them; false
-- when there is no such order. An item's place in the completion sequence is
-- its items-hash field r/ITEM (layout 3), or its score in the ready set for
-- items completed before (layout 2).
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local cursor = tonumber(redis.call('HGET', KEYS[1], 'ready_cursor') or '0')
local last = redis.call('HGET', KEYS[1], 'completion_seq') or '0'
redis.call('HSET', KEYS[1], 'ready_cursor', last)
last = tonumber(last)
local ids = redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. cursor, last)
local items = KEYS[2]
if redis.call('HEXISTS', KEYS[1], 'p/0') == 1 then items = KEYS[1] end  -- layout 3: in the order hash
local fields = redis.call('HGETALL', items)
for i = 1, #fields, 2 do
  if string.sub(fields[i], 1, 2) == 'r/' then
    local seq = tonumber(fields[i + 1])
    if seq > cursor and seq <= last then ids[#ids + 1] = string.sub(fields[i], 3) end
  end
end
return ids
