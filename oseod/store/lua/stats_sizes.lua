-- How many orders are in each status, in one round trip.
-- KEYS: the global status indexes. ARGV: none.
-- Returns their sizes.
local out = {}
for i, k in ipairs(KEYS) do out[i] = redis.call('ZCARD', k) end
return out
