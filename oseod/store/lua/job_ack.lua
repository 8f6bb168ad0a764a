-- A job done: acknowledged and removed, and the next one queued, in one step.
-- KEYS: the stream, the stream of the job that follows. ARGV: group, entry
-- id, then the next job's field/value pairs (none: no next job).
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
if #ARGV > 2 then redis.call('XADD', KEYS[2], '*', unpack(ARGV, 3)) end
return 1
