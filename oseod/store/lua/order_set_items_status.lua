-- KEYS: as _order_keys, then the job stream when jobs are queued.
-- ARGV: member, time, allowed current statuses ('|A|B|', '' any), then the
-- changes as a JSON array of [item id, status, stored status (layout._packed_status), completion
-- time ('' the time)], applied in order, then the jobs to queue ('' none: else
-- a JSON array of field/value arrays; then every item must be in an allowed
-- status, or nothing is done). Returns -1 when there is no such
-- order, else per change 1 done or 0 refused (status). An unknown item fails
-- the whole call (error NOITEM), before anything is changed.
-- include: order_prelude
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
    if not in_set(allowed, status_of(redis.call('HGET', ITEMS, 's/' .. change[1]))) then
      for j = 1, #changes do results[j] = 0 end
      return results
    end
  end
  for _, job in ipairs(cjson.decode(ARGV[5])) do redis.call('XADD', KEYS[#KEYS], '*', unpack(job)) end
end
for i, change in ipairs(changes) do
  local item, new, info, completed = change[1], change[2], change[3], change[4]
  -- an earlier change of the same call may have moved the item already
  local old = status_of(redis.call('HGET', ITEMS, 's/' .. item))
  if not in_set(allowed, old) then
    results[i] = 0
  else
    results[i] = 1
    redis.call('HSET', ITEMS, 's/' .. item, info)
    -- A count back to 0 is removed (read as 0): most orders end with every item in one status.
    if redis.call('HINCRBY', ORDER, 'n/' .. old, -1) == 0 then redis.call('HDEL', ORDER, 'n/' .. old) end
    redis.call('HINCRBY', ORDER, 'n/' .. new, 1)
    if old ~= new and counted() then
      redis.call('HINCRBY', ITEM_STATS, old, -1)
      redis.call('HINCRBY', ITEM_STATS, new, 1)
    end
    if new == 'Failed' then
      redis.call('HSET', ORDER, 'failed_item', item, 'failed_reason', reason_of(info))
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
        -- Its place in the completion sequence (nextReady): r/ITEM in layout 3, a key of its own cost more.
        redis.call('HSET', ITEMS, 'r/' .. item, redis.call('HINCRBY', ORDER, 'completion_seq', 1))
        redis.call('ZADD', RESULTS, completed, cjson.encode({ARGV[1], item}))
      end
    else
      redis.call('HDEL', ITEMS, 'c/' .. item, 'r/' .. item)
      redis.call('ZREM', READY, item)  -- layout 2
      redis.call('ZREM', RESULTS, cjson.encode({ARGV[1], item}))
    end
  end
end
reindex(ARGV[1], current, current, touch(at))
return results
