-- A job to try again later: it leaves the stream and waits in the delayed
-- set; the next one is queued.
-- KEYS: the stream, the delayed set, the stream of the job that follows.
-- ARGV: group, entry id, due time, the job as JSON, then the next job's
-- field/value pairs (none: no next job).
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
if #ARGV > 4 then redis.call('XADD', KEYS[3], '*', unpack(ARGV, 5)) end
return redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
