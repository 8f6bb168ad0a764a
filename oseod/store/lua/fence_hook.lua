-- A fragment, included by the scripts of the periodic tasks (the leader's
-- fencing, oseod.store.leader): no KEYS or ARGV of its own.
-- fenced(epoch key, token) is true when a newer leader took the lock than
-- the one whose token it is ('' no fence). Such a script returns
-- redis.error_reply(DEPOSED) before writing anything.
local DEPOSED = 'DEPOSED a newer leader took the lock'
local function fenced(epoch_key, token)
  if token == '' then return false end
  local epoch = redis.call('GET', epoch_key)
  return epoch ~= false and tonumber(epoch) > tonumber(token)
end
