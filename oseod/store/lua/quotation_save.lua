-- Stores a quotation and, for a call-back, its GetQuotationResponse in the outbox.
-- KEYS: the quotation; for a call-back also its outbox queue and the due set.
-- ARGV: owner, quotation JSON, TTL (ms); for a call-back also the queue's
-- member, now, the message JSON (numbered 1).
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'data', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if KEYS[2] then
  redis.call('RPUSH', KEYS[2], ARGV[6])
  redis.call('ZADD', KEYS[3], 'NX', ARGV[5], ARGV[4])
end
return 1
