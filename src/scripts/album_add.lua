-- Gather one album part; the album is relayed when its window closes.
-- ARGV[1] key base   ARGV[2] user id   ARGV[3] media group id   ARGV[4] message id
-- ARGV[5] now ms   ARGV[6] window ms   ARGV[7] language from Telegram
-- Returns {'none', lang} when the user is not chatting, else {'added'}.
local b, me = ARGV[1], ARGV[2]
local st, lo, stored = unpack(redis.call('HMGET', b .. 'u:' .. me, 'st', 'lo', 'lang'))
if st ~= 'chat' then
  return {'none', lo or stored or ARGV[7]}
end
local key = b .. 'album:' .. me .. ':' .. ARGV[3]
redis.call('RPUSH', key, ARGV[4])
redis.call('PEXPIRE', key, 60000)
redis.call('ZADD', b .. 't:album', 'NX', tonumber(ARGV[5]) + tonumber(ARGV[6]), me .. ':' .. ARGV[3])
return {'added'}
