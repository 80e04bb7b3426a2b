-- Heartbeat, renew owned partition leases, and take free partitions up to
-- this replica's fair share. Runs about once a second on every replica.
-- KEYS[1] live replicas (zset id -> heartbeat ms)
-- ARGV[1] replica id   ARGV[2] lease/liveness ms   ARGV[3] partition count
-- ARGV[4] owner key prefix   ARGV[5] '1' when shutting down (take nothing)
-- Returns {target, live replica count, owned partitions...}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local me, ttl, P, prefix = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local leaving = ARGV[5] == '1'
if leaving then
  redis.call('ZREM', KEYS[1], me)
else
  redis.call('ZADD', KEYS[1], now, me)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
local live = redis.call('ZRANGE', KEYS[1], 0, -1)
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
  local key = prefix .. p
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
  redis.call('SET', prefix .. p, me, 'PX', ttl)
  owned[#owned + 1] = p
  need = need - 1
end
local out = {target, #live}
for _, p in ipairs(owned) do out[#out + 1] = p end
return out
