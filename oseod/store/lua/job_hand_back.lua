-- Hands one claimed job back to the queue: a daemon that stops puts the job
-- it was making at the end of its stream, where any daemon claims it at its
-- next poll, instead of leaving it pending until its lease runs out.
-- KEYS: the stream. ARGV: group, entry id, consumer, then the job's
-- field/value pairs. Only if the entry is still pending for that consumer
-- (another daemon may have taken it over meanwhile): 1 when handed back.
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1, ARGV[3])
if #pending == 0 then return 0 end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('XADD', KEYS[1], '*', unpack(ARGV, 4))
return 1
