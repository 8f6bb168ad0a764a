-- Creates a console session's hash, only when absent (a token is 256 random
-- bits, but one check costs nothing).
-- KEYS: the session. ARGV: the TTL, then its field/value pairs.
-- Returns 1 created, 0 not.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
