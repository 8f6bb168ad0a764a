-- A fragment, included by the outbox scripts that end an attempt: no KEYS or
-- ARGV of its own. log(key, entry) appends an entry to a queue's log (the
-- caller's KEYS[LOG_KEY], oseod.store.keys.outbox_log), keeping the last
-- ${LOG_KEPT}, for ${LOG_SECONDS} seconds after the last.
local function log(key, entry)
  redis.call('RPUSH', key, entry)
  redis.call('LTRIM', key, -${LOG_KEPT}, -1)
  redis.call('EXPIRE', key, ${LOG_SECONDS})
end
