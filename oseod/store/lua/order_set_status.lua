-- KEYS: as _order_keys, then the job stream when jobs are queued, then the
-- owner's WS-Notification subscriptions and the outbox's sequence hash
-- (oseod.store.wsn), the order's e-mail and call-back queues and the outbox's
-- due set (oseod.store.outbox).
-- ARGV: member, status, StatusInfo JSON, time, allowed current statuses
-- ('|A|B|', '' any), expected version ('' any), notification JSON ('' keep),
-- jobs to queue with the change ('' none: else a JSON array of field/value
-- arrays), the order id, '1' when e-mail is on (else ''), the name of the
-- WS-Notification queues less the subscription id, the history entry (JSON)
-- and who made the change ('' the service: then a change that keeps the
-- status, such as a new count of items done, is not history), then the
-- status as stored (layout._packed_status; ARGV[3] is what the outbox gets).
-- A change of the order's status that its statusNotification asks to hear
-- of (All: every one; Final: a final one) is queued for the call-back in the
-- same step, so that no crash can lose it (sent to its wsa:ReplyTo, or to
-- the NotificationEndpoint of an order placed over OData); with e-mail on, every change is
-- queued for the e-mail channel too, which decides who hears of it; a final
-- status is queued for each of the owner's live WS-Notification subscriptions.
-- Returns 1 done, 0 refused (status or version), -1 no such order.
-- include: order_prelude
-- include: notify_hook
local SUBS, SEQS, MAILS, CALLBACKS, DUE = KEYS[#KEYS - 4], KEYS[#KEYS - 3], KEYS[#KEYS - 2], KEYS[#KEYS - 1],
                                         KEYS[#KEYS]
INDEX_END = #KEYS - 5
if ARGV[8] ~= '' then INDEX_END = #KEYS - 6 end
local current = redis.call('HGET', ORDER, 'status')
if not current then return -1 end
if not in_set(ARGV[5], current) then return 0 end
if ARGV[6] ~= '' and redis.call('HGET', ORDER, 'version') ~= ARGV[6] then return 0 end
redis.call('HSET', ORDER, 'status', ARGV[2], 'status_info', ARGV[14])
if ARGV[7] ~= '' then
  write_chunks(ORDER, 'nt/', ARGV[7])
  redis.call('HDEL', ORDER, 'notification')  -- as layout 2 kept it
end
if ARGV[8] ~= '' then
  for _, job in ipairs(cjson.decode(ARGV[8])) do redis.call('XADD', KEYS[#KEYS - 5], '*', unpack(job)) end
end
reindex(ARGV[1], current, ARGV[2], touch(ARGV[4]))
if current ~= ARGV[2] or ARGV[13] ~= '' then remember(ARGV[12]) end
if current ~= ARGV[2] then
  local stored = redis.call('HGET', ORDER, 'notification') or read_chunks(ORDER, 'nt/')
  if stored == '' then stored = '{}' end
  local notification = cjson.decode(stored)
  local mode = notification['mode']
  if mode == 'All' or (mode == 'Final' and FINAL[ARGV[2]]) then
    local seq = redis.call('HINCRBY', ORDER, 'callback_seq', 1)
    redis.call('RPUSH', CALLBACKS, cjson.encode({seq = seq, status = ARGV[2], info = ARGV[3],
                                                 to = notification['reply_to'] or notification['endpoint'] or ''}))
    redis.call('ZADD', DUE, 'NX', ARGV[4], 'callback:' .. ARGV[9])
  end
  if ARGV[10] ~= '' then
    redis.call('RPUSH', MAILS, cjson.encode({seq = redis.call('HINCRBY', ORDER, 'mail_seq', 1), old = current,
                                             status = ARGV[2], info = ARGV[3]}))
    redis.call('ZADD', DUE, 'NX', ARGV[4], 'mail:' .. ARGV[9])
  end
  if FINAL[ARGV[2]] then notify_subscribers(SUBS, SEQS, DUE, ARGV[11], ARGV[9], ARGV[2], ARGV[3], ARGV[4]) end
end
return 1
