-- The failed-login state of one or two subjects (a user name, a client address).
-- KEYS: their failure hashes (oseod.store.keys.login_failures).
-- ARGV: none.
-- Returns, per subject: {n, start, until}, "" for a field not set
-- (n: failures in the window; start: the window's first failure; until: the
-- end of the lock-out, once the limit was reached; times in POSIX seconds).
local out = {}
for _, key in ipairs(KEYS) do
  local f = redis.call('HMGET', key, 'n', 'start', 'until')
  table.insert(out, {f[1] or '', f[2] or '', f[3] or ''})
end
return out
