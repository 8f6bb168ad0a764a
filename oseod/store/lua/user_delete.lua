-- Deletes a user (and their SSH keys).
-- KEYS: the user's hash, the set of user names, the user's SSH keys.
-- ARGV: the name. Returns 1 deleted, 0 no such user.
local n = redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
if n == 1 and KEYS[3] then redis.call('DEL', KEYS[3]) end
return n
