-- The overview's time buckets, read in one round trip.
-- KEYS: hashes. ARGV: fields.
-- Returns, per key, HMGET of the fields.
local out = {}
for i, k in ipairs(KEYS) do out[i] = redis.call('HMGET', k, unpack(ARGV)) end
return out
