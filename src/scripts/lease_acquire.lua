-- Acquire (or keep) the poller lease, fencing with a new epoch.
-- KEYS[1] lease (string "replica epoch", PX)   KEYS[2] epoch counter
-- ARGV[1] replica id   ARGV[2] lease ms
-- Returns the lease token, or false when another replica holds it.
local cur = redis.call('GET', KEYS[1])
if cur then
  if string.sub(cur, 1, string.len(ARGV[1]) + 1) == ARGV[1] .. ' ' then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return cur
  end
  return false
end
local epoch = redis.call('INCR', KEYS[2])
local token = ARGV[1] .. ' ' .. epoch
redis.call('SET', KEYS[1], token, 'PX', ARGV[2])
return token
