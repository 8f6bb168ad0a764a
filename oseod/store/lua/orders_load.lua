-- KEYS: (order hash, items hash) per order. ARGV: per order, the version the
-- caller already holds ('' none). One consistent snapshot; per order:
-- {} no such order; {version} unchanged; else {version, owner, status_info,
-- created_at, notification, spec (false when the caller holds the order:
-- written once, never changed), the items hash as field/value pairs}.
local out = {}
for i = 1, #KEYS, 2 do
  local known = ARGV[(i + 1) / 2]
  local version = redis.call('HGET', KEYS[i], 'version')
  if not version then
    out[#out + 1] = {}
  elseif version == known then
    out[#out + 1] = {version}
  else
    local wanted = {'owner', 'status_info', 'created_at', 'notification'}
    if known == '' then wanted[#wanted + 1] = 'spec' end
    local fields = redis.call('HMGET', KEYS[i], unpack(wanted))
    if known ~= '' then fields[5] = false end
    out[#out + 1] = {version, fields[1], fields[2], fields[3], fields[4], fields[5],
                     redis.call('HGETALL', KEYS[i + 1])}
  end
end
return out
