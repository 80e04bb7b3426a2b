-- Flip a per-user boolean setting ('sl' same language, 'pr' protect).
-- ARGV[1] key base   ARGV[2] user id   ARGV[3] field   ARGV[4] user hash ttl s
-- Returns the new value (0 or 1).
local ukey = K.user(ARGV[2])
local v = redis.call('HGET', ukey, ARGV[3]) == '1' and '0' or '1'
redis.call('HSET', ukey, ARGV[3], v)
redis.call('EXPIRE', ukey, ARGV[4])
return tonumber(v)
