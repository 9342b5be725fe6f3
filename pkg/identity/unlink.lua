-- Cuts the link between two identifiers of one profile and recomputes the
-- profile from the evidence that remains, atomically.
-- ARGV: 1 prefix, 2 identifier a, 3 identifier b ("type:value"), 4 time (ms),
--       5 reason, 6 operation id, 7 most traits, 8 most counters, then
--       fresh profile ids for the pieces that split off.
-- Returns JSON: {status, profile, version, kept: [ids], split: [{profile,
-- version, ids}], path: [edges]}; status "split", "still_linked" (other
-- evidence still joins them: the edges between them are cut, path is one
-- chain of edges that still does), or "not_linked". The result is kept
-- under the operation id for a day, so a retried call (go-redis resends a
-- script after a network error) answers the same.
local P, a, b, ts, reason, op = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6]
local maxTraits, maxCounters = tonumber(ARGV[7]), tonumber(ARGV[8])
local firstFresh = 9
local marker = P .. "u:" .. op
local done = redis.call("GET", marker)
if done then return done end
local function finish(res)
  local out = cjson.encode(res)
  redis.call("SET", marker, out, "EX", 86400)
  return out
end
local function pkey(pid, suffix) return P .. "p:" .. pid .. suffix end

local pid = redis.call("GET", P .. "id:" .. a)
if not pid or redis.call("GET", P .. "id:" .. b) ~= pid then
  return finish({status = "not_linked", profile = pid or ""})
end

-- Never link these two again, directly or through a merge (until Allow).
redis.call("SADD", P .. "deny:" .. a, b)
redis.call("SADD", P .. "deny:" .. b, a)
local ekey = pkey(pid, ":e")
redis.call("HDEL", ekey, a .. "|" .. b, b .. "|" .. a)

-- The remaining evidence as a graph over the profile's identifiers.
local ids = redis.call("SMEMBERS", pkey(pid, ":ids"))
table.sort(ids)
local adj = {}
for _, i in ipairs(ids) do adj[i] = {} end
local edges = redis.call("HGETALL", ekey)
local ends = {}
for j = 1, #edges, 2 do
  local x, y = string.match(edges[j], "^(.-)|(.*)$")
  if x and adj[x] and adj[y] then
    table.insert(adj[x], y)
    table.insert(adj[y], x)
    ends[edges[j]] = {x, y, edges[j + 1]}
  end
end
local comp, parent = {}, {}
local function walk(start, c)
  local stack = {start}
  comp[start] = c
  while #stack > 0 do
    local x = table.remove(stack)
    for _, y in ipairs(adj[x]) do
      if not comp[y] then
        comp[y] = c
        parent[y] = x
        table.insert(stack, y)
      end
    end
  end
end
walk(a, 1)
if comp[b] == 1 then
  -- One chain of evidence that still joins them, for the operator.
  local path, x = {}, b
  while x ~= a do
    table.insert(path, 1, parent[x] .. "|" .. x)
    x = parent[x]
  end
  return finish({status = "still_linked", profile = pid, path = path})
end

-- Component 1 (a's) keeps the profile id; b's side and every other piece
-- get new ones. Identifiers no evidence ties to anything stay with a's side.
local pieces = {}
local function fresh()
  local n = firstFresh + #pieces
  return ARGV[n] or ("p_" .. string.sub(redis.sha1hex(op .. "/" .. n), 1, 32))
end
walk(b, 2)
pieces[1] = {profile = fresh(), ids = {}}
for _, i in ipairs(ids) do
  if not comp[i] and #adj[i] > 0 then
    walk(i, #pieces + 2)
    pieces[#pieces + 1] = {profile = fresh(), ids = {}}
  end
end
local kept = {}
for _, i in ipairs(ids) do
  local c = comp[i] or 1
  comp[i] = c
  if c == 1 then kept[#kept + 1] = i else table.insert(pieces[c - 1].ids, i) end
end

-- Rebuild a profile's traits, counters and first/last seen from its
-- identifiers' contributions (see resolve.lua's anchor): traits by last
-- write wins, counters summed, both within the profile bounds.
local function rebuild(p, members)
  local t, tt, tn, c, cn = {}, {}, 0, {}, 0
  local first, last = nil, nil
  for _, i in ipairs(members) do
    local h = redis.call("HGETALL", P .. "i:" .. i)
    local f = {}
    for j = 1, #h, 2 do f[h[j]] = h[j + 1] end
    for k, v in pairs(f) do
      local trait = string.match(k, "^t:(.*)$")
      local counter = string.match(k, "^c:(.*)$")
      if trait then
        local at = tonumber(f["tt:" .. trait] or "0")
        if tt[trait] == nil then
          if tn < maxTraits then
            tn = tn + 1
            t[trait], tt[trait] = v, at
          end
        elseif at > tt[trait] or (at == tt[trait] and v > t[trait]) then
          t[trait], tt[trait] = v, at
        end
      elseif counter then
        if c[counter] then
          c[counter] = c[counter] + tonumber(v)
        elseif cn < maxCounters then
          cn = cn + 1
          c[counter] = tonumber(v)
        end
      end
    end
    local fi, la = tonumber(f["first"] or ""), tonumber(f["last"] or "")
    if fi and (not first or fi < first) then first = fi end
    if la and (not last or la > last) then last = la end
  end
  redis.call("DEL", pkey(p, ":t"), pkey(p, ":tt"), pkey(p, ":c"))
  local st, stt, sc = {}, {}, {}
  for k, v in pairs(t) do
    st[#st + 1] = k; st[#st + 1] = v
    stt[#stt + 1] = k; stt[#stt + 1] = tt[k]
  end
  for k, v in pairs(c) do sc[#sc + 1] = k; sc[#sc + 1] = v end
  -- HSET in slices, far below Lua's unpack limit.
  local function hset(key, kv)
    for j = 1, #kv, 200 do redis.call("HSET", key, unpack(kv, j, math.min(j + 199, #kv))) end
  end
  hset(pkey(p, ":t"), st)
  hset(pkey(p, ":tt"), stt)
  hset(pkey(p, ":c"), sc)
  local h = pkey(p, "")
  if first then redis.call("HSET", h, "first", first) end
  if last then redis.call("HSET", h, "last", last) end
  return redis.call("HINCRBY", h, "ver", 1)
end

for _, piece in ipairs(pieces) do
  local np = piece.profile
  redis.call("HSET", pkey(np, ""), "first", ts, "last", ts, "ver", 0, "split_from", pid, "split_by", reason, "split_at", ts)
  redis.call("SADD", P .. "profiles", np)
  for _, i in ipairs(piece.ids) do
    redis.call("SET", P .. "id:" .. i, np)
    redis.call("SREM", pkey(pid, ":ids"), i)
    redis.call("SADD", pkey(np, ":ids"), i)
  end
end
-- Evidence moves with its identifiers; an edge whose ends are now apart
-- (only the cut ones can be) is gone.
for e, xy in pairs(ends) do
  local cx = comp[xy[1]]
  if cx ~= 1 and cx == comp[xy[2]] then
    redis.call("HSET", pkey(pieces[cx - 1].profile, ":e"), e, xy[3])
    redis.call("HDEL", ekey, e)
  end
end
-- Profiles merged into this one follow the identifier they held.
for _, m in ipairs(redis.call("SMEMBERS", pkey(pid, ":merged"))) do
  local held = redis.call("HGET", pkey(m, ""), "held")
  local c = held and comp[held]
  if c and c ~= 1 then
    local np = pieces[c - 1].profile
    redis.call("HSET", pkey(m, ""), "merged_into", np)
    redis.call("SMOVE", pkey(pid, ":merged"), pkey(np, ":merged"), m)
  end
end
for _, piece in ipairs(pieces) do piece.version = rebuild(piece.profile, piece.ids) end
local version = rebuild(pid, kept)
return finish({status = "split", profile = pid, version = version, split = pieces, kept = kept})
