-- Gather one album part; the album is relayed when its window closes.
-- ARGV[1] key base   ARGV[2] user id   ARGV[3] media group id   ARGV[4] message id
-- ARGV[5] now ms   ARGV[6] window ms   ARGV[7] language from Telegram
-- Returns {'none', lang} when the user is not chatting, else {'added'}.
local me = ARGV[2]
local st, chosen, stored = unpack(redis.call('HMGET', K.user(me), 'st', 'lo', 'lang'))
if st ~= 'chat' then
  return {'none', reply_lang(chosen, ARGV[7], stored)}
end
local member = me .. ':' .. ARGV[3]
redis.call('RPUSH', K.album(member), ARGV[4])
redis.call('PEXPIRE', K.album(member), 60000)
redis.call('ZADD', K.album_timers(), 'NX', tonumber(ARGV[5]) + tonumber(ARGV[6]), member)
return {'added'}
