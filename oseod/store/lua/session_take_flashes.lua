-- Reads and forgets a console session's flash messages.
-- KEYS: the session. ARGV: none. Returns their JSON list, nil when none.
local kept = redis.call('HGET', KEYS[1], 'flash')
if kept then redis.call('HDEL', KEYS[1], 'flash') end
return kept
