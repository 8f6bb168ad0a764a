-- Due jobs go back to their stream.
-- KEYS: the delayed set, then the streams in PRIORITIES order. ARGV: now, at
-- most how many. Returns how many moved.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, text in ipairs(due) do
  local job = cjson.decode(text)
  local stream = KEYS[3]
  if job.priority == 'FAST_TRACK' then stream = KEYS[2] end
  redis.call('XADD', stream, '*', 'order', job.order, 'items', cjson.encode(job.items), 'attempt', job.attempt,
             'priority', job.priority, 'batch', job.batch or 0)
  redis.call('ZREM', KEYS[1], text)
end
return #due
