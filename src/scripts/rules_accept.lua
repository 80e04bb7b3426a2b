-- Accept the rules of a version (idempotent: a press handled twice stores
-- the same version; an older version never replaces a newer one).
-- ARGV[1] key base   ARGV[2] user id   ARGV[3] version   ARGV[4] user hash ttl s
-- Returns 1.
local ukey = K.user(ARGV[2])
local v = tonumber(ARGV[3])
if (tonumber(redis.call('HGET', ukey, 'rv')) or 0) < v then
  redis.call('HSET', ukey, 'rv', v)
end
redis.call('EXPIRE', ukey, ARGV[4])
return 1
