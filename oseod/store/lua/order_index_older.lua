-- Orders stored before the collection and type indexes and the
-- items-per-status counters (layout 1) are added to them here, a range of
-- order ids per call, in id order: the cursor survives restarts and a change
-- of leader, and ids never move (whereas an order's place in the indexes
-- does). An order already there (it has 'collections') is left alone.
-- KEYS: the items-per-status counters, the layout version, the cursor (the
-- next order id), everybody's orders by last update, the order id sequence.
-- ARGV: the key prefixes of an order hash, a type index and a collection
-- index, how many ids to look at, the version this makes, the statuses (JSON
-- array), the leader's token ('' unfenced: FENCE_HOOK; KEYS[6] the epoch).
-- Returns {1 when every order is indexed, orders indexed now}.
-- include: fence_hook
if fenced(KEYS[6], ARGV[7]) then return redis.error_reply(DEPOSED) end
if redis.call('GET', KEYS[2]) == ARGV[5] then return {1, 0} end
local last = tonumber(redis.call('GET', KEYS[5]) or '0')
local first = tonumber(redis.call('GET', KEYS[3]) or '1')
local stop = math.min(last, first + tonumber(ARGV[4]) - 1)
local statuses = cjson.decode(ARGV[6])
local done = 0
for n = first, stop do
  local order_id = string.format('%d', n)
  local order = ARGV[1] .. order_id
  if redis.call('HEXISTS', order, 'collections') == 0 and redis.call('EXISTS', order) == 1 then
    local member = string.rep('0', ${MEMBER_WIDTH} - #order_id) .. order_id
    -- An order changed since this version (out of that index: order_prelude's reindex) has its time in the hash.
    local score = redis.call('ZSCORE', KEYS[4], member) or redis.call('HGET', order, 'updated_at')
    local seen, names = {}, {}
    -- The spec: 'spec' as layout 2 wrote it, else its chunks p/0, p/1, ...
    local spec = redis.call('HGET', order, 'spec')
    if not spec then
      local chunks = {}
      while true do
        local chunk = redis.call('HGET', order, 'p/' .. #chunks)
        if not chunk then break end
        chunks[#chunks + 1] = chunk
      end
      spec = table.concat(chunks)
    end
    for _, item in ipairs(cjson.decode(spec)['items'] or {}) do
      local c = item['collection_id']
      if c and not seen[c] then seen[c] = true names[#names + 1] = c end
    end
    table.sort(names)
    if score then
      redis.call('ZADD', ARGV[2] .. (redis.call('HGET', order, 'order_type') or 'PRODUCT_ORDER'), score, member)
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
