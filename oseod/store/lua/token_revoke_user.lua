-- Revokes every bearer token of one user.
-- KEYS[1]: the user's token set; KEYS[2]: everybody's.
-- ARGV[1]: now (POSIX seconds, by the daemon's clock); ARGV[2]: what every
-- token hash's name starts with.
-- Returns how many unexpired tokens were revoked.
local n = 0
-- (ids and their expiry alternate)
local all = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #all, 2 do
  redis.call('DEL', ARGV[2] .. all[i])
  redis.call('ZREM', KEYS[2], all[i])
  if tonumber(all[i + 1]) > tonumber(ARGV[1]) then n = n + 1 end
end
redis.call('DEL', KEYS[1])
return n
