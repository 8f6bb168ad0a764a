-- Takes or keeps the leader lock (oseod.store.leader).
-- KEYS: the lock, the epoch. ARGV: holder, ttl in ms.
-- Returns {1, token} when the caller held it already, {2, token} when it has
-- just taken it (a new epoch), {0, ''} when another daemon holds it.
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, redis.call('GET', KEYS[2]) or '0'}
end
if not holder and redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {2, tostring(redis.call('INCR', KEYS[2]))}
end
return {0, ''}
