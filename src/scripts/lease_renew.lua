-- Extend a lease only if we still hold it.
-- KEYS[1] lease   ARGV[1] token   ARGV[2] lease ms
-- Returns 1 when renewed, 0 when the lease is lost.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
