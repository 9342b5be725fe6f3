-- Writes the segment state of one or more profiles of a workspace, all or
-- nothing, and only if none of them changed since the caller loaded them.
-- KEYS[1] = timers ZSET; then, per profile, its state HASH and pending HASH.
-- ARGV: n, then per profile: pid, expected version, timer ms (0 removes),
-- wipe (0/1), nset, nset (field, value) pairs, ndel, ndel fields,
-- npend, npend (field, value) pairs.
-- Returns 1 when written, 0 on a version conflict (nothing written).
local n = tonumber(ARGV[1])
local profiles = {}
local a = 2
for i = 1, n do
  local p = {state = KEYS[2 * i], pending = KEYS[2 * i + 1]}
  p.pid = ARGV[a]
  p.expect = tonumber(ARGV[a + 1])
  p.timer = tonumber(ARGV[a + 2])
  p.wipe = ARGV[a + 3] == '1'
  a = a + 4
  local nset = tonumber(ARGV[a]); a = a + 1
  p.set = {}
  for j = 1, nset do
    p.set[#p.set + 1] = ARGV[a]; p.set[#p.set + 1] = ARGV[a + 1]; a = a + 2
  end
  local ndel = tonumber(ARGV[a]); a = a + 1
  p.del = {}
  for j = 1, ndel do p.del[#p.del + 1] = ARGV[a]; a = a + 1 end
  local npend = tonumber(ARGV[a]); a = a + 1
  p.pend = {}
  for j = 1, npend do
    p.pend[#p.pend + 1] = ARGV[a]; p.pend[#p.pend + 1] = ARGV[a + 1]; a = a + 2
  end
  profiles[i] = p
end

for _, p in ipairs(profiles) do
  local v = tonumber(redis.call('HGET', p.state, 'v') or '0')
  if v ~= p.expect then return 0 end
end

for _, p in ipairs(profiles) do
  if p.wipe then
    redis.call('DEL', p.state)
  else
    if #p.del > 0 then redis.call('HDEL', p.state, unpack(p.del)) end
  end
  redis.call('HSET', p.state, 'v', p.expect + 1)
  if #p.set > 0 then redis.call('HSET', p.state, unpack(p.set)) end
  if #p.pend > 0 then redis.call('HSET', p.pending, unpack(p.pend)) end
  if p.timer > 0 then
    redis.call('ZADD', KEYS[1], p.timer, p.pid)
  else
    redis.call('ZREM', KEYS[1], p.pid)
  end
end
return 1
