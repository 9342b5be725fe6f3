-- Claims due timers: KEYS[1] timers ZSET; ARGV now ms, lease-until ms, limit.
-- Returns pid, due ms pairs; each claimed pid's score becomes lease-until.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
for i = 1, #due, 2 do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[2], due[i])
end
return due
