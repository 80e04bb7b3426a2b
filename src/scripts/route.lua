-- Route: where does a message of this user go? Also keeps the chat alive
-- (pushes the idle deadline) and resolves a message id through the map.
-- ARGV[1] key base   ARGV[2] user id   ARGV[3] now ms   ARGV[4] idle timeout ms
-- ARGV[5] message id in the user's chat to map to the partner's ('' = none)
-- ARGV[6] language from Telegram
-- Returns {'none', lang} | {'chat', partner, protect '0'|'1', mapped id or ''}
local b, me = ARGV[1], ARGV[2]
local st, p, lo, pr, stored = unpack(redis.call('HMGET', b .. 'u:' .. me, 'st', 'p', 'lo', 'pr', 'lang'))
if st ~= 'chat' or not p then
  return {'none', lo or stored or ARGV[6]}
end
local lo_id, hi_id = me, p
if tonumber(p) < tonumber(me) then lo_id, hi_id = p, me end
redis.call('ZADD', b .. 't:idle', 'XX', tonumber(ARGV[3]) + tonumber(ARGV[4]), lo_id .. ':' .. hi_id)
local mapped = ''
if ARGV[5] ~= '' then
  local id = tonumber(ARGV[5])
  local v = redis.call('HGET', b .. 'mm:' .. me .. ':' .. math.floor(id / 64), ARGV[5])
  if v then
    local c, m = string.match(v, '^(-?%d+):(%d+)$')
    if c == p then mapped = m end
  end
end
return {'chat', p, pr or '0', mapped}
