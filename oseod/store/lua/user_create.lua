-- Creates a user, unless the name is taken.
-- KEYS: the user's hash, the set of user names. ARGV: the name, then the
-- hash's field/value pairs. Returns 1 created, 0 taken.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('SADD', KEYS[2], ARGV[1])
return 1
