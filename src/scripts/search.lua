-- Search: pair the user with the longest-waiting compatible user, or queue them.
-- ARGV[1] key base   ARGV[2] user id   ARGV[3] now ms   ARGV[4] language from Telegram
-- ARGV[5] search timeout ms   ARGV[6] idle timeout ms   ARGV[7] candidates scanned
-- ARGV[8] user hash ttl s
-- Returns {'chatting', lang} | {'searching', lang} | {'queued', lang}
--       | {'matched', lang, partner, partner_lang}
local me, now = ARGV[2], tonumber(ARGV[3])
local ukey = K.user(me)
local st, chosen, sl = unpack(redis.call('HMGET', ukey, 'st', 'lo', 'sl'))
-- What Telegram says now wins over what was stored: this search stores it.
local lang = reply_lang(chosen, ARGV[4], nil)
if st == 'chat' then return {'chatting', lang} end
if st == 'search' then return {'searching', lang} end
local q = K.queue()
local ttl = tonumber(ARGV[8])
local cands = redis.call('ZRANGE', q, 0, tonumber(ARGV[7]) - 1)
for _, c in ipairs(cands) do
  if c ~= me then
    local ck = K.user(c)
    local cst, clang, csl = unpack(redis.call('HMGET', ck, 'st', 'lang', 'sl'))
    if cst ~= 'search' then
      redis.call('ZREM', q, c)
    else
      local pair = pair_id(me, c)
      local ok = redis.call('SISMEMBER', K.blocks(me), c) == 0
        and redis.call('SISMEMBER', K.blocks(c), me) == 0
        and redis.call('EXISTS', K.left(pair)) == 0
      if ok and (sl == '1' or csl == '1') and clang ~= lang then ok = false end
      if ok then
        redis.call('ZREM', q, c)
        redis.call('ZREM', K.search_timers(), c)
        redis.call('HSET', ukey, 'st', 'chat', 'p', c, 'lang', lang)
        redis.call('HSET', ck, 'st', 'chat', 'p', me)
        redis.call('EXPIRE', ukey, ttl)
        redis.call('EXPIRE', ck, ttl)
        redis.call('ZADD', K.idle_timers(), now + tonumber(ARGV[6]), pair)
        return {'matched', lang, c, clang or 'en'}
      end
    end
  end
end
redis.call('HSET', ukey, 'st', 'search', 'lang', lang)
redis.call('HDEL', ukey, 'p')
redis.call('EXPIRE', ukey, ttl)
redis.call('ZADD', q, now, me)
redis.call('ZADD', K.search_timers(), now + tonumber(ARGV[5]), me)
return {'queued', lang}
