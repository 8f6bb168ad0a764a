-- Takes a quotation out of the store.
-- KEYS: the quotation. ARGV: owner. Deletes the owner's quotation and
-- returns {JSON, TTL left in ms}; nil when there is none of the owner's.
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return false end
local data = redis.call('HGET', KEYS[1], 'data')
local left = redis.call('PTTL', KEYS[1])
redis.call('DEL', KEYS[1])
return {data, left}
