-- Writes the segment state of one or more profiles of a workspace, all or
-- nothing, and only if none of them changed since the caller loaded them.
-- KEYS[1] = timers ZSET; then, per profile, its state HASH and pending HASH.
-- ARGV: n, then per profile: pid, expected version, timer ms (0 removes),
-- wipe (0/1), nset, nset (field, value) pairs, ndel, ndel fields,
-- npend, npend (field, value) pairs.
-- Returns 1 when written, 0 on a version conflict (nothing written).
local n = tonumber(ARGV[1])
-- Each profile's items are read straight out of ARGV (unpack of a range)
-- rather than copied into tables first: a commit is one profile with a few
-- dozen fields, and the copying was a good part of the script's time.
local profiles = {}
local a = 2
for i = 1, n do
  local p = {pid = ARGV[a], expect = tonumber(ARGV[a + 1]), timer = tonumber(ARGV[a + 2]), wipe = ARGV[a + 3] == '1'}
  a = a + 4
  p.nset = tonumber(ARGV[a]); p.set = a + 1; a = a + 1 + 2 * p.nset
  p.ndel = tonumber(ARGV[a]); p.del = a + 1; a = a + 1 + p.ndel
  p.npend = tonumber(ARGV[a]); p.pend = a + 1; a = a + 1 + 2 * p.npend
  profiles[i] = p
end

for i, p in ipairs(profiles) do
  local v = tonumber(redis.call('HGET', KEYS[2 * i], 'v') or '0')
  if v ~= p.expect then return 0 end
end

-- Lua unpacks at most about 8,000 values at once: longer ranges go in
-- chunks of CHUNK (even, so no field is parted from its value).
local CHUNK = 4000
local function each(cmd, key, from, to)
  while from <= to do
    local last = math.min(from + CHUNK - 1, to)
    redis.call(cmd, key, unpack(ARGV, from, last))
    from = last + 1
  end
end

for i, p in ipairs(profiles) do
  local state, pending = KEYS[2 * i], KEYS[2 * i + 1]
  if p.wipe then
    redis.call('DEL', state)
  elseif p.ndel > 0 then
    each('HDEL', state, p.del, p.del + p.ndel - 1)
  end
  if p.nset > 0 and 2 * p.nset <= CHUNK then
    redis.call('HSET', state, 'v', p.expect + 1, unpack(ARGV, p.set, p.set + 2 * p.nset - 1))
  else
    redis.call('HSET', state, 'v', p.expect + 1)
    each('HSET', state, p.set, p.set + 2 * p.nset - 1)
  end
  each('HSET', pending, p.pend, p.pend + 2 * p.npend - 1)
  if p.timer > 0 then
    redis.call('ZADD', KEYS[1], p.timer, p.pid)
  else
    redis.call('ZREM', KEYS[1], p.pid)
  end
end
return 1
