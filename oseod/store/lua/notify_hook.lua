-- A fragment, included by the script that changes an order's status
-- (order_set_status.lua), for WS-Notification (oseod.store.wsn): no KEYS or
-- ARGV of its own; the caller passes its KEYS[SUBS] (the owner's
-- subscription set), KEYS[SEQS] (the outbox's sequence hash) and DUE (its due
-- set) to notify_subscribers; queue_prefix (an ARGV) + a subscription id
-- names that subscription's outbox queue.
local function notify_subscribers(subs, seqs, due, queue_prefix, order_id, status, info, at)
  redis.call('ZREMRANGEBYSCORE', subs, '-inf', at)  -- ended: their hashes expire on their own
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', subs, '(' .. at, '+inf')) do
    local seq = redis.call('HINCRBY', seqs, 'wsn:' .. id, 1)
    redis.call('RPUSH', queue_prefix .. id, cjson.encode({seq = seq, order = order_id, status = status, info = info}))
    redis.call('ZADD', due, 'NX', at, 'wsn:' .. id)
  end
end
