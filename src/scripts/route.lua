-- Route: where does a message of this user go? In the same call: the inbound
-- throttle for the sender, the outbound send slots for the recipient, the
-- idle deadline of the chat, the message-id map lookup, and the sender's
-- hash kept alive (TTL, partition).
-- ARGV[1] key base   ARGV[2] user id   ARGV[3] idle timeout ms
-- ARGV[4] message id in the user's chat to map to the partner's ('' = none)
-- ARGV[5] language from Telegram ('' = not known)   ARGV[6] sends to reserve
-- ARGV[7] '1' = a new inbound message (throttled)   ARGV[8] inbound interval ms
-- ARGV[9] inbound burst   ARGV[10] notice window s
-- ARGV[11..14] chat interval, chat burst, global interval, global burst
-- ARGV[15] user hash ttl s   ARGV[16] the user's partition
-- ARGV[17] '1' = answer 'album' when the user has album parts waiting
-- ARGV[18] '1' = the send happens only if ARGV[4] maps (an edit or a
--                reaction): no slot is reserved when it does not
-- ARGV[19] '1' = a hint is sent to a user who is not chatting (its slot is
--                reserved); '0' = nothing is sent then, nothing reserved
-- ARGV[20] longest wait ms for the partner's slots (0 = no cap): beyond it
--                nothing is reserved and the answer is 'overloaded'
-- ARGV[21] overload notice window s
-- Returns {'album'}                 (deliver the album first, then route again;
--                                    nothing was changed)
--       | {'throttled', notify '0'|'1', lang}
--       | {'none', lang, wait ms}   (a hint to the user may be sent after wait)
--       | {'overloaded', notify '0'|'1', lang}
--                                   (the send would wait past the cap: drop it;
--                                    notify once per window)
--       | {'chat', partner, protect '0'|'1', mapped id or '', wait ms, chat id,
--          n-th new message of this chat (counted when ARGV[7] = '1'; else 0),
--          the partner's media setting 'md' or ''}
local me = ARGV[2]
if ARGV[17] == '1' and redis.call('EXISTS', K.album(me)) == 1 then
  return {'album'}
end
local now = now_ms()
local n = tonumber(ARGV[6])
local ukey = K.user(me)
local st, p, chosen, pr, stored, cid, pt =
  unpack(redis.call('HMGET', ukey, 'st', 'p', 'lo', 'pr', 'lang', 'c', 'pt'))
if st then
  redis.call('EXPIRE', ukey, ARGV[15])
  if pt ~= ARGV[16] then redis.call('HSET', ukey, 'pt', ARGV[16]) end
end
local lang = reply_lang(chosen, ARGV[5], stored)
if ARGV[7] == '1' and not gcra_allow(K.inbound(me), now, tonumber(ARGV[8]), tonumber(ARGV[9])) then
  local first = redis.call('SET', K.notice(me), '1', 'NX', 'EX', ARGV[10])
  return {'throttled', first and '1' or '0', lang}
end
local budgets = outbound_args(11)
if st ~= 'chat' or not p then
  local wait = 0
  if n > 0 and ARGV[19] == '1' then wait = reserve_send(me, now, 1, budgets) end
  return {'none', lang, wait}
end
redis.call('ZADD', K.idle_timers(), 'XX', now + tonumber(ARGV[3]), pair_id(me, p))
local mapped = ''
if ARGV[4] ~= '' then
  local v = redis.call('HGET', K.message_map(me, ARGV[4]), ARGV[4])
  if v then
    local c, m = string.match(v, '^(-?%d+):(%d+)$')
    if c == p then mapped = m end
  end
end
local wait = 0
if n > 0 and (ARGV[18] ~= '1' or mapped ~= '') then
  wait = reserve_send_capped(p, now, n, budgets, tonumber(ARGV[20]))
  if wait < 0 then
    local first = redis.call('SET', K.overload_notice(me), '1', 'NX', 'EX', ARGV[21])
    return {'overloaded', first and '1' or '0', lang}
  end
end
-- Messages of this chat so far (link policy: the first few are held).
local nth = 0
if ARGV[7] == '1' and cid then
  nth = redis.call('INCR', K.chat_count(cid))
  redis.call('PEXPIRE', K.chat_count(cid), 2 * tonumber(ARGV[3]))
end
local md = redis.call('HGET', K.user(p), 'md') or ''
return {'chat', p, pr or '0', mapped, wait, cid or '0', nth, md}
