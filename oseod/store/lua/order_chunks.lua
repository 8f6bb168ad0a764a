-- Shared by the scripts that write values longer than the listpack limit
-- (see layout.CHUNK_BYTES) into an order hash: such a value is kept as
-- chunks PREFIX0, PREFIX1, ... of at most ${CHUNK_BYTES} bytes each, never cut
-- inside a UTF-8 character (each chunk is text of its own), so that the hash
-- stays a listpack. A value always has a chunk 0, even an empty one. A value
-- longer than ${CHUNKS_MAX} chunks is kept whole in chunk 0: its hash would
-- pass the listpack's count of fields anyway, and a megabyte in 64-byte
-- chunks would be read back as thousands of replies.
-- Uses no KEYS or ARGV of its own: the helpers are given the hash's key.

-- Write `text` as the chunks of `prefix`, removing those a longer value left.
local function write_chunks(key, prefix, text)
  local n, start = 0, 1
  if #text > ${CHUNK_BYTES} * ${CHUNKS_MAX} then
    redis.call('HSET', key, prefix .. 0, text)
    n, start = 1, #text + 1
  else repeat
    local stop = math.min(#text, start + ${CHUNK_BYTES} - 1)
    while stop < #text and stop > start do
      local byte = string.byte(text, stop + 1)
      if byte < 128 or byte >= 192 then break end  -- not a continuation byte: a character starts after `stop`
      stop = stop - 1
    end
    redis.call('HSET', key, prefix .. n, string.sub(text, start, stop))
    n, start = n + 1, stop + 1
  until start > #text end
  while redis.call('HDEL', key, prefix .. n) == 1 do n = n + 1 end
end

-- The value kept as the chunks of `prefix` ('' when there are none).
local function read_chunks(key, prefix)
  local parts = {}
  while true do
    local part = redis.call('HGET', key, prefix .. #parts)
    if not part then break end
    parts[#parts + 1] = part
  end
  return table.concat(parts)
end
