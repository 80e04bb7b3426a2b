-- Register (or renew) the live process running as a replica id, or give the
-- registration up. Two processes started with the same REPLICA_ID would both
-- act as that replica undetected; each process has a random nonce, and only
-- the one whose nonce is registered may run under the id.
-- ARGV[1] key base   ARGV[2] replica id   ARGV[3] nonce   ARGV[4] ttl ms ('0' = release)
-- Returns 1 when the id is ours (or was released), 0 when another live
-- process holds it.
local key = K.instance(ARGV[2])
local cur = redis.call('GET', key)
if ARGV[4] == '0' then
  if cur == ARGV[3] then redis.call('DEL', key) end
  return 1
end
if cur and cur ~= ARGV[3] then
  return 0
end
redis.call('SET', key, ARGV[3], 'PX', ARGV[4])
return 1
