-- Claims the queues now due.
-- KEYS: due set. ARGV: now, lease end, how many, the prefix of the queues'
-- names. Returns, per queue now due, its CHANNEL:NAME member and its first
-- message (false when it is empty), its score moved to the lease end (claimed).
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, member in ipairs(due) do
  redis.call('ZADD', KEYS[1], ARGV[2], member)
  out[#out + 1] = member
  out[#out + 1] = redis.call('LINDEX', ARGV[4] .. member, 0)
end
return out
