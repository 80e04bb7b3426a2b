-- Flip a per-user boolean setting ('sl' same language, 'pr' protect).
-- KEYS[1] user hash   ARGV[1] field   ARGV[2] ttl s
-- Returns the new value (0 or 1) and the stored language.
local v = redis.call('HGET', KEYS[1], ARGV[1]) == '1' and '0' or '1'
redis.call('HSET', KEYS[1], ARGV[1], v)
redis.call('EXPIRE', KEYS[1], ARGV[2])
local lo, lang = unpack(redis.call('HMGET', KEYS[1], 'lo', 'lang'))
return {tonumber(v), lo or lang or ''}
