-- Block: end the user's chat on both sides (like Stop) and never pair the two
-- again, either way; after a chat, block the last partner (report window).
-- ARGV[1] key base   ARGV[2] user id   ARGV[3] language from Telegram ('' = not known)
-- ARGV[4] rejoin cooldown s
-- Returns {'left_chat', lang, partner, partner_lang} | {'blocked_last', lang}
--       | {'idle', lang}
-- Idempotent: blocking again refreshes the time, nothing else.
local me, now = ARGV[2], now_ms()
local ukey = K.user(me)
local st, p, chosen, stored = unpack(redis.call('HMGET', ukey, 'st', 'p', 'lo', 'lang'))
local lang = reply_lang(chosen, ARGV[3], stored)
if st == 'chat' and p then
  local plang = redis.call('HGET', K.user(p), 'lang')
  end_pair(me, p, tonumber(ARGV[4]))
  block_user(me, p, now)
  return {'left_chat', lang, p, plang or 'en'}
end
local last = redis.call('HGET', K.last_partner(me), 'p')
if last then
  block_user(me, last, now)
  return {'blocked_last', lang}
end
return {'idle', lang}
