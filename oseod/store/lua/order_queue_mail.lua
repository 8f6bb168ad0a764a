-- KEYS: order hash, its e-mail queue, the outbox's due set. ARGV: the order
-- id, the time, the message JSON (without its number). Queues a message for
-- the e-mail channel after those of the order's changes (the same numbering).
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local message = cjson.decode(ARGV[3])
message['seq'] = redis.call('HINCRBY', KEYS[1], 'mail_seq', 1)
redis.call('RPUSH', KEYS[2], cjson.encode(message))
redis.call('ZADD', KEYS[3], 'NX', ARGV[2], 'mail:' .. ARGV[1])
return 1
