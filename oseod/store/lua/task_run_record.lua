-- Records the last run of a periodic task, unless a newer leader took the
-- lock since the caller did (fence_hook).
-- KEYS: the task runs hash, the epoch. ARGV: task name, record JSON, token.
-- include: fence_hook
if fenced(KEYS[2], ARGV[3]) then return redis.error_reply(DEPOSED) end
return redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
