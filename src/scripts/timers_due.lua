-- Fire due timers, each exactly once across all replicas. The state change
-- and the events telling users (one per user, into their partition stream,
-- handled by their worker: at least once) happen in this one script.
-- ARGV[1] key base   ARGV[2] max per kind   ARGV[3] rejoin cooldown s
-- ARGV[4] idle timeout ms   ARGV[5] user hash ttl s
-- ARGV[6] queued users retried per sweep   ARGV[7] candidates scanned for each
-- Events ('t' = kind): search_timeout {lang}, idle {lang}, album {},
-- found {lang, chat}.
-- Returns the number of events queued.
local now, limit = now_ms(), tonumber(ARGV[2])
local events = 0
local function tell(user, ev)
  push_event(user, ev)
  events = events + 1
end
local due = redis.call('ZRANGEBYSCORE', K.search_timers(), '-inf', now, 'LIMIT', 0, limit)
for _, u in ipairs(due) do
  redis.call('ZREM', K.search_timers(), u)
  local uk = K.user(u)
  local st, lang = unpack(redis.call('HMGET', uk, 'st', 'lang'))
  if st == 'search' then
    redis.call('HSET', uk, 'st', 'idle')
    redis.call('ZREM', K.queue(), u)
    tell(u, {t = 'search_timeout', lang = lang or 'en'})
  end
end
due = redis.call('ZRANGEBYSCORE', K.idle_timers(), '-inf', now, 'LIMIT', 0, limit)
for _, pair in ipairs(due) do
  redis.call('ZREM', K.idle_timers(), pair)
  local a, c = string.match(pair, '^(-?%d+):(-?%d+)$')
  if a then
    local ast, ap, alang = unpack(redis.call('HMGET', K.user(a), 'st', 'p', 'lang'))
    local cst, cp, clang = unpack(redis.call('HMGET', K.user(c), 'st', 'p', 'lang'))
    if ast == 'chat' and ap == c and cst == 'chat' and cp == a then
      end_pair(a, c, tonumber(ARGV[3]))
      tell(a, {t = 'idle', lang = alang or 'en'})
      tell(c, {t = 'idle', lang = clang or 'en'})
    end
  end
end
due = redis.call('ZRANGEBYSCORE', K.album_timers(), '-inf', now, 'LIMIT', 0, limit)
for _, u in ipairs(due) do
  redis.call('ZREM', K.album_timers(), u)
  if redis.call('EXISTS', K.album(u)) == 1 then
    tell(u, {t = 'album'})
  end
end
-- Two compatible users can both be queued (say, while their rejoin cooldown
-- ran): a search pairs only the searcher, so retry the longest waiting few,
-- at most once a second across all replicas.
if redis.call('SET', K.match_sweep(), '1', 'NX', 'PX', 1000) then
  local oldest = redis.call('ZRANGE', K.queue(), 0, tonumber(ARGV[6]) - 1)
  for _, u in ipairs(oldest) do
    local st, lang, sl = unpack(redis.call('HMGET', K.user(u), 'st', 'lang', 'sl'))
    if st == 'search' then
      local c, clang = find_partner(u, lang or 'en', sl, tonumber(ARGV[7]))
      if c then
        local cid = make_pair(u, c, now, tonumber(ARGV[4]), tonumber(ARGV[5]))
        tell(u, {t = 'found', lang = lang or 'en', chat = tostring(cid)})
        tell(c, {t = 'found', lang = clang or 'en', chat = tostring(cid)})
      end
    end
  end
end
return events
