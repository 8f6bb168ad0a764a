-- KEYS: order hash, ready set. Returns the ids completed since the previous
-- call and moves the cursor past them; false when there is no such order.
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local cursor = redis.call('HGET', KEYS[1], 'ready_cursor') or '0'
local last = redis.call('HGET', KEYS[1], 'completion_seq') or '0'
redis.call('HSET', KEYS[1], 'ready_cursor', last)
return redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. cursor, last)
