-- KEYS: as _order_keys, then the job stream. ARGV: member, time, a marker
-- field of the order ('' none: else the call does nothing when the order
-- has it already), the new items as a JSON array of [item id, ItemSpec data,
-- stored status (layout._packed_status)], their batch, the job's field/value pairs as a JSON array.
-- Returns 1 added, 0 not (the order is final, or has the marker), -1 no such
-- order. Items added so are kept as x/ITEM fields: the spec is never rewritten.
-- include: order_prelude
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
  local status = status_of(item[3])
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
