-- Notes a console session's activity, if the session still exists.
-- KEYS: the session. ARGV: the new last-activity time, the TTL.
-- Returns 1 touched, 0 gone.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'seen', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
