-- Set a per-user setting ('sl' same language, 'pr' protect: '0' or '1';
-- 'md' media from strangers: 'show', 'blur' or 'text') to a value checked
-- by the caller; idempotent, so a button press handled twice sets the same value.
-- ARGV[1] key base   ARGV[2] user id   ARGV[3] field   ARGV[4] value
-- ARGV[5] user hash ttl s
-- Returns 1.
local ukey = K.user(ARGV[2])
redis.call('HSET', ukey, ARGV[3], ARGV[4])
redis.call('EXPIRE', ukey, ARGV[5])
return 1
