-- A fragment, included by the scripts that count an event for the
-- operators' overview (oseod.store.stats): no KEYS or ARGV of its own.
-- count_event(hour key, minute key, field, n) counts n in both buckets of
-- the moment (the caller's KEYS[H] and KEYS[M]; bucket_keys() names them),
-- each kept ${HOUR_TTL} or ${MINUTE_TTL} seconds after its last count.
local function count_event(hour_key, minute_key, field, n)
  redis.call('HINCRBY', hour_key, field, n)
  redis.call('EXPIRE', hour_key, ${HOUR_TTL})
  redis.call('HINCRBY', minute_key, field, n)
  redis.call('EXPIRE', minute_key, ${MINUTE_TTL})
end
