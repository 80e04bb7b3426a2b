-- Report: `reporter` reports the partner of their current chat, or of the
-- chat that ended within the report window (`last_partner`). The partner is
-- always taken from Redis, never from the button, so forged data can name
-- only the reporter's own chat. A report blocks the partner for the reporter
-- and ends a live chat; one report per reporter and chat (a button handled
-- twice counts once, and one retried before the moderators got it only
-- sends it to them again); rate-limited per hour. Enough distinct reporters
-- within the window (a reporter whose reports were judged false weighs
-- less) suspend the reported user until an admin decides.
-- ARGV[1] key base   ARGV[2] reporter   ARGV[3] chat id from the button ('' = now/last)
-- ARGV[4] reason ('' = only tell which chat: nothing changes)
-- ARGV[5] language from Telegram ('' = not known)   ARGV[6] rejoin cooldown s
-- ARGV[7] reports per hour   ARGV[8] retention s   ARGV[9] evidence messages
-- ARGV[10] new anonymous id for the reporter   ARGV[11] for the reported user
-- ARGV[12] weight that suspends (0 = never)   ARGV[13] suspend window ms
-- ARGV[14] message id in the reporter's chat the report replied to ('' = none):
--   it leads the evidence if it is a copy of the partner's message in that
--   chat (its message map points into the partner's chat, and it is among
--   the copies the reporter received in that chat); else it is ignored
-- Returns {'pick', lang, chat} | {'expired', lang} | {'duplicate', lang}
--       | {'limited', lang}
--       | {'reported', lang, id, partner, partner_lang, ended '0'|'1',
--          reporter anon, reported anon, prior reports, prior bans,
--          suspended '0'|'1', other partner or '', other lang, evidence ids...}
local me, want = ARGV[2], ARGV[3]
local st, p, cid, chosen, stored =
  unpack(redis.call('HMGET', K.user(me), 'st', 'p', 'c', 'lo', 'lang'))
local lang = reply_lang(chosen, ARGV[5], stored)
local partner, chat, live
if st == 'chat' and p and cid and (want == '' or want == cid) then
  partner, chat, live = p, cid, true
else
  local lp, lc = unpack(redis.call('HMGET', K.last_partner(me), 'p', 'c'))
  if lp and lc and (want == '' or want == lc) then partner, chat = lp, lc end
end
if not partner or partner == me then return {'expired', lang} end
-- The reply for report `id`, from its hash (also for a retry), then the
-- evidence ids of its chat.
local function filed(id)
  local f = redis.call('HMGET', K.report(id), 'u', 'ended', 'ra', 'ua', 'pr', 'pb', 'sus', 'o', 'ol', 'm')
  local plang = redis.call('HGET', K.user(f[1]), 'lang') or 'en'
  local out = {'reported', lang, id, f[1], plang, f[2], f[3], f[4], f[5], f[6], f[7],
    f[8] or '', f[9] or ''}
  -- The message replied to first, then the last few as they arrived.
  local first = f[10] or ''
  local ev, limit = {}, tonumber(ARGV[9])
  for _, e in ipairs(redis.call('LRANGE', K.evidence(me), 0, -1)) do
    local c, m = string.match(e, '^(%d+):(%d+)$')
    if c == chat and m ~= first and #ev < limit then table.insert(ev, 1, m) end
  end
  if first ~= '' then table.insert(out, first) end
  for _, m in ipairs(ev) do table.insert(out, m) end
  return out
end
local dk = K.reported(me .. ':' .. chat)
local prior = redis.call('GET', dk)
if prior then
  -- Filed, but the moderators may not have it yet (the handler failed
  -- after this script): a retried button files nothing new and sends it
  -- to them again, until it is marked queued (`q`).
  if ARGV[4] ~= '' and want ~= ''
    and redis.call('HGET', K.report(prior), 'q') ~= '1'
    and redis.call('EXISTS', K.report(prior)) == 1 then
    return filed(prior)
  end
  return {'duplicate', lang}
end
if ARGV[4] == '' or want == '' then return {'pick', lang, chat} end
local bk = K.report_budget(me)
local n = redis.call('INCR', bk)
if n == 1 then redis.call('EXPIRE', bk, 3600) end
if n > tonumber(ARGV[7]) then return {'limited', lang} end

-- The message replied to, found through the reporter's own message map,
-- only if it is a copy the reporter received from the partner in this chat.
local first = ''
local m = ARGV[14]
if m ~= '' and string.match(m, '^%d+$') then
  local other = redis.call('HGET', K.message_map(me, m), m)
  if other and string.match(other, '^(-?%d+):') == partner then
    for _, e in ipairs(redis.call('LRANGE', K.evidence(me), 0, -1)) do
      if e == chat .. ':' .. m then first = m break end
    end
  end
end

local now, ret = now_ms(), tonumber(ARGV[8])
local id = redis.call('INCR', K.report_seq())
local rk = K.report(id)
redis.call('HSET', rk, 'by', me, 'u', partner, 'r', ARGV[4], 'c', chat, 'st', 'open',
  'at', math.floor(now), 'm', first)
redis.call('EXPIRE', rk, ret)
redis.call('SET', dk, id, 'EX', ret)
local sk = K.mod_stats(partner)
local prior_r = redis.call('HINCRBY', sk, 'r', 1) - 1
local prior_b = redis.call('HGET', sk, 'b') or '0'
redis.call('EXPIRE', sk, ret)
block_user(me, partner, now)
local function anon(u, candidate)
  local ak = K.anon(u)
  redis.call('SET', ak, candidate, 'NX')
  redis.call('EXPIRE', ak, ret)
  local got = redis.call('GET', ak)
  redis.call('SET', K.anon_user(got), u, 'EX', ret)
  return got
end
local me_anon, p_anon = anon(me, ARGV[10]), anon(partner, ARGV[11])
if live then end_pair(me, partner, tonumber(ARGV[6])) end

-- Auto-suspend: the weights of distinct reporters within the window.
local suspended, other, olang = '0', '', ''
local threshold, window = tonumber(ARGV[12]), tonumber(ARGV[13])
local byk = K.reporters(partner)
redis.call('ZADD', byk, now, me)
redis.call('ZREMRANGEBYSCORE', byk, '-inf', now - window)
redis.call('PEXPIRE', byk, window)
if threshold > 0 and not banned_until(partner) then
  local weight = 0
  for _, r in ipairs(redis.call('ZRANGE', byk, 0, -1)) do
    local f = tonumber(redis.call('HGET', K.mod_stats(r), 'f') or '0')
    weight = weight + 1 / (1 + f)
  end
  if weight + 1e-9 >= threshold then
    suspended = '1'
    local o, ol = ban_user(partner, '-1', ret * 1000, tonumber(ARGV[6]))
    if o then other, olang = o, ol end
    audit(now, ret, {'report', id, 'action', 'suspend', 'by', 'auto'})
  end
end

redis.call('HSET', rk, 'ended', live and '1' or '0', 'ra', me_anon, 'ua', p_anon,
  'pr', prior_r, 'pb', prior_b, 'sus', suspended, 'o', other, 'ol', olang)
return filed(id)
