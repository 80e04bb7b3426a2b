-- An admin's /ban or /unban of the user behind an anonymous id (the one
-- moderators see in reports). A ban is applied like a report decision
-- (`ban_for`: never shortened, out of the queue, chat ended both sides).
-- Idempotent: the ban's end is reckoned from the command's own date, so a
-- command handled twice finds the same ban in force and changes nothing;
-- /unban of a user not banned changes nothing. Every change is audited.
-- ARGV[1] key base   ARGV[2] anonymous id   ARGV[3] 'ban' | 'unban'
-- ARGV[4] ban length ms (0 = forever)   ARGV[5] admin id   ARGV[6] retention s
-- ARGV[7] rejoin cooldown s   ARGV[8] the command's date (ms)   ARGV[9] reason
-- Returns {'unknown'} | {'unchanged', ban end or ''}
--       | {'banned', user, user lang, ban end, partner or '', partner lang}
--       | {'unbanned', user}
local anon = ARGV[2]
local u = redis.call('GET', K.anon_user(anon))
if not u then return {'unknown'} end
local now, ret = now_ms(), tonumber(ARGV[6])
local cur = banned_until(u)
if ARGV[3] == 'unban' then
  if not cur then return {'unchanged', ''} end
  redis.call('DEL', K.ban(u))
  audit(now, ret, {'anon', anon, 'action', 'unban', 'by', ARGV[5], 'why', ARGV[9]})
  return {'unbanned', u}
end
local ms = tonumber(ARGV[4])
local want = 0
if ms > 0 then want = math.floor(tonumber(ARGV[8]) + ms) end
if cur == 0 or (cur and cur > 0 and want > 0 and cur >= want) then
  return {'unchanged', cur}
end
if want > 0 and want <= now then return {'unchanged', ''} end
local until_ms, p, plang = ban_for(u, want, now, ret, tonumber(ARGV[7]))
audit(now, ret, {'anon', anon, 'action', 'ban', 'ms', ARGV[4], 'by', ARGV[5], 'why', ARGV[9]})
local ulang = redis.call('HGET', K.user(u), 'lang') or 'en'
return {'banned', u, ulang, until_ms, p or '', plang or ''}
