-- KEYS: order hash, items hash (only checked not to exist: see
-- order_prelude.lua), owner's active-item counter, the job stream,
-- the items-per-status counters, the order's history, then the indexes the
-- new order goes into. ARGV: member, time, number of new
-- unfinished items, the limit of unfinished items per owner ('' none), the
-- order-hash field/value pairs and the items-hash ones, each a JSON array (a
-- few arguments instead of hundreds: each one costs the client to encode),
-- then the jobs to queue ('' none, else a JSON array of field/value arrays),
-- then how many of the KEYS before the last two are subscription indexes, the
-- subscription's end time (their score), the spec JSON, and, when e-mail is
-- on, the order id and its StatusInfo JSON (else ''): the new order is then
-- queued for the e-mail channel, whose last two KEYS are its queue and the
-- outbox's due set; then the first history entry (JSON) and the items per
-- status (a JSON object); then, for a Submit that named itself with a
-- wsa:MessageID, how long (seconds) to remember which order it made ('' not
-- named), the order id, and the notification JSON ('' the default: not
-- written). The last KEY is where
-- the MessageID is remembered.
-- Returns {1, '', the ids of the jobs queued...}; over the limit, {0, items
-- unfinished now}; {2, ''} when the id is taken (the caller draws another);
-- {3, order id} when the MessageID made that order already.
-- include: order_chunks
local ORDER, ITEMS, ACTIVE = KEYS[1], KEYS[2], KEYS[3]
local SEEN, TAIL = KEYS[#KEYS], #KEYS - 1  -- TAIL: the last key before SEEN
local member, at, added, limit = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
if ARGV[15] ~= '' then
  local first = redis.call('GET', SEEN)
  if first then return {3, first} end
end
if redis.call('EXISTS', ORDER, ITEMS) ~= 0 then return {2, ''} end
if limit ~= '' and added > 0 then
  local active = tonumber(redis.call('GET', ACTIVE) or '0')
  if active + added > tonumber(limit) then return {0, tostring(active)} end
end
-- HSET in slices: unpack() overflows Lua's stack on big orders.
local function hset_all(key, pairs)
  for i = 1, #pairs, 1000 do
    redis.call('HSET', key, unpack(pairs, i, math.min(i + 999, #pairs)))
  end
end
hset_all(ORDER, cjson.decode(ARGV[5]))
-- The spec and the notification in chunks p/0, p/1, ... and nt/0, ...: the
-- hash stays a listpack (see layout.CHUNK_BYTES).
write_chunks(ORDER, 'p/', ARGV[10])
if ARGV[17] ~= '' then write_chunks(ORDER, 'nt/', ARGV[17]) end
local items = cjson.decode(ARGV[6])
if #items > 0 then hset_all(ORDER, items) end  -- layout 3: see order_prelude.lua
if added > 0 then redis.call('INCRBY', ACTIVE, added) end
redis.call('HSET', ORDER, 'updated_at', at, 'version', '1')
local answer = {1, ''}
if ARGV[7] ~= '' then
  for _, job in ipairs(cjson.decode(ARGV[7])) do table.insert(answer, redis.call('XADD', KEYS[4], '*', unpack(job))) end
end
local last = TAIL - 2  -- then the mail queue and the outbox's due set
local subscribed = tonumber(ARGV[8])
for i = 7, last - subscribed do redis.call('ZADD', KEYS[i], at, member) end
-- The first line of the history (as order_prelude's remember() keeps it; KEYS[6] is not made).
local first = cjson.decode(ARGV[13])
redis.call('HSET', ORDER, 'h', 1, 'h/1', first[1])
if first[2] ~= '' then redis.call('HSET', ORDER, 'i/1', first[2]) end
for status, n in pairs(cjson.decode(ARGV[14])) do redis.call('HINCRBY', KEYS[5], status, n) end
for i = last - subscribed + 1, last do redis.call('ZADD', KEYS[i], ARGV[9], member) end
if ARGV[11] ~= '' then
  local status = cjson.decode(ARGV[12])
  redis.call('RPUSH', KEYS[TAIL - 1], cjson.encode({seq = redis.call('HINCRBY', ORDER, 'mail_seq', 1), old = '',
                                                    status = status['status'], info = ARGV[12]}))
  redis.call('ZADD', KEYS[TAIL], 'NX', at, 'mail:' .. ARGV[11])
end
if ARGV[15] ~= '' then redis.call('SET', SEEN, ARGV[16], 'EX', ARGV[15]) end
return answer
