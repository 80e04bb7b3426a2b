-- Leave: end the user's chat on both sides at once, or leave the queue.
-- ARGV[1] key base   ARGV[2] user id   ARGV[3] language from Telegram ('' = not known)
-- ARGV[4] rejoin cooldown s   ARGV[5] '1' = leave a chat only (a searching user stays)
-- Returns {'left_chat', lang, partner, partner_lang} | {'left_queue', lang} | {'idle', lang}
--       | {'searching', lang} (only with ARGV[5] = '1')
local me = ARGV[2]
local ukey = K.user(me)
local st, p, chosen, stored = unpack(redis.call('HMGET', ukey, 'st', 'p', 'lo', 'lang'))
local lang = reply_lang(chosen, ARGV[3], stored)
if st == 'chat' and p then
  local plang = redis.call('HGET', K.user(p), 'lang')
  end_pair(me, p, tonumber(ARGV[4]))
  return {'left_chat', lang, p, plang or 'en'}
elseif st == 'search' and ARGV[5] == '1' then
  return {'searching', lang}
elseif st == 'search' then
  redis.call('ZREM', K.queue(), me)
  redis.call('ZREM', K.search_timers(), me)
  redis.call('HSET', ukey, 'st', 'idle')
  return {'left_queue', lang}
end
return {'idle', lang}
