-- KEYS: as _order_keys, then the order's logs (downloads, outbox queues),
-- then the leader's epoch. ARGV: member, the statuses it must be in
-- ('|A|B|'), how many logs, the leader's token ('' unfenced: FENCE_HOOK).
-- Removes the order, its items, its history and logs, every index entry of
-- it, and its items from the counters. Returns 1 done, 0 refused (not in
-- those statuses), -1 no such order.
-- include: order_prelude
-- include: fence_hook
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
redis.call('DEL', ORDER, KEYS[2], READY, HISTORY)  -- KEYS[2]: the items hash, ITEMS may be ORDER
return 1
