-- Take the user's gathered album parts out, so they are delivered once.
-- ARGV[1] key base   ARGV[2] user id
-- Returns the parts in arrival order, each "chat id:message id:media group id".
local me = ARGV[2]
local parts = redis.call('LRANGE', K.album(me), 0, -1)
redis.call('DEL', K.album(me))
redis.call('ZREM', K.album_timers(), me)
return parts
