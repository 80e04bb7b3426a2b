-- Leave: end the user's chat on both sides at once, or leave the queue.
-- ARGV[1] key base   ARGV[2] user id   ARGV[3] language from Telegram ('' = stored)
-- ARGV[4] rejoin cooldown s   ARGV[5] '1' = leave a chat only (a searching user stays)
-- Returns {'left_chat', lang, partner, partner_lang} | {'left_queue', lang} | {'idle', lang}
--       | {'searching', lang} (only with ARGV[5] = '1')
local b, me = ARGV[1], ARGV[2]
local ukey = b .. 'u:' .. me
local st, p, lo, stored = unpack(redis.call('HMGET', ukey, 'st', 'p', 'lo', 'lang'))
local lang = lo or (ARGV[3] ~= '' and ARGV[3]) or stored or 'en'
if st == 'chat' and p then
  local pk = b .. 'u:' .. p
  local pst, pp, plang = unpack(redis.call('HMGET', pk, 'st', 'p', 'lang'))
  if pst == 'chat' and pp == me then
    redis.call('HSET', pk, 'st', 'idle')
    redis.call('HDEL', pk, 'p')
  end
  redis.call('HSET', ukey, 'st', 'idle')
  redis.call('HDEL', ukey, 'p')
  local lo_id, hi_id = me, p
  if tonumber(p) < tonumber(me) then lo_id, hi_id = p, me end
  if tonumber(ARGV[4]) > 0 then
    redis.call('SET', b .. 'left:' .. lo_id .. ':' .. hi_id, '1', 'EX', ARGV[4])
  end
  redis.call('ZREM', b .. 't:idle', lo_id .. ':' .. hi_id)
  return {'left_chat', lang, p, plang or 'en'}
elseif st == 'search' and ARGV[5] == '1' then
  return {'searching', lang}
elseif st == 'search' then
  redis.call('ZREM', b .. 'queue', me)
  redis.call('ZREM', b .. 't:search', me)
  redis.call('HSET', ukey, 'st', 'idle')
  return {'left_queue', lang}
end
return {'idle', lang}
