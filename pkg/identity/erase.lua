-- Erases a profile and everything the graph holds about it, atomically.
-- ARGV: 1 prefix, 2 profile id. Returns JSON {ids: [...], profiles: [...]}:
-- the identifiers it held and the profile ids (itself and those merged in).
local P, pid = ARGV[1], ARGV[2]
local function pkey(p, suffix) return P .. "p:" .. p .. suffix end
local ids = redis.call("SMEMBERS", pkey(pid, ":ids"))
local merged = redis.call("SMEMBERS", pkey(pid, ":merged"))
for _, ident in ipairs(ids) do
  if redis.call("GET", P .. "id:" .. ident) == pid then redis.call("DEL", P .. "id:" .. ident) end
  redis.call("DEL", P .. "i:" .. ident, P .. "deny:" .. ident)
end
local profiles = {pid}
for _, m in ipairs(merged) do
  redis.call("DEL", pkey(m, ""))
  profiles[#profiles + 1] = m
end
redis.call("DEL", pkey(pid, ""), pkey(pid, ":ids"), pkey(pid, ":t"), pkey(pid, ":tt"), pkey(pid, ":c"), pkey(pid, ":e"), pkey(pid, ":merged"))
redis.call("SREM", P .. "profiles", pid)
return cjson.encode({ids = ids, profiles = profiles})
