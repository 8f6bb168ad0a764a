-- Gives up on a message.
-- KEYS: queue, due set, counters, failures list, the queue's log, then the
-- hash that records the failure of its subject (none: no such key is
-- passed). ARGV: member, seq, now, channel, failure JSON, kept failures, the
-- log entry. Gives up on the first message (if still it). Returns 1 given
-- up, 0 not.
-- include: outbox_log
local head = redis.call('LINDEX', KEYS[1], 0)
local dropped = 0
if head and tostring(cjson.decode(head)['seq']) == ARGV[2] then
  redis.call('LPOP', KEYS[1])
  redis.call('HINCRBY', KEYS[3], ARGV[4] .. ':failed', 1)
  redis.call('LPUSH', KEYS[4], ARGV[5])
  redis.call('LTRIM', KEYS[4], 0, tonumber(ARGV[6]) - 1)
  log(KEYS[5], ARGV[7])
  if KEYS[6] and redis.call('EXISTS', KEYS[6]) == 1 then
    redis.call('HSET', KEYS[6], ARGV[4] .. '_failure', ARGV[5])
  end
  dropped = 1
end
-- include: outbox_next_or_done
return dropped
