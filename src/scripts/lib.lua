-- Shared functions, prepended (after the generated key builders `B` and `K`
-- from src/keys.rs) to every script by src/store/scripts.rs.

-- Redis's clock in ms: every script that needs "now" for a budget uses it.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end

-- The id of a pair, "lo:hi", the same whichever side names it.
local function pair_id(a, b)
  if tonumber(b) < tonumber(a) then a, b = b, a end
  return a .. ':' .. b
end

-- The language replies to a user are written in: the one they chose with
-- /language, else what Telegram says now ('' = not known), else the one
-- stored with their last search, else English.
local function reply_lang(chosen, telegram, stored)
  return chosen or (telegram ~= '' and telegram) or stored or 'en'
end

-- Ends the chat of `a` and `c` on both sides: `c` only if it still points
-- back at `a`. Marks them as just left (no re-match for `cooldown` s) and
-- cancels the chat's idle timer.
-- Both sides remember the other and the chat id for the report window
-- (`last_partner`), so a report after the chat names the right person.
local REPORT_WINDOW_S = 600
local function remember_last(user, partner, cid)
  if not cid then return end
  local lk = K.last_partner(user)
  redis.call('HSET', lk, 'p', partner, 'c', cid)
  redis.call('EXPIRE', lk, REPORT_WINDOW_S)
end

local function end_pair(a, c, cooldown)
  local ck = K.user(c)
  local cst, cp, ccid = unpack(redis.call('HMGET', ck, 'st', 'p', 'c'))
  if cst == 'chat' and cp == a then
    redis.call('HSET', ck, 'st', 'idle')
    redis.call('HDEL', ck, 'p', 'c')
    remember_last(c, a, ccid)
  end
  remember_last(a, c, redis.call('HGET', K.user(a), 'c'))
  redis.call('HSET', K.user(a), 'st', 'idle')
  redis.call('HDEL', K.user(a), 'p', 'c')
  local pair = pair_id(a, c)
  if cooldown > 0 then
    redis.call('SET', K.left(pair), '1', 'EX', cooldown)
  end
  redis.call('ZREM', K.idle_timers(), pair)
end

-- Pairs `a` and `c` (both searching) as a new chat: a fresh chat id in both
-- hashes (everything sent on the chat's behalf is checked against it), out
-- of the queue and the search timers, an idle deadline. Returns the chat id.
local function make_pair(a, c, now, idle_ms, ttl)
  local cid = redis.call('INCR', K.chat_seq())
  redis.call('ZREM', K.queue(), a, c)
  redis.call('ZREM', K.search_timers(), a, c)
  redis.call('HSET', K.user(a), 'st', 'chat', 'p', c, 'c', cid)
  redis.call('HSET', K.user(c), 'st', 'chat', 'p', a, 'c', cid)
  redis.call('EXPIRE', K.user(a), ttl)
  redis.call('EXPIRE', K.user(c), ttl)
  redis.call('ZADD', K.idle_timers(), now + idle_ms, pair_id(a, c))
  return cid
end

-- The longest-waiting compatible searcher for `me` among the first `scan`
-- of the queue (not blocked either way, not just left, same language if
-- either asks), or nil. Drops stale queue entries on the way.
local function find_partner(me, lang, sl, scan)
  local q = K.queue()
  for _, c in ipairs(redis.call('ZRANGE', q, 0, scan - 1)) do
    if c ~= me then
      local cst, clang, csl = unpack(redis.call('HMGET', K.user(c), 'st', 'lang', 'sl'))
      if cst ~= 'search' then
        redis.call('ZREM', q, c)
      else
        local ok = not redis.call('ZSCORE', K.blocks(me), c)
          and not redis.call('ZSCORE', K.blocks(c), me)
          and redis.call('EXISTS', K.left(pair_id(me, c))) == 0
        if ok and (sl == '1' or csl == '1') and clang ~= lang then ok = false end
        if ok then return c, clang end
      end
    end
  end
  return nil
end

-- Appends an internal event for `user` to the stream of their partition
-- (`pt` in their hash, stored by search and route from the partition Rust
-- computed), so their worker handles it in order with their own updates.
-- Fields as ingest writes them plus `k` = 'e'; `u` is a unique negative id
-- (never a Telegram update id). `ev` is a table of strings.
-- No MAXLEN: an entry is never trimmed before it is handled.
local function push_event(user, ev)
  local pt = redis.call('HGET', K.user(user), 'pt') or '0'
  local id = redis.call('INCR', K.event_seq())
  redis.call('XADD', K.stream(pt), '*',
    'u', -id, 'c', user, 'd', cjson.encode(ev), 'k', 'e')
end

-- GCRA ("virtual scheduling"): a budget is one number, the theoretical
-- arrival time (TAT, ms) of the next message.

-- Reserves one slot no earlier than `at` (ms) on the budget at `key`, with
-- `interval` ms between messages and bursts of `burst`. Returns the absolute
-- time (ms) the slot starts: the caller waits until then, then sends.
local function gcra_reserve(key, at, interval, burst)
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < at then tat = at end
  local start = tat - (burst - 1) * interval
  if start < at then start = at end
  local new_tat = tat + interval
  redis.call('SET', key, string.format('%.3f', new_tat), 'PX',
    math.ceil(new_tat - at + burst * interval) + 1000)
  return start
end

-- Reserves `n` sends to `chat` on its own budget and the global one; returns
-- the wait in ms from `now`. `o` holds the outbound budget arguments
-- {chat interval, chat burst, global interval, global burst}. A chat frozen
-- by a 429 (`frozen` key) books its global slots now rather than at its
-- chat slot past the freeze, so its queue never pushes the global schedule
-- (and with it every other chat) past the deadline.
local function reserve_send(chat, now, n, o)
  local t = now
  local frozen = tonumber(redis.call('GET', K.frozen(chat)) or '0') > now
  for _ = 1, n do
    local c = gcra_reserve(K.chat_budget(chat), now, o[1], o[2])
    if c > t then t = c end
    local g = gcra_reserve(K.global_budget(), frozen and now or t, o[3], o[4])
    if g > t then t = g end
  end
  return math.ceil(t - now)
end

-- Like reserve_send, but a reservation whose wait would pass `max_ms`
-- (0 = no cap) is undone, so a send that will not happen books nothing:
-- returns the wait in ms, or -1 (nothing reserved).
local function reserve_send_capped(chat, now, n, o, max_ms)
  if max_ms <= 0 then return reserve_send(chat, now, n, o) end
  local saved = {}
  for i, key in ipairs({K.chat_budget(chat), K.global_budget()}) do
    saved[i] = {key, redis.call('GET', key), redis.call('PTTL', key)}
  end
  local wait = reserve_send(chat, now, n, o)
  if wait <= max_ms then return wait end
  for _, s in ipairs(saved) do
    if not s[2] then
      redis.call('DEL', s[1])
    elseif s[3] > 0 then
      redis.call('SET', s[1], s[2], 'PX', s[3])
    else
      redis.call('SET', s[1], s[2])
    end
  end
  return -1
end

-- The outbound budget arguments starting at ARGV[i], for reserve_send.
local function outbound_args(i)
  return {tonumber(ARGV[i]), tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])}
end

-- Inbound throttle: true when one more message fits the budget (and takes
-- it), false when it must be dropped. Nothing is scheduled.
local function gcra_allow(key, now, interval, burst)
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  if tat - now > (burst - 1) * interval then return false end
  local new_tat = tat + interval
  redis.call('SET', key, string.format('%.3f', new_tat), 'PX', math.ceil(new_tat - now) + 1000)
  return true
end

-- Blocks: `me` never meets `other` again (matching checks both ways). The
-- newest BLOCK_CAP per user, for BLOCK_TTL_S (trimmed on every write).
local BLOCK_CAP, BLOCK_TTL_S = 1000, 180 * 86400
local function block_user(me, other, now)
  local bk = K.blocks(me)
  redis.call('ZADD', bk, now, other)
  redis.call('ZREMRANGEBYSCORE', bk, '-inf', now - BLOCK_TTL_S * 1000)
  redis.call('ZREMRANGEBYRANK', bk, 0, -(BLOCK_CAP + 1))
  redis.call('EXPIRE', bk, BLOCK_TTL_S)
end

-- The end of a user's ban in ms (0 = forever), or nil when not banned.
local function banned_until(user)
  local v = redis.call('GET', K.ban(user))
  if v then return tonumber(v) or 0 end
  return nil
end

-- Bans `u` (value: end ms, 0 = forever, -1 = suspended; PX `px` ms when
-- > 0): out of the queue, and their chat ended on both sides. Returns the
-- partner of the ended chat and their language, or nil.
local function ban_user(u, value, px, cooldown)
  if px > 0 then
    redis.call('SET', K.ban(u), value, 'PX', px)
  else
    redis.call('SET', K.ban(u), value)
  end
  local st, p = unpack(redis.call('HMGET', K.user(u), 'st', 'p'))
  if st == 'chat' and p then
    local plang = redis.call('HGET', K.user(p), 'lang') or 'en'
    end_pair(u, p, cooldown)
    return p, plang
  end
  if st == 'search' then
    redis.call('ZREM', K.queue(), u)
    redis.call('ZREM', K.search_timers(), u)
    redis.call('HSET', K.user(u), 'st', 'idle')
  end
  return nil
end

-- Bans `u` until `until_ms` (0 = forever) for a report decision or an
-- admin's /ban, counting the ban in their moderation stats. A ban in force
-- that ends later (or never) stays: a shorter ban never shortens it.
-- Returns the ban's end and, when it ended a chat, the partner and their
-- language.
local function ban_for(u, until_ms, now, retention_s, cooldown)
  local cur = banned_until(u)
  if cur == 0 then
    until_ms = 0
  elseif cur and cur > 0 and until_ms > 0 and cur > until_ms then
    until_ms = cur
  end
  local px = 0
  if until_ms > 0 then px = math.max(1, until_ms - math.floor(now)) end
  redis.call('HINCRBY', K.mod_stats(u), 'b', 1)
  redis.call('EXPIRE', K.mod_stats(u), retention_s)
  local o, ol = ban_user(u, until_ms, px, cooldown)
  return until_ms, o, ol
end

-- Appends one moderation action to the audit trail, dropping entries older
-- than `retention_s`.
local function audit(now, retention_s, fields)
  local minid = math.floor(now - retention_s * 1000)
  local args = {'XADD', K.audit(), 'MINID', '~', minid, '*'}
  for _, f in ipairs(fields) do table.insert(args, f) end
  redis.call(unpack(args))
  redis.call('EXPIRE', K.audit(), retention_s)
end
