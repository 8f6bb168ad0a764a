-- Stores a new bearer token, only when its id is free (ids are 64 bits of a
-- SHA-256: one check costs nothing), and keeps its owner within the cap: the
-- owner's expired tokens are dropped, then its oldest while it holds too many.
-- KEYS[1]: the token's hash; KEYS[2]: its owner's token set; KEYS[3]: everybody's.
-- ARGV[1]: now (POSIX seconds, by the daemon's clock); ARGV[2]: when the token
-- expires (its score in both sets); ARGV[3]: the hash's TTL (whole seconds);
-- ARGV[4]: the most tokens the owner may hold, this one included; ARGV[5]: the
-- token's id; ARGV[6]: what every token hash's name starts with (the revoked
-- tokens' names are built from it); ARGV[7...]: the hash's field/value pairs.
-- Returns {0} when the id is taken, else {1, ids of the tokens revoked for the cap...}.
if redis.call('EXISTS', KEYS[1]) == 1 then return {0} end
local now, limit, id, prefix = ARGV[1], tonumber(ARGV[4]), ARGV[5], ARGV[6]
for _, old in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do
  redis.call('DEL', prefix .. old)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local out = {1}
local extra = redis.call('ZCARD', KEYS[2]) - limit + 1
if extra > 0 then
  for _, old in ipairs(redis.call('ZRANGE', KEYS[2], 0, extra - 1)) do
    redis.call('DEL', prefix .. old)
    redis.call('ZREM', KEYS[3], old)
    out[#out + 1] = old
  end
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, extra - 1)
end
redis.call('HSET', KEYS[1], unpack(ARGV, 7))
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], id)
redis.call('ZADD', KEYS[3], ARGV[2], id)
-- The owner's set lives as long as its newest token.
if redis.call('TTL', KEYS[2]) < tonumber(ARGV[3]) then redis.call('EXPIRE', KEYS[2], ARGV[3]) end
return out
