-- record.lua: store consent decisions for one identifier, newest wins.
-- KEYS[1] fp:{ws}:consent:<type>:<value>
-- ARGV[1] the decision's time (ms); ARGV[2] the bound (below); then pairs: category, JSON {granted, at, source}
-- A category already holding a decision newer than ARGV[1] keeps it; one at
-- the same instant is replaced (the later request wins a tie). Returns the
-- categories written. ARGV[2] bounds the categories one identifier may hold:
-- an update that would add categories beyond it writes nothing and fails
-- with TOOMANY.
local at = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
local fresh = 0
for i = 3, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 0 then fresh = fresh + 1 end
end
if fresh > 0 and redis.call('HLEN', KEYS[1]) + fresh > max then
  return redis.error_reply('TOOMANY the identifier would hold more than ' .. max .. ' consent categories')
end
local written = {}
for i = 3, #ARGV, 2 do
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  local keep = false
  if cur then
    local ok, d = pcall(cjson.decode, cur)
    if ok and type(d) == 'table' and tonumber(d.at) and tonumber(d.at) > at then
      keep = true
    end
  end
  if not keep then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    written[#written + 1] = ARGV[i]
  end
end
return written
