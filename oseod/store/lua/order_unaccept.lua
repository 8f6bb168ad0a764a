-- A new order WAIT found on too few replicas, taken back whole.
-- KEYS: as order_prelude's, then the subscription indexes, the job stream,
-- the e-mail queue, the outbox's due set and the wsa:MessageID key.
-- ARGV: member, order id, how many subscription indexes, the ids of the
-- jobs queued (JSON array), the workers' consumer group (a job claimed
-- meanwhile is acknowledged).
-- Whatever the order went through since its create (a worker may have
-- claimed its job meanwhile), it is taken out of the counters and every
-- index it can be in, its jobs out of the stream, its keys deleted: as if
-- the Submit had never come, which is what its client was told (503).
-- Returns 1 taken back, 0 no such order.
-- include: order_prelude
local STREAM, MAILS, DUE, SEEN = KEYS[#KEYS - 3], KEYS[#KEYS - 2], KEYS[#KEYS - 1], KEYS[#KEYS]
local member, order_id = ARGV[1], ARGV[2]
if redis.call('EXISTS', ORDER) == 0 then return 0 end
local unfinished = 0
for status, _ in pairs(POS) do
  local n = tonumber(redis.call('HGET', ORDER, 'n/' .. status) or '0')
  if n ~= 0 then
    if counted() then redis.call('HINCRBY', ITEM_STATS, status, -n) end
    if not FINAL[status] then unfinished = unfinished + n end
  end
end
if unfinished ~= 0 then redis.call('DECRBY', ACTIVE, unfinished) end
for _, field in ipairs(redis.call('HKEYS', ITEMS)) do
  if string.sub(field, 1, 2) == 's/' then
    redis.call('ZREM', RESULTS, cjson.encode({member, string.sub(field, 3)}))
  end
end
-- Every index, by status or not, and the subscription indexes after them.
for i = F + 1, #KEYS - 4 do redis.call('ZREM', KEYS[i], member) end
-- Acknowledged first: a worker that claimed one meanwhile must not leave an
-- entry pending that no longer exists (XAUTOCLAIM would hand out a nil).
for _, id in ipairs(cjson.decode(ARGV[4])) do
  redis.call('XACK', STREAM, ARGV[5], id)
  redis.call('XDEL', STREAM, id)
end
redis.call('DEL', ORDER, KEYS[2], READY, HISTORY, MAILS)  -- KEYS[2]: the items hash, ITEMS may be ORDER
redis.call('ZREM', DUE, 'mail:' .. order_id)
if redis.call('GET', SEEN) == order_id then redis.call('DEL', SEEN) end
return 1
