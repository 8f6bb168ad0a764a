-- A good login: forget the user name's failures, unless the user name or the
-- address has been locked out meanwhile (then nothing changes).
-- KEYS[1]: the user name's failure hash; KEYS[2] (optional): the address's.
-- ARGV[1]: now (POSIX seconds, by the daemon's clock).
-- Returns {i, until} for the first of KEYS locked out at ARGV[1], else {0, ""}.
local now = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local locked = tonumber(redis.call('HGET', key, 'until'))
  if locked and now < locked then return {i, string.format('%.3f', locked)} end
end
redis.call('DEL', KEYS[1])
return {0, ''}
