-- Appends a message to an outbox queue, numbered.
-- KEYS: queue, due set, the hash numbering such queues' messages.
-- ARGV: member, now, the message JSON without its seq, the queue's field in
-- that hash. Makes the queue due (unless it already is). Returns the seq.
local seq = redis.call('HINCRBY', KEYS[3], ARGV[4], 1)
local message = cjson.decode(ARGV[3])
message['seq'] = seq
redis.call('RPUSH', KEYS[1], cjson.encode(message))
redis.call('ZADD', KEYS[2], 'NX', ARGV[2], ARGV[1])
return seq
