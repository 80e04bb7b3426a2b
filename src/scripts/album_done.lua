-- An album was relayed (or dropped): forget it.
-- ARGV[1] key base   ARGV[2] album timer member "chat:group"
-- Returns 1.
redis.call('ZREM', K.album_timers(), ARGV[2])
redis.call('DEL', K.album(ARGV[2]))
return 1
