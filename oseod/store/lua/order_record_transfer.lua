-- KEYS: order hash, its downloads log, the hour and minute buckets. ARGV:
-- the log entry (JSON), '1' when the transfer was complete. Logs the
-- transfer, and counts a complete one. Returns 0 when there is no such order.
-- include: bucket_hook
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('LTRIM', KEYS[2], -${DOWNLOADS_KEPT}, -1)
if ARGV[2] == '1' then count_event(KEYS[3], KEYS[4], '${DOWNLOADS}', 1) end
return 1
