-- Route: where does a message of this user go? In the same call: the inbound
-- throttle for the sender, the outbound send slots for the recipient, the
-- idle deadline of the chat, and the message-id map lookup.
-- ARGV[1] key base   ARGV[2] user id   ARGV[3] idle timeout ms
-- ARGV[4] message id in the user's chat to map to the partner's ('' = none)
-- ARGV[5] language from Telegram   ARGV[6] sends to reserve (0 = none)
-- ARGV[7] '1' = a new inbound message (throttled)   ARGV[8] inbound interval ms
-- ARGV[9] inbound burst   ARGV[10] notice window s
-- ARGV[11..14] chat interval, chat burst, global interval, global burst
-- Returns {'throttled', notify '0'|'1', lang}
--       | {'none', lang, wait ms}   (a hint to the user may be sent after wait)
--       | {'chat', partner, protect '0'|'1', mapped id or '', wait ms}
local b, me = ARGV[1], ARGV[2]
local now = now_ms()
local n = tonumber(ARGV[6])
local st, p, lo, pr, stored = unpack(redis.call('HMGET', b .. 'u:' .. me, 'st', 'p', 'lo', 'pr', 'lang'))
local lang = lo or stored or ARGV[5]
if ARGV[7] == '1' and not gcra_allow(b .. 'rl:in:' .. me, now, tonumber(ARGV[8]), tonumber(ARGV[9])) then
  local first = redis.call('SET', b .. 'rl:note:' .. me, '1', 'NX', 'EX', ARGV[10])
  return {'throttled', first and '1' or '0', lang}
end
local ci, cb, gi, gb = tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13]), tonumber(ARGV[14])
if st ~= 'chat' or not p then
  local wait = 0
  if n > 0 then wait = reserve_send(b, me, now, 1, ci, cb, gi, gb) end
  return {'none', lang, wait}
end
local lo_id, hi_id = me, p
if tonumber(p) < tonumber(me) then lo_id, hi_id = p, me end
redis.call('ZADD', b .. 't:idle', 'XX', now + tonumber(ARGV[3]), lo_id .. ':' .. hi_id)
local mapped = ''
if ARGV[4] ~= '' then
  local id = tonumber(ARGV[4])
  local v = redis.call('HGET', b .. 'mm:' .. me .. ':' .. math.floor(id / 64), ARGV[4])
  if v then
    local c, m = string.match(v, '^(-?%d+):(%d+)$')
    if c == p then mapped = m end
  end
end
local wait = 0
if n > 0 then wait = reserve_send(b, p, now, n, ci, cb, gi, gb) end
return {'chat', p, pr or '0', mapped, wait}
