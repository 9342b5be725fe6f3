-- Cuts the link between two identifiers of one profile and recomputes the
-- profile from the evidence that remains, atomically.
-- ARGV: 1 prefix, 2 identifier a, 3 identifier b ("type:value"), 4 time (ms),
--       5 reason, then fresh profile ids for the pieces that split off.
-- Returns JSON: {profile, split: [{profile, ids}], kept: [ids], status}
-- status: "split", "still_linked" (other evidence still joins them: the
-- edges between them are cut, cut more), or "not_linked".
local P, a, b, ts = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local function pkey(pid, suffix) return P .. "p:" .. pid .. suffix end
local pid = redis.call("GET", P .. "id:" .. a)
if not pid or redis.call("GET", P .. "id:" .. b) ~= pid then
  return cjson.encode({status = "not_linked", profile = pid or ""})
end

-- Never link these two again, directly or through a merge.
redis.call("SADD", P .. "deny:" .. a, b)
redis.call("SADD", P .. "deny:" .. b, a)
local ekey = pkey(pid, ":e")
redis.call("HDEL", ekey, a .. "|" .. b, b .. "|" .. a)

-- The remaining evidence as a graph over the profile's identifiers.
local ids = redis.call("SMEMBERS", pkey(pid, ":ids"))
local adj = {}
for _, i in ipairs(ids) do adj[i] = {} end
local edges = redis.call("HKEYS", ekey)
for _, e in ipairs(edges) do
  local x, y = string.match(e, "^(.-)|(.*)$")
  if adj[x] and adj[y] then
    table.insert(adj[x], y)
    table.insert(adj[y], x)
  end
end
local comp = {}
local function walk(start, c)
  local stack = {start}
  comp[start] = c
  while #stack > 0 do
    local x = table.remove(stack)
    for _, y in ipairs(adj[x]) do
      if not comp[y] then comp[y] = c; table.insert(stack, y) end
    end
  end
end
walk(a, 1)
if comp[b] == 1 then
  return cjson.encode({status = "still_linked", profile = pid})
end
-- Component 1 (a's) keeps the profile id; b's side and every other piece
-- get new ones. Identifiers no evidence ties to anything stay with a's side.
local pieces = {}
local nextFresh = 6
table.sort(ids)
walk(b, 2)
pieces[1] = {profile = ARGV[nextFresh], ids = {}}
nextFresh = nextFresh + 1
for _, i in ipairs(ids) do
  if not comp[i] and #adj[i] > 0 then
    local c = #pieces + 2
    walk(i, c)
    pieces[#pieces + 1] = {profile = ARGV[nextFresh], ids = {}}
    nextFresh = nextFresh + 1
  end
end
local kept = {}
for _, i in ipairs(ids) do
  local c = comp[i] or 1
  if c == 1 then kept[#kept + 1] = i else table.insert(pieces[c - 1].ids, i) end
end

-- Rebuild a profile's traits, counters and first/last seen from its
-- identifiers' contributions (see resolve.lua's anchor).
local function rebuild(p, members)
  redis.call("DEL", pkey(p, ":t"), pkey(p, ":tt"), pkey(p, ":c"))
  local first, last = nil, nil
  for _, i in ipairs(members) do
    local h = redis.call("HGETALL", P .. "i:" .. i)
    local f = {}
    for j = 1, #h, 2 do f[h[j]] = h[j + 1] end
    for k, v in pairs(f) do
      local trait = string.match(k, "^t:(.*)$")
      local counter = string.match(k, "^c:(.*)$")
      if trait then
        local tts = tonumber(f["tt:" .. trait] or "0")
        if tts >= tonumber(redis.call("HGET", pkey(p, ":tt"), trait) or "-1") then
          redis.call("HSET", pkey(p, ":t"), trait, v)
          redis.call("HSET", pkey(p, ":tt"), trait, tts)
        end
      elseif counter then
        redis.call("HINCRBY", pkey(p, ":c"), counter, tonumber(v))
      end
    end
    local fi, la = tonumber(f["first"] or ""), tonumber(f["last"] or "")
    if fi and (not first or fi < first) then first = fi end
    if la and (not last or la > last) then last = la end
  end
  local h = pkey(p, "")
  if first then redis.call("HSET", h, "first", first) end
  if last then redis.call("HSET", h, "last", last) end
  redis.call("HINCRBY", h, "ver", 1)
end

for _, piece in ipairs(pieces) do
  local np = piece.profile
  redis.call("HSET", pkey(np, ""), "first", ts, "last", ts, "ver", 0, "split_from", pid, "split_by", ARGV[5], "split_at", ts)
  redis.call("SADD", P .. "profiles", np)
  for _, i in ipairs(piece.ids) do
    redis.call("SET", P .. "id:" .. i, np)
    redis.call("SREM", pkey(pid, ":ids"), i)
    redis.call("SADD", pkey(np, ":ids"), i)
  end
  -- Evidence moves with its identifiers.
  for _, e in ipairs(edges) do
    local x, y = string.match(e, "^(.-)|(.*)$")
    if comp[x] and comp[x] == comp[y] and comp[x] ~= 1 and pieces[comp[x] - 1] == piece then
      local v = redis.call("HGET", ekey, e)
      if v then
        redis.call("HSET", pkey(np, ":e"), e, v)
        redis.call("HDEL", ekey, e)
      end
    end
  end
  rebuild(np, piece.ids)
end
rebuild(pid, kept)
return cjson.encode({status = "split", profile = pid, split = pieces, kept = kept})
