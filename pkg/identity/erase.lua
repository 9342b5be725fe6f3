-- Erases a profile and everything the graph holds about it, atomically.
-- ARGV: 1 prefix, 2 profile id. Returns JSON {ids: [...], profiles: [...]}:
-- the identifiers it held and the profile ids (itself and those merged in).
local P, pid = ARGV[1], ARGV[2]
local function pkey(p, suffix) return P .. "p:" .. p .. suffix end
local ids = redis.call("SMEMBERS", pkey(pid, ":ids"))
local merged = redis.call("SMEMBERS", pkey(pid, ":merged"))
local gone = {[pid] = true}
for _, ident in ipairs(ids) do
  gone[ident] = true
  if redis.call("GET", P .. "id:" .. ident) == pid then redis.call("DEL", P .. "id:" .. ident) end
  -- Denials are kept on both sides: remove this identifier from the others'.
  for _, other in ipairs(redis.call("SMEMBERS", P .. "deny:" .. ident)) do
    redis.call("SREM", P .. "deny:" .. other, ident)
  end
  redis.call("DEL", P .. "i:" .. ident, P .. "deny:" .. ident)
end
local profiles = {pid}
for _, m in ipairs(merged) do
  gone[m] = true
  redis.call("DEL", pkey(m, ""), pkey(m, ":merged"))
  profiles[#profiles + 1] = m
end
redis.call("DEL", pkey(pid, ""), pkey(pid, ":ids"), pkey(pid, ":t"), pkey(pid, ":tt"), pkey(pid, ":c"), pkey(pid, ":e"), pkey(pid, ":merged"))
redis.call("SREM", P .. "profiles", pid)
-- The blocked-merge log names identifiers and profiles: drop what names
-- this person.
local log = P .. "blocked"
for _, entry in ipairs(redis.call("LRANGE", log, 0, -1)) do
  local ok, e = pcall(cjson.decode, entry)
  if not ok or gone[e.what] or gone[e.profile] then redis.call("LREM", log, 0, entry) end
end
return cjson.encode({ids = ids, profiles = profiles})
