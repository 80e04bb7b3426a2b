-- Search: pair the user with the longest-waiting compatible user, or queue them.
-- ARGV[1] key base   ARGV[2] user id   ARGV[3] language from Telegram
-- ARGV[4] search timeout ms   ARGV[5] idle timeout ms   ARGV[6] candidates scanned
-- ARGV[7] user hash ttl s   ARGV[8] the user's partition (for timer events)
-- ARGV[9] rules version to have accepted ('0' = none asked)
-- Returns {'chatting', lang} | {'searching', lang} | {'queued', lang}
--       | {'rules', lang} (the rules of ARGV[9] are not accepted: nobody queued)
--       | {'matched', lang, partner, partner_lang, chat id}
--       | {'banned', lang, ban end ms (0 = forever, -1 = suspended)}
local me, now = ARGV[2], now_ms()
local ukey = K.user(me)
local ttl = tonumber(ARGV[7])
local st, chosen, sl, rv = unpack(redis.call('HMGET', ukey, 'st', 'lo', 'sl', 'rv'))
redis.call('HSET', ukey, 'pt', ARGV[8])
redis.call('EXPIRE', ukey, ttl)
-- What Telegram says now wins over what was stored: this search stores it.
local lang = reply_lang(chosen, ARGV[3], nil)
local ban = banned_until(me)
if ban then return {'banned', lang, ban} end
if st == 'chat' then return {'chatting', lang} end
if st == 'search' then return {'searching', lang} end
-- Checked here, in the same call that queues: no search without acceptance.
if (tonumber(rv) or 0) < tonumber(ARGV[9]) then return {'rules', lang} end
local c, clang = find_partner(me, lang, sl, tonumber(ARGV[6]))
if c then
  redis.call('HSET', ukey, 'lang', lang)
  local cid = make_pair(me, c, now, tonumber(ARGV[5]), ttl)
  return {'matched', lang, c, clang or 'en', cid}
end
redis.call('HSET', ukey, 'st', 'search', 'lang', lang)
redis.call('HDEL', ukey, 'p', 'c')
redis.call('ZADD', K.queue(), now, me)
redis.call('ZADD', K.search_timers(), now + tonumber(ARGV[4]), me)
return {'queued', lang}
