-- Resolves one event to a profile and applies it, atomically.
-- Every key lives under ARGV[1] = "fp:{<workspace>}:" (one Cluster slot);
-- the key layout is in identity.go.
--
-- ARGV: 1 prefix, 2 message id, 3 event time (ms), 4 id for a new profile,
--       5 counter name, 6 marker TTL (s), 7 default limit per type,
--       8 limits ("type=n,type=n"), 9 most traits, 10 most counters,
--       11 most identifiers per profile, 12 most evidence edges per
--       profile, 13 length of the blocked-merge log, 14 what the caller
--       already dropped ("reason=n,reason=n"), 15 n identifiers, then n
--       identifiers ("type:value", most trusted first), then trait pairs
--       (key, JSON).
-- Returns a JSON object (see identity.go: decodeResult), or
-- "=<profile>|<version>" when the event changed nothing but the profile's
-- times and counters.
--
-- Cost: the hot path (a known device or user, no new link) is about eight
-- commands — GET marker, GET owner, HMGET + HSET of the anchor's
-- contributions, HINCRBY counter, HMGET + HSET of the profile hash, SET
-- marker — plus two HMGETs and up to two HSETs when the event carries
-- traits and one HSETNX per pair of identifiers. Reads are cached in Lua
-- tables so no key is read twice.
local P, msg = ARGV[1], ARGV[2]
local marker = P .. "m:" .. msg
local done = redis.call("GET", marker)
if done then return done end

local ts, counter = tonumber(ARGV[3]), ARGV[5]
local defaultLimit = tonumber(ARGV[7])
local limits = {}
for t, n in string.gmatch(ARGV[8], "([^=,]+)=(%d+)") do limits[t] = tonumber(n) end
local maxTraits, maxCounters, maxIds = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local maxEdges, maxLog = tonumber(ARGV[12]), tonumber(ARGV[13])
local n = tonumber(ARGV[15])
local base = 15

local function limit(t) return limits[t] or defaultLimit end
local function typeOf(ident) return string.match(ident, "^([^:]*):") end
local function pkey(pid, suffix) return P .. "p:" .. pid .. suffix end

-- owner[ident]: the profile holding ident, false for none; read once.
local owner = {}
local function ownerOf(ident)
  local o = owner[ident]
  if o == nil then
    o = redis.call("GET", P .. "id:" .. ident) or false
    owner[ident] = o
  end
  return o
end

local idents, seen = {}, {}
for i = 1, n do
  local ident = ARGV[base + i]
  -- An alias's previousId may be a user id or an anonymous id: use the one
  -- that is known.
  local prev = string.match(ident, "^previous_id:(.*)$")
  if prev then
    ident = "anonymous_id:" .. prev
    if ownerOf("user_id:" .. prev) then ident = "user_id:" .. prev end
  end
  if not seen[ident] then
    seen[ident] = true
    idents[#idents + 1] = ident
  end
end

local res = {created = false, added = {}, merged = {}, blocked = {}, traits = {}, dropped = {}}
local function drop(reason, k) res.dropped[reason] = (res.dropped[reason] or 0) + (k or 1) end
for r, k in string.gmatch(ARGV[14], "([^=,]+)=(%d+)") do drop(r, tonumber(k)) end
local function block(what, reason) res.blocked[#res.blocked + 1] = {what, reason} end

-- Owners of the identifiers, most trusted identifier first.
local pids, seenPid = {}, {}
for _, ident in ipairs(idents) do
  local pid = ownerOf(ident)
  if pid and not seenPid[pid] then
    seenPid[pid] = true
    pids[#pids + 1] = pid
  end
end

-- counts(pid): identifiers per type and in all (.total), read once and
-- kept up to date as identifiers are linked and merged.
local countCache = {}
local function counts(pid)
  local c = countCache[pid]
  if not c then
    c = {total = 0}
    for _, ident in ipairs(redis.call("SMEMBERS", pkey(pid, ":ids"))) do
      local t = typeOf(ident)
      c[t] = (c[t] or 0) + 1
      c.total = c.total + 1
    end
    countCache[pid] = c
  end
  return c
end

-- An operator may have cut the link between two identifiers (Unlink): they
-- must never be linked again, directly or through a merge.
local function denied(ident, pid)
  for _, other in ipairs(redis.call("SMEMBERS", P .. "deny:" .. ident)) do
    if ownerOf(other) == pid then return true end
  end
  return false
end

-- Why ident may not join pid, or nil.
local function linkRefused(ident, pid)
  local t, c = typeOf(ident), counts(pid)
  if (c[t] or 0) >= limit(t) then return "limit" end
  if c.total >= maxIds then return "max_identifiers" end
  if denied(ident, pid) then return "denied" end
  return nil
end

-- The survivor is the profile of the most trusted identifier. When that
-- identifier is new and the profile of the others cannot take it (a second
-- user id on a shared device, an email another user owns, a link an
-- operator cut), it starts a profile of its own instead of joining theirs.
local survivor = nil
local top = idents[1]
if top and ownerOf(top) then
  survivor = ownerOf(top)
elseif top and pids[1] and not linkRefused(top, pids[1]) then
  survivor = pids[1]
end
local ph = nil -- the survivor's hash: first, last, ver
if not survivor then
  survivor = ARGV[4]
  redis.call("SADD", P .. "profiles", survivor)
  countCache[survivor] = {total = 0}
  ph = {ts, ts, 0}
  res.created = true
  table.insert(pids, 1, survivor)
end

-- Merge protection: the union may not exceed any per-type limit (so two
-- people with different user ids are never glued together), nor the
-- profile bound, nor join identifiers an operator cut apart.
local function mergeRefused(a, b)
  local ca, cb = counts(a), counts(b)
  for t, nb in pairs(cb) do
    if t ~= "total" and (ca[t] or 0) + nb > limit(t) then return "limit" end
  end
  if ca.total + cb.total > maxIds then return "max_identifiers" end
  for _, ident in ipairs(redis.call("SMEMBERS", pkey(b, ":ids"))) do
    if denied(ident, a) then return "denied" end
  end
  return nil
end

local function merge(loser, into)
  local ids = redis.call("SMEMBERS", pkey(loser, ":ids"))
  local ci = counts(into)
  for _, ident in ipairs(ids) do
    redis.call("SET", P .. "id:" .. ident, into)
    owner[ident] = into
    local t = typeOf(ident)
    ci[t] = (ci[t] or 0) + 1
    ci.total = ci.total + 1
  end
  if #ids > 0 then redis.call("SADD", pkey(into, ":ids"), unpack(ids)) end

  -- Traits: the newer value of each wins; new keys only within the bound.
  local lt = redis.call("HGETALL", pkey(loser, ":tt"))
  if #lt > 0 then
    local keys = {}
    for i = 1, #lt, 2 do keys[#keys + 1] = lt[i] end
    local lv = redis.call("HMGET", pkey(loser, ":t"), unpack(keys))
    local cur = redis.call("HMGET", pkey(into, ":tt"), unpack(keys))
    local have = redis.call("HLEN", pkey(into, ":t"))
    local setT, setTT = {}, {}
    for i, k in ipairs(keys) do
      local lts, sts = tonumber(lt[2 * i]), tonumber(cur[i] or "-1")
      if not cur[i] and have >= maxTraits then
        drop("traits")
      elseif lts > sts and lv[i] then
        if not cur[i] then have = have + 1 end
        setT[#setT + 1] = k; setT[#setT + 1] = lv[i]
        setTT[#setTT + 1] = k; setTT[#setTT + 1] = lts
      end
    end
    if #setT > 0 then
      redis.call("HSET", pkey(into, ":t"), unpack(setT))
      redis.call("HSET", pkey(into, ":tt"), unpack(setTT))
    end
  end

  -- Counters add up; new names only within the bound.
  local lc = redis.call("HGETALL", pkey(loser, ":c"))
  if #lc > 0 then
    local have = redis.call("HLEN", pkey(into, ":c"))
    for i = 1, #lc, 2 do
      if redis.call("HEXISTS", pkey(into, ":c"), lc[i]) == 1 then
        redis.call("HINCRBY", pkey(into, ":c"), lc[i], lc[i + 1])
      elseif have < maxCounters then
        redis.call("HSET", pkey(into, ":c"), lc[i], lc[i + 1])
        have = have + 1
      else
        drop("counters")
      end
    end
  end

  -- Evidence moves with the identifiers, within the bound.
  local le = redis.call("HGETALL", pkey(loser, ":e"))
  if #le > 0 then
    local room = maxEdges - redis.call("HLEN", pkey(into, ":e"))
    for i = 1, #le, 2 do
      if room > 0 then
        room = room - redis.call("HSETNX", pkey(into, ":e"), le[i], le[i + 1])
      else
        drop("evidence")
      end
    end
  end

  local lh = redis.call("HMGET", pkey(loser, ""), "first", "last")
  local lfirst, llast = tonumber(lh[1] or ts), tonumber(lh[2] or ts)
  if not ph then
    local h = redis.call("HMGET", pkey(into, ""), "first", "last", "ver")
    ph = {tonumber(h[1] or ts), tonumber(h[2] or ts), tonumber(h[3] or 0)}
  end
  if lfirst < ph[1] then ph[1] = lfirst end
  if llast > ph[2] then ph[2] = llast end
  -- Lineage stays one hop deep: what the loser had absorbed now forwards
  -- to the survivor too.
  local absorbed = redis.call("SMEMBERS", pkey(loser, ":merged"))
  for _, m in ipairs(absorbed) do redis.call("HSET", pkey(m, ""), "merged_into", into) end
  absorbed[#absorbed + 1] = loser
  redis.call("SADD", pkey(into, ":merged"), unpack(absorbed))
  redis.call("SREM", P .. "profiles", loser)
  -- The loser keeps a forwarding record (lineage), and one identifier it
  -- held, so a later split can point it at the side that holds it.
  redis.call("DEL", pkey(loser, ":ids"), pkey(loser, ":t"), pkey(loser, ":tt"), pkey(loser, ":c"), pkey(loser, ":e"), pkey(loser, ":merged"))
  redis.call("HSET", pkey(loser, ""), "merged_into", into, "merged_by", msg, "merged_at", ts, "held", ids[1] or "")
  countCache[loser] = nil
end

-- Link identifiers nobody owns yet, within the limits; first, so that a new
-- profile holds its identifier before any merge is weighed against it.
local link = {}
for _, ident in ipairs(idents) do
  if not ownerOf(ident) then
    local why = linkRefused(ident, survivor)
    if why then
      block(ident, why)
    else
      redis.call("SET", P .. "id:" .. ident, survivor)
      owner[ident] = survivor
      local c, t = counts(survivor), typeOf(ident)
      c[t] = (c[t] or 0) + 1
      c.total = c.total + 1
      link[#link + 1] = ident
      res.added[#res.added + 1] = ident
    end
  end
end
if #link > 0 then redis.call("SADD", pkey(survivor, ":ids"), unpack(link)) end

for _, pid in ipairs(pids) do
  if pid ~= survivor then
    local why = mergeRefused(survivor, pid)
    if why then
      block(pid, why)
    else
      merge(pid, survivor)
      res.merged[#res.merged + 1] = pid
    end
  end
end

-- Evidence: which message linked which identifiers, and when; only the
-- first message of each pair is kept.
local ekey, prevIdent, anchorIdent = pkey(survivor, ":e"), nil, nil
for _, ident in ipairs(idents) do
  if owner[ident] == survivor then
    if prevIdent then
      local e = prevIdent .. "|" .. ident
      if redis.call("HSETNX", ekey, e, msg .. "|" .. ts) == 1 and redis.call("HLEN", ekey) > maxEdges then
        redis.call("HDEL", ekey, e)
        drop("evidence")
      end
    else
      anchorIdent = ident
    end
    prevIdent = ident
  end
end

-- Trait arguments.
local tkeys, tvals = {}, {}
for i = base + n + 1, #ARGV - 1, 2 do
  tkeys[#tkeys + 1] = ARGV[i]
  tvals[#tvals + 1] = ARGV[i + 1]
end
local nt = #tkeys

-- The anchor is the event's most trusted identifier on the survivor: what
-- the event brings (traits, counts, times) is also kept per anchor, so if a
-- link is ever cut (Unlink) each side's profile is rebuilt from its own
-- identifiers' contributions. One HMGET reads all the anchor needs.
local anchor, av, aset = nil, nil, {}
if anchorIdent then
  anchor = P .. "i:" .. anchorIdent
  local fields = {"first", "last", "c:" .. counter}
  for i = 1, nt do fields[#fields + 1] = "tt:" .. tkeys[i] end
  av = redis.call("HMGET", anchor, unpack(fields))
  local af, al = tonumber(av[1] or "-1"), tonumber(av[2] or "-1")
  if af < 0 or ts < af then aset[#aset + 1] = "first"; aset[#aset + 1] = ts end
  if ts > al then aset[#aset + 1] = "last"; aset[#aset + 1] = ts end
end

-- Traits: last write wins by event time, per trait, so a late event cannot
-- overwrite a newer value. A profile holds at most maxTraits traits: a new
-- key beyond it is dropped, on the profile and the anchor alike.
if nt > 0 then
  local cur = redis.call("HMGET", pkey(survivor, ":tt"), unpack(tkeys))
  local old = redis.call("HMGET", pkey(survivor, ":t"), unpack(tkeys))
  local have = nil
  local setT, setTT = {}, {}
  for i = 1, nt do
    local k, v = tkeys[i], tvals[i]
    local accepted = true
    if not cur[i] then
      have = have or redis.call("HLEN", pkey(survivor, ":t"))
      if have >= maxTraits then
        accepted = false
        drop("traits")
      else
        have = have + 1
      end
    end
    if accepted then
      if anchor and ts >= tonumber(av[3 + i] or "-1") then
        aset[#aset + 1] = "t:" .. k; aset[#aset + 1] = v
        aset[#aset + 1] = "tt:" .. k; aset[#aset + 1] = ts
      end
      if ts >= tonumber(cur[i] or "-1") then
        if old[i] ~= v then
          setT[#setT + 1] = k; setT[#setT + 1] = v
          res.traits[#res.traits + 1] = {k, old[i] or "", v}
        end
        if tonumber(cur[i] or "-1") ~= ts then
          setTT[#setTT + 1] = k; setTT[#setTT + 1] = ts
        end
      end
    end
  end
  if #setT > 0 then redis.call("HSET", pkey(survivor, ":t"), unpack(setT)) end
  if #setTT > 0 then redis.call("HSET", pkey(survivor, ":tt"), unpack(setTT)) end
end

-- Counters: a new name beyond maxCounters is dropped.
if counter ~= "" then
  local c = pkey(survivor, ":c")
  if redis.call("HINCRBY", c, counter, 1) == 1 and redis.call("HLEN", c) > maxCounters then
    redis.call("HDEL", c, counter)
    drop("counters")
  elseif anchor then
    aset[#aset + 1] = "c:" .. counter; aset[#aset + 1] = tonumber(av[3] or "0") + 1
  end
end
if #aset > 0 then redis.call("HSET", anchor, unpack(aset)) end

local h = pkey(survivor, "")
if not ph then
  local cur = redis.call("HMGET", h, "first", "last", "ver")
  ph = {tonumber(cur[1] or ts), tonumber(cur[2] or ts), tonumber(cur[3] or 0)}
end
if ts < ph[1] then ph[1] = ts end
if ts > ph[2] then ph[2] = ts end
ph[3] = ph[3] + 1
redis.call("HSET", h, "first", ph[1], "last", ph[2], "ver", ph[3])
res.profile, res.version = survivor, ph[3]

-- Blocked merges are kept in a capped log per workspace for operators.
if #res.blocked > 0 then
  local log = P .. "blocked"
  for _, b in ipairs(res.blocked) do
    redis.call("LPUSH", log, cjson.encode({at = ts, msg = msg, profile = survivor, what = b[1], reason = b[2]}))
  end
  redis.call("LTRIM", log, 0, maxLog - 1)
end

-- Most events only touch a known profile: their result (and marker, kept
-- for the redelivery window) is "=<profile>|<version>" rather than JSON,
-- a fifth of the bytes and no encoding.
local out
if not res.created and #res.added == 0 and #res.merged == 0 and #res.blocked == 0 and #res.traits == 0 and next(res.dropped) == nil then
  out = "=" .. survivor .. "|" .. string.format("%d", ph[3])
else
  out = cjson.encode(res)
end
redis.call("SET", marker, out, "EX", tonumber(ARGV[6]))
return out
