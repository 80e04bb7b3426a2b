-- Set a per-user boolean setting ('sl' same language, 'pr' protect) to a
-- value; idempotent, so a button press handled twice sets the same value.
-- ARGV[1] key base   ARGV[2] user id   ARGV[3] field   ARGV[4] '0' or '1'
-- ARGV[5] user hash ttl s
-- Returns 1.
local ukey = K.user(ARGV[2])
redis.call('HSET', ukey, ARGV[3], ARGV[4])
redis.call('EXPIRE', ukey, ARGV[5])
return 1
