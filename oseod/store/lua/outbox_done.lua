-- A message delivered.
-- KEYS: queue, due set, counters, the queue's log. ARGV: member, seq sent,
-- now, channel, the log entry. Removes the first message if it is still the
-- one sent (a queue taken over after a lease ran out may have been served
-- meanwhile); the queue is due again now when more wait. Returns 1 removed, 0 not.
-- include: outbox_log
local head = redis.call('LINDEX', KEYS[1], 0)
local removed = 0
if head and tostring(cjson.decode(head)['seq']) == ARGV[2] then
  redis.call('LPOP', KEYS[1])
  redis.call('HINCRBY', KEYS[3], ARGV[4] .. ':sent', 1)
  log(KEYS[4], ARGV[5])
  removed = 1
end
-- include: outbox_next_or_done
return removed
