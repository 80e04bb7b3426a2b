-- Give a lease up only if we still hold it (never delete someone else's).
-- ARGV[1] key base   ARGV[2] lease: 'poller' or a partition number   ARGV[3] token
-- Returns 1 when released, 0 when it was not ours.
local key = ARGV[2] == 'poller' and K.poller_lease() or K.owner(ARGV[2])
if redis.call('GET', key) == ARGV[3] then
  redis.call('DEL', key)
  return 1
end
return 0
