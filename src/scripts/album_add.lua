-- Gather one album part, recording the chat it was sent in. The user's
-- worker delivers the gathered parts before their next update, or when the
-- window closes (the timer sweep then queues a flush event for that worker).
-- ARGV[1] key base   ARGV[2] user id   ARGV[3] media group id   ARGV[4] message id
-- ARGV[5] window ms   ARGV[6] language from Telegram
-- ARGV[7] '1' = the part is a photo, video or animation
-- Returns {'none', lang} when the user is not chatting, {'single'} (nothing
-- gathered: relay it alone) when it is visual and the partner wants visual
-- media blurred or as text, else {'added'}.
local me = ARGV[2]
local st, chosen, stored, cid, p =
  unpack(redis.call('HMGET', K.user(me), 'st', 'lo', 'lang', 'c', 'p'))
if st ~= 'chat' then
  return {'none', reply_lang(chosen, ARGV[6], stored)}
end
if ARGV[7] == '1' and p then
  local md = redis.call('HGET', K.user(p), 'md')
  if md == 'blur' or md == 'text' then return {'single'} end
end
-- '0': a chat from before chat ids existed (not checked).
cid = cid or '0'
local list = K.album(me)
redis.call('RPUSH', list, cid .. ':' .. ARGV[4] .. ':' .. ARGV[3])
-- Only a safety net: album_take.lua deletes it, and its flush event is in a stream.
redis.call('EXPIRE', list, 86400)
redis.call('ZADD', K.album_timers(), 'NX', now_ms() + tonumber(ARGV[5]), me)
return {'added'}
