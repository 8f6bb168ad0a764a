-- Revokes one bearer token.
-- KEYS[1]: the token's hash; KEYS[2]: everybody's token set.
-- ARGV[1]: what every user's token set's name starts with; ARGV[2]: the token's id.
-- Returns the token's owner, or false when there was no such token.
redis.call('ZREM', KEYS[2], ARGV[2])
local owner = redis.call('HGET', KEYS[1], 'user')
if not owner then return false end
redis.call('DEL', KEYS[1])
redis.call('ZREM', ARGV[1] .. owner, ARGV[2])
return owner
