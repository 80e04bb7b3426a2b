-- Acquire (or keep) the poller lease, fencing with a new epoch.
-- ARGV[1] key base   ARGV[2] replica id   ARGV[3] lease ms
-- Returns the lease token "replica epoch", or false when another replica holds it.
local lease = K.poller_lease()
local cur = redis.call('GET', lease)
if cur then
  if string.sub(cur, 1, string.len(ARGV[2]) + 1) == ARGV[2] .. ' ' then
    redis.call('PEXPIRE', lease, ARGV[3])
    return cur
  end
  return false
end
local epoch = redis.call('INCR', K.poller_epoch())
local token = ARGV[2] .. ' ' .. epoch
redis.call('SET', lease, token, 'PX', ARGV[3])
return token
