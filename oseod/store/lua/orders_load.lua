-- KEYS: (order hash, items hash) per order. ARGV: per order, the version the
-- caller already holds ('' none). One consistent snapshot; per order:
-- {} no such order; {version} unchanged; else {version, the order hash as
-- field/value pairs (without its history lines, h/N and i/N, read by
-- OrderRecords.history; nor its spec, 'spec' or its chunks 'p/N', when the
-- caller holds the order: written once, never changed), the items hash as
-- field/value pairs, empty when the order hash holds them (layout 3)}.
local out = {}
for i = 1, #KEYS, 2 do
  local known = ARGV[(i + 1) / 2]
  local version = redis.call('HGET', KEYS[i], 'version')
  if not version then
    out[#out + 1] = {}
  elseif version == known then
    out[#out + 1] = {version}
  else
    local fields, kept = redis.call('HGETALL', KEYS[i]), {}
    for j = 1, #fields, 2 do
      local name = fields[j]
      local prefix = string.sub(name, 1, 2)
      if prefix ~= 'h/' and prefix ~= 'i/' and (known == '' or (prefix ~= 'p/' and name ~= 'spec')) then
        kept[#kept + 1] = name
        kept[#kept + 1] = fields[j + 1]
      end
    end
    fields = kept
    -- The items' fields: in their own hash (layout 2), else in the order's (layout 3; sent once).
    local items = {}
    if redis.call('HEXISTS', KEYS[i], 'p/0') == 0 then items = redis.call('HGETALL', KEYS[i + 1]) end
    out[#out + 1] = {version, fields, items}
  end
end
return out
