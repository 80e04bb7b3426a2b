-- Decide a report: ban the reported user (for a time or forever), dismiss
-- it, or judge it false (the reporter's future reports weigh less). Only an
-- open report changes: a button handled twice, or pressed by a second admin,
-- answers what was decided. Every decision goes to the audit trail.
-- ARGV[1] key base   ARGV[2] report id   ARGV[3] 'ban' | 'dismiss' | 'false'
-- ARGV[4] ban length ms (0 = forever)   ARGV[5] admin id   ARGV[6] retention s
-- ARGV[7] rejoin cooldown s
-- Returns {'unknown'} | {'done', state}
--       | {'applied', user, user lang, ban end ms or '', partner or '', partner lang}
local rk = K.report(ARGV[2])
local by, u, st = unpack(redis.call('HMGET', rk, 'by', 'u', 'st'))
if not u then return {'unknown'} end
if st ~= 'open' then return {'done', st} end
local now, action, ret = now_ms(), ARGV[3], tonumber(ARGV[6])
redis.call('HSET', rk, 'st', action, 'adm', ARGV[5], 'dec', math.floor(now))
local ulang = redis.call('HGET', K.user(u), 'lang') or 'en'
local until_ms, p, plang = '', '', ''
if action == 'ban' then
  local ms = tonumber(ARGV[4])
  local want = 0
  if ms > 0 then want = math.floor(now + ms) end
  local o, ol
  until_ms, o, ol = ban_for(u, want, now, ret, tonumber(ARGV[7]))
  if o then p, plang = o, ol end
else
  -- A suspension waits for an admin: any decision but a ban lifts it.
  if banned_until(u) and banned_until(u) < 0 then redis.call('DEL', K.ban(u)) end
  if action == 'false' then
    redis.call('HINCRBY', K.mod_stats(by), 'f', 1)
    redis.call('EXPIRE', K.mod_stats(by), ret)
  end
end
audit(now, ret, {'report', ARGV[2], 'action', action, 'ms', ARGV[4], 'by', ARGV[5]})
return {'applied', u, ulang, until_ms, p, plang}
