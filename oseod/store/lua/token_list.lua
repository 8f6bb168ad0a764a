-- The unexpired bearer tokens of one set, soonest to expire first.
-- KEYS[1]: a user's token set, or everybody's.
-- ARGV[1]: now (POSIX seconds, by the daemon's clock); ARGV[2]: the most to
-- answer; ARGV[3]: what every token hash's name starts with.
-- Returns {id, {field, value, ...}} per token whose hash is still there.
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'LIMIT', 0, tonumber(ARGV[2]))) do
  local fields = redis.call('HGETALL', ARGV[3] .. id)
  if #fields > 0 then out[#out + 1] = {id, fields} end
end
return out
