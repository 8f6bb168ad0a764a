-- Counts one failed login of each subject (a user name, a client address).
-- KEYS: their failure hashes (oseod.store.keys.login_failures).
-- ARGV[1]: now (POSIX seconds, by the daemon's clock); ARGV[2]: the window and
-- the lock-out's length (seconds); ARGV[3]: whole seconds a hash is kept after
-- its last change (Redis sweeps it then); ARGV[3 + i]: the limit of KEYS[i].
-- The window starts with a subject's first failure; the failure that reaches
-- the limit within it locks the subject out for one window from then. A
-- failure while locked out is not counted (the lock-out ends when it said).
-- Returns, per subject: {n, until or "", 1 when this failure locked it out, else 0}.
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local out = {}
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[3 + i])
  local f = redis.call('HMGET', key, 'n', 'start', 'until')
  local n, start, locked = tonumber(f[1]) or 0, tonumber(f[2]), tonumber(f[3])
  local newly = 0
  if not (locked and now < locked) then
    if locked or not start or now >= start + window then
      n, start, locked = 0, now, nil
      redis.call('DEL', key)
    end
    n = n + 1
    redis.call('HSET', key, 'n', n, 'start', string.format('%.3f', start))
    if n >= limit then
      locked = now + window
      redis.call('HSET', key, 'until', string.format('%.3f', locked))
      newly = 1
    end
    redis.call('EXPIRE', key, ARGV[3])
  end
  table.insert(out, {tostring(n), locked and string.format('%.3f', locked) or '', newly})
end
return out
