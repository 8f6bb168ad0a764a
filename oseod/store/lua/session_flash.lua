-- Appends one flash message to a console session's list, if the session exists.
-- KEYS: the session. ARGV: the message (JSON). Returns 1 kept, 0 gone.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local kept = redis.call('HGET', KEYS[1], 'flash')
local list = kept and cjson.decode(kept) or {}
table.insert(list, cjson.decode(ARGV[1]))
redis.call('HSET', KEYS[1], 'flash', cjson.encode(list))
return 1
