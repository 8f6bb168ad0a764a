-- Whether the caller still leads.
-- KEYS: the lock, the epoch. ARGV: holder, token.
-- Returns 1 while the caller holds the lock it took with that token.
if redis.call('GET', KEYS[1]) == ARGV[1] and redis.call('GET', KEYS[2]) == ARGV[2] then return 1 end
return 0
