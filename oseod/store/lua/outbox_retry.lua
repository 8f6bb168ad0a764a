-- A failed attempt.
-- KEYS: queue, due set, counters, the queue's log. ARGV: member, seq, when
-- due again, channel, error, the log entry. Counts a failed attempt on the
-- first message (if still it) and schedules the queue. Returns the attempts
-- made so far.
-- include: outbox_log
local head = redis.call('LINDEX', KEYS[1], 0)
if not head then redis.call('ZREM', KEYS[2], ARGV[1]) return 0 end
local message = cjson.decode(head)
if tostring(message['seq']) ~= ARGV[2] then redis.call('ZADD', KEYS[2], 0, ARGV[1]) return 0 end
message['attempts'] = (message['attempts'] or 0) + 1
message['error'] = ARGV[5]
redis.call('LSET', KEYS[1], 0, cjson.encode(message))
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('HINCRBY', KEYS[3], ARGV[4] .. ':retried', 1)
log(KEYS[4], ARGV[6])
return message['attempts']
