-- KEYS: the indexes of each criterion, one criterion after another. ARGV: a
-- JSON array of how many keys each criterion has, max score, min score,
-- limit, '1' for oldest first ('' newest), the cursor's score and member ('':
-- from the start; the page begins after it), the budget (the most index
-- entries to examine; 0: no bound).
-- An order matches when it is in one index of each criterion. The criterion
-- with the fewest orders in the time range is read, the others only tested
-- (ZSCORE), so the work is bounded by the smallest side, not by all orders;
-- and by the budget, shared by the keys read (see below), so that an unlucky search
-- (few matches among many candidates) ends. Each key is read until it gives
-- ``limit`` matches, ends, or has used its share. Where a key stopped early,
-- what lies past it is unknown: the page ends there (the frontier) and the
-- next page starts after it.
-- Returns {members in page order, next cursor score, next cursor member
-- ('' both: no more), 1 when the budget cut the page short, the members'
-- scores (each member's own cursor, for a reader that stops within the page)}. Ties in score go
-- by member, the same way as the score.
local sizes = cjson.decode(ARGV[1])
local max, min, limit, asc = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5] == '1'
local cs, cm, budget = ARGV[6], ARGV[7], tonumber(ARGV[8])
local ncs = nil
if cs ~= '' then
  ncs = tonumber(cs)
  if asc then
    if min == '-inf' or ncs > tonumber(min) then min = cs end
  elseif max == '+inf' or ncs < tonumber(max) then
    max = cs
  end
end
local criteria, k = {}, 1
for i, n in ipairs(sizes) do
  local ks = {}
  for j = 1, n do ks[j] = KEYS[k] k = k + 1 end
  criteria[i] = ks
end
-- The entries of each key in the time range, when needed: to choose the
-- criterion read, and to share the budget among the keys it has.
local counts = {}
local function count(key)
  if counts[key] == nil then counts[key] = redis.call('ZCOUNT', key, min, max) end
  return counts[key]
end
local best = 1
if #criteria > 1 then
  local fewest = nil
  for i, ks in ipairs(criteria) do
    local n = 0
    for _, key in ipairs(ks) do n = n + count(key) end
    if fewest == nil or n < fewest then best, fewest = i, n end
    if n == 0 then return {{}, '', '', 0, {}} end
  end
end
local read, tests = {}, {}
for i, key in ipairs(criteria[best]) do read[i] = key end
for i, ks in ipairs(criteria) do
  if i ~= best then
    -- Tested biggest key first (every order: most are in one or two statuses).
    table.sort(ks, function(a, b)
      if count(a) ~= count(b) then return count(a) > count(b) end
      return a < b
    end)
    tests[#tests + 1] = ks
  end
end
local function matches(member)
  for _, ks in ipairs(tests) do
    local found = false
    for _, key in ipairs(ks) do
      if redis.call('ZSCORE', key, member) then found = true break end
    end
    if not found then return false end
  end
  return true
end
-- Whether entry a comes before entry b in the page's order.
local function before(a, b)
  if a[1] ~= b[1] then
    if asc then return a[1] < b[1] else return a[1] > b[1] end
  end
  if asc then return a[2] < b[2] else return a[2] > b[2] end
end
local cursor = nil
if ncs then cursor = {ncs, cm} end
-- With a budget and several keys to read (every order: all its status
-- indexes), the smallest first, each given an even share of what the keys
-- before left: empty and small keys leave theirs to the big ones.
if budget > 0 and #read > 1 then
  table.sort(read, function(a, b)
    if count(a) ~= count(b) then return count(a) < count(b) end
    return a < b
  end)
end
local left = budget
local page = limit
if #tests > 0 then page = math.max(limit, 256) end
local found, frontier, cut = {}, nil, false
for r, key in ipairs(read) do
  local share = 0
  if budget > 0 then share = math.max(1, math.floor(left / (#read - r + 1))) end
  local offset, taken, examined, last, done = 0, 0, 0, nil, false
  while taken < limit do
    local want = page
    if share > 0 then want = math.min(page, share - examined) end
    if want <= 0 then cut = true break end
    local rows
    if asc then rows = redis.call('ZRANGEBYSCORE', key, min, max, 'WITHSCORES', 'LIMIT', offset, want)
    else rows = redis.call('ZREVRANGEBYSCORE', key, max, min, 'WITHSCORES', 'LIMIT', offset, want) end
    for i = 1, #rows, 2 do
      local entry = {tonumber(rows[i + 1]), rows[i], rows[i + 1]}
      last = entry
      -- Entries up to the cursor (ties of its score) are not counted: every
      -- page gets past the cursor, however small the share.
      local past = cursor == nil or before(cursor, entry)
      if past then examined = examined + 1 end
      if past and matches(rows[i]) then
        found[#found + 1] = entry
        taken = taken + 1
        if taken == limit then break end
      end
    end
    if taken < limit and #rows < 2 * want then done = true break end
    offset = offset + want
  end
  left = math.max(0, left - examined)
  if not done and last ~= nil and (frontier == nil or before(last, frontier)) then frontier = last end
end
table.sort(found, before)
local members, scores, n, final = {}, {}, 0, nil
for _, entry in ipairs(found) do
  if frontier ~= nil and before(frontier, entry) then break end
  n = n + 1
  members[n] = entry[2]
  scores[n] = entry[3]
  final = entry
  if n == limit then break end
end
if n == limit and (#found > limit or frontier ~= nil) then return {members, final[3], final[2], 0, scores} end
if n < limit and cut and frontier ~= nil then return {members, frontier[3], frontier[2], 1, scores} end
return {members, '', '', 0, scores}
