-- An album was relayed (or dropped): forget it.
-- KEYS[1] album timers   KEYS[2] album list   ARGV[1] timer member
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return 1
