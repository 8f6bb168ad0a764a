-- A fragment, the end of a message (outbox_done, outbox_give_up): with the
-- caller's KEYS[1] the queue, KEYS[2] the due set, ARGV[1] the queue's member
-- and ARGV[3] now, the queue is due again now if more wait, else no more.
if redis.call('LLEN', KEYS[1]) > 0 then redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
else redis.call('ZREM', KEYS[2], ARGV[1]) end
