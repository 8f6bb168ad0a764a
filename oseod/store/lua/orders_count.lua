-- KEYS: an owner's status indexes (those counted), then, when ARGV[1] is
-- '1', the index of an order type (everybody's orders of that type).
-- ARGV: '1' with a type ('' without), the budget (the most entries to test).
-- Returns how many orders are in one of the status indexes (each order is in
-- exactly one: their cardinalities add up) and, with a type, also in the
-- type's index: the smaller side is walked and each entry tested with
-- ZSCORE on the other; -1 when that side has more than the budget entries
-- (the caller counts otherwise, or refuses).
local typed = ARGV[1] == '1'
local budget = tonumber(ARGV[2])
local nstatus = #KEYS
if typed then nstatus = nstatus - 1 end
local total = 0
for i = 1, nstatus do total = total + redis.call('ZCARD', KEYS[i]) end
if not typed then return total end
local type_key = KEYS[nstatus + 1]
local ntype = redis.call('ZCARD', type_key)
if math.min(total, ntype) > budget then return -1 end
local counted = 0
local CHUNK = 1000
if ntype <= total then
  for start = 0, ntype - 1, CHUNK do
    local members = redis.call('ZRANGE', type_key, start, start + CHUNK - 1)
    for _, member in ipairs(members) do
      for i = 1, nstatus do
        if redis.call('ZSCORE', KEYS[i], member) then counted = counted + 1 break end
      end
    end
  end
else
  for i = 1, nstatus do
    local n = redis.call('ZCARD', KEYS[i])
    for start = 0, n - 1, CHUNK do
      local members = redis.call('ZRANGE', KEYS[i], start, start + CHUNK - 1)
      for _, member in ipairs(members) do
        if redis.call('ZSCORE', type_key, member) then counted = counted + 1 end
      end
    end
  end
end
return counted
