-- Heartbeat, renew owned partition leases, and take free partitions up to
-- this replica's fair share. Runs a few times a second on every replica.
-- ARGV[1] key base   ARGV[2] replica id   ARGV[3] lease/liveness ms
-- ARGV[4] partition count   ARGV[5] '1' when shutting down (take nothing)
-- Returns {target, owned partitions...}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local me, ttl, P = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local leaving = ARGV[5] == '1'
local replicas = K.replicas()
if leaving then
  redis.call('ZREM', replicas, me)
else
  redis.call('ZADD', replicas, now, me)
end
redis.call('ZREMRANGEBYSCORE', replicas, '-inf', now - ttl)
local live = redis.call('ZRANGE', replicas, 0, -1)
table.sort(live)
local idx = nil
for i, id in ipairs(live) do
  if id == me then idx = i end
end
local target = 0
if idx then
  target = math.floor(P / #live)
  if idx <= P % #live then target = target + 1 end
end
local owned, free = {}, {}
for p = 0, P - 1 do
  local key = K.owner(p)
  local v = redis.call('GET', key)
  if v == me then
    redis.call('PEXPIRE', key, ttl)
    owned[#owned + 1] = p
  elseif not v then
    free[#free + 1] = p
  end
end
local need = target - #owned
local start = (idx or 1) * 7
for k = 1, #free do
  if need <= 0 then break end
  local p = free[((start + k) % #free) + 1]
  redis.call('SET', K.owner(p), me, 'PX', ttl)
  owned[#owned + 1] = p
  need = need - 1
end
local out = {target}
for _, p in ipairs(owned) do out[#out + 1] = p end
return out
