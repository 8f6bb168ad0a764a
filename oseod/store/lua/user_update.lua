-- Changes a user's fields, if the user exists.
-- KEYS: the user's hash. ARGV: the number n of fields to delete, those n
-- field names, then field/value pairs to set. Returns 1 changed, 0 no such user.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local n = tonumber(ARGV[1])
if n > 0 then redis.call('HDEL', KEYS[1], unpack(ARGV, 2, n + 1)) end
if #ARGV > n + 1 then redis.call('HSET', KEYS[1], unpack(ARGV, n + 2)) end
return 1
