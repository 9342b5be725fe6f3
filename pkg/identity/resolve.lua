-- Resolves one event to a profile and applies it, atomically.
-- Every key lives under ARGV[1] = "fp:{<workspace>}:" (one Cluster slot).
--
-- ARGV: 1 prefix, 2 message id, 3 event time (ms), 4 id for a new profile,
--       5 counter name, 6 marker TTL (s), 7 default limit per type,
--       8 limits ("type=n,type=n"), 9 most traits per profile, 10 most
--       counters per profile, 11 n identifiers, then n identifiers
--       ("type:value", most trusted first), then trait pairs (key, JSON).
-- Returns a JSON object (see identity.go: result).
local P = ARGV[1]
local marker = P .. "m:" .. ARGV[2]
local done = redis.call("GET", marker)
if done then return done end

local ts = tonumber(ARGV[3])
local defaultLimit = tonumber(ARGV[7])
local limits = {}
for t, n in string.gmatch(ARGV[8], "([^=,]+)=(%d+)") do limits[t] = tonumber(n) end
local function limit(t) return limits[t] or defaultLimit end
local function typeOf(ident) return string.match(ident, "^([^:]*):") end

local maxTraits, maxCounters = tonumber(ARGV[9]), tonumber(ARGV[10])
local n = tonumber(ARGV[11])
local idents = {}
for i = 1, n do
  local ident = ARGV[11 + i]
  -- An alias's previousId may be a user id or an anonymous id: use the one
  -- that is known.
  local prev = string.match(ident, "^previous_id:(.*)$")
  if prev then
    ident = "anonymous_id:" .. prev
    if redis.call("EXISTS", P .. "id:user_id:" .. prev) == 1 then ident = "user_id:" .. prev end
  end
  idents[#idents + 1] = ident
end

local function pkey(pid, suffix) return P .. "p:" .. pid .. suffix end

-- An operator may have cut the link between two identifiers (Unlink): they
-- must never be linked again, directly or through a merge.
local function denied(ident, pid)
  for _, other in ipairs(redis.call("SMEMBERS", P .. "deny:" .. ident)) do
    if redis.call("GET", P .. "id:" .. other) == pid then return true end
  end
  return false
end

-- Owners of the identifiers, most trusted identifier first.
local owner, pids, seenPid = {}, {}, {}
for _, ident in ipairs(idents) do
  local pid = redis.call("GET", P .. "id:" .. ident)
  owner[ident] = pid
  if pid and not seenPid[pid] then
    seenPid[pid] = true
    pids[#pids + 1] = pid
  end
end

local res = {created = false, added = {}, merged = {}, blocked = {}, traits = {}, dropped = 0}

local function counts(pid)
  local c = {}
  for _, ident in ipairs(redis.call("SMEMBERS", pkey(pid, ":ids"))) do
    local t = typeOf(ident)
    c[t] = (c[t] or 0) + 1
  end
  return c
end

-- The survivor is the profile of the most trusted identifier. When that
-- identifier is new and the profile of the others cannot take it (a second
-- user id on a shared device, an email another user owns), it starts a
-- profile of its own instead of joining theirs.
local survivor = nil
local top = idents[1]
if top and owner[top] then
  survivor = owner[top]
elseif top and pids[1] then
  local t = typeOf(top)
  if (counts(pids[1])[t] or 0) < limit(t) then survivor = pids[1] end
end
if not survivor then
  survivor = ARGV[4]
  redis.call("HSET", pkey(survivor, ""), "first", ts, "last", ts, "ver", 0)
  redis.call("SADD", P .. "profiles", survivor)
  res.created = true
  table.insert(pids, 1, survivor)
end

-- Merge protection: the union may not exceed any per-type limit (so two
-- people with different user ids are never glued together).
local function mergeAllowed(a, b)
  local ca, cb = counts(a), counts(b)
  for t, nb in pairs(cb) do
    if (ca[t] or 0) + nb > limit(t) then return false end
  end
  for _, ident in ipairs(redis.call("SMEMBERS", pkey(b, ":ids"))) do
    if denied(ident, a) then return false end
  end
  return true
end

local function merge(loser, into)
  for _, ident in ipairs(redis.call("SMEMBERS", pkey(loser, ":ids"))) do
    redis.call("SET", P .. "id:" .. ident, into)
    redis.call("SADD", pkey(into, ":ids"), ident)
  end
  local lt = redis.call("HGETALL", pkey(loser, ":tt"))
  for i = 1, #lt, 2 do
    local k, lts = lt[i], tonumber(lt[i + 1])
    local sts = tonumber(redis.call("HGET", pkey(into, ":tt"), k) or "-1")
    if lts > sts and (sts >= 0 or redis.call("HLEN", pkey(into, ":t")) < maxTraits) then
      redis.call("HSET", pkey(into, ":t"), k, redis.call("HGET", pkey(loser, ":t"), k))
      redis.call("HSET", pkey(into, ":tt"), k, lts)
    elseif lts > sts then
      res.dropped = res.dropped + 1
    end
  end
  local lc = redis.call("HGETALL", pkey(loser, ":c"))
  for i = 1, #lc, 2 do
    if redis.call("HEXISTS", pkey(into, ":c"), lc[i]) == 1 or redis.call("HLEN", pkey(into, ":c")) < maxCounters then
      redis.call("HINCRBY", pkey(into, ":c"), lc[i], lc[i + 1])
    else
      res.dropped = res.dropped + 1
    end
  end
  local le = redis.call("HGETALL", pkey(loser, ":e"))
  for i = 1, #le, 2 do redis.call("HSETNX", pkey(into, ":e"), le[i], le[i + 1]) end
  local lfirst = tonumber(redis.call("HGET", pkey(loser, ""), "first") or ts)
  local llast = tonumber(redis.call("HGET", pkey(loser, ""), "last") or ts)
  if lfirst < tonumber(redis.call("HGET", pkey(into, ""), "first")) then redis.call("HSET", pkey(into, ""), "first", lfirst) end
  if llast > tonumber(redis.call("HGET", pkey(into, ""), "last")) then redis.call("HSET", pkey(into, ""), "last", llast) end
  redis.call("SADD", pkey(into, ":merged"), loser)
  redis.call("SREM", P .. "profiles", loser)
  -- The loser keeps a forwarding record (lineage); its state moved.
  redis.call("DEL", pkey(loser, ":ids"), pkey(loser, ":t"), pkey(loser, ":tt"), pkey(loser, ":c"), pkey(loser, ":e"))
  redis.call("HSET", pkey(loser, ""), "merged_into", into, "merged_by", ARGV[2], "merged_at", ts)
end

-- Link identifiers nobody owns yet, within the limits; first, so that a new
-- profile holds its identifier before any merge is weighed against it.
local have = counts(survivor)
for _, ident in ipairs(idents) do
  if not owner[ident] then
    local t = typeOf(ident)
    if (have[t] or 0) < limit(t) and not denied(ident, survivor) then
      redis.call("SET", P .. "id:" .. ident, survivor)
      redis.call("SADD", pkey(survivor, ":ids"), ident)
      have[t] = (have[t] or 0) + 1
      res.added[#res.added + 1] = ident
    else
      res.blocked[#res.blocked + 1] = ident
    end
  end
end

for _, pid in ipairs(pids) do
  if pid ~= survivor then
    if mergeAllowed(survivor, pid) then
      merge(pid, survivor)
      res.merged[#res.merged + 1] = pid
    else
      res.blocked[#res.blocked + 1] = pid
    end
  end
end


-- Evidence: which message linked which identifiers, and when.
local prevIdent = nil
for _, ident in ipairs(idents) do
  if redis.call("GET", P .. "id:" .. ident) == survivor then
    if prevIdent then
      redis.call("HSETNX", pkey(survivor, ":e"), prevIdent .. "|" .. ident, ARGV[2] .. "|" .. ts)
    end
    prevIdent = ident
  end
end

-- The anchor is the event's most trusted identifier on the survivor: what
-- the event brings (traits, counts, times) is also kept per anchor, so if a
-- link is ever cut (Unlink) each side's profile is rebuilt from its own
-- identifiers' contributions.
local anchor = nil
for _, ident in ipairs(idents) do
  if redis.call("GET", P .. "id:" .. ident) == survivor then anchor = P .. "i:" .. ident; break end
end
if anchor then
  local af = tonumber(redis.call("HGET", anchor, "first") or "-1")
  if af < 0 or ts < af then redis.call("HSET", anchor, "first", ts) end
  if ts > tonumber(redis.call("HGET", anchor, "last") or "-1") then redis.call("HSET", anchor, "last", ts) end
  if ARGV[5] ~= "" then redis.call("HINCRBY", anchor, "c:" .. ARGV[5], 1) end
end

-- Traits: last write wins by event time, per trait, so a late event cannot
-- overwrite a newer value.
-- A profile holds at most maxTraits traits: a new key beyond it is dropped.
local first = 12 + n
for i = first, #ARGV, 2 do
  local k, v = ARGV[i], ARGV[i + 1]
  local cur = tonumber(redis.call("HGET", pkey(survivor, ":tt"), k) or "-1")
  if anchor and (cur >= 0 or redis.call("HLEN", pkey(survivor, ":t")) < maxTraits)
      and ts >= tonumber(redis.call("HGET", anchor, "tt:" .. k) or "-1") then
    redis.call("HSET", anchor, "t:" .. k, v, "tt:" .. k, ts)
  end
  if cur < 0 and redis.call("HLEN", pkey(survivor, ":t")) >= maxTraits then
    res.dropped = res.dropped + 1
  elseif ts >= cur then
    local old = redis.call("HGET", pkey(survivor, ":t"), k)
    if old ~= v then
      redis.call("HSET", pkey(survivor, ":t"), k, v)
      res.traits[#res.traits + 1] = {k, old or "", v}
    end
    redis.call("HSET", pkey(survivor, ":tt"), k, ts)
  end
end

if ARGV[5] ~= "" then
  local c = pkey(survivor, ":c")
  if redis.call("HEXISTS", c, ARGV[5]) == 1 or redis.call("HLEN", c) < maxCounters then
    redis.call("HINCRBY", c, ARGV[5], 1)
  else
    res.dropped = res.dropped + 1
  end
end
local h = pkey(survivor, "")
if ts < tonumber(redis.call("HGET", h, "first")) then redis.call("HSET", h, "first", ts) end
if ts > tonumber(redis.call("HGET", h, "last")) then redis.call("HSET", h, "last", ts) end
res.profile = survivor
res.version = redis.call("HINCRBY", h, "ver", 1)

local out = cjson.encode(res)
redis.call("SET", marker, out, "EX", tonumber(ARGV[6]))
return out
