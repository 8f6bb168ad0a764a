-- KEYS: a Submit's MessageID key. ARGV: the order it named, now gone.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
