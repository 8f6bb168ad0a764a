-- Puts a taken quotation back, unless the id is in use again.
-- KEYS: the quotation. ARGV: owner, JSON, TTL (ms). Returns 1 put back, 0 not.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'data', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
