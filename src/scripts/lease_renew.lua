-- Extend a lease only if we still hold it.
-- ARGV[1] key base   ARGV[2] lease: 'poller' or a partition number
-- ARGV[3] token   ARGV[4] lease ms
-- Returns 1 when renewed, 0 when the lease is lost.
local key = ARGV[2] == 'poller' and K.poller_lease() or K.owner(ARGV[2])
if redis.call('GET', key) == ARGV[3] then
  redis.call('PEXPIRE', key, ARGV[4])
  return 1
end
return 0
