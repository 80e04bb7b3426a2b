-- Fire due timers, each exactly once across all replicas.
-- ARGV[1] key base   ARGV[2] now ms   ARGV[3] max per kind   ARGV[4] rejoin cooldown s
-- ARGV[5] album retry ms (a popped album is re-armed until album_done confirms it)
-- Returns a flat list of records:
--   's', user, lang                      search timed out (user now idle)
--   'i', a, lang_a, b, lang_b            chat idle: ended for both
--   'a', user, group, 'id,id,...'        album ready to relay
local now, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {}
local due = redis.call('ZRANGEBYSCORE', K.search_timers(), '-inf', now, 'LIMIT', 0, limit)
for _, u in ipairs(due) do
  redis.call('ZREM', K.search_timers(), u)
  local uk = K.user(u)
  local st, lang = unpack(redis.call('HMGET', uk, 'st', 'lang'))
  if st == 'search' then
    redis.call('HSET', uk, 'st', 'idle')
    redis.call('ZREM', K.queue(), u)
    out[#out + 1] = 's'; out[#out + 1] = u; out[#out + 1] = lang or 'en'
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
      end_pair(a, c, tonumber(ARGV[4]))
      out[#out + 1] = 'i'; out[#out + 1] = a; out[#out + 1] = alang or 'en'
      out[#out + 1] = c; out[#out + 1] = clang or 'en'
    end
  end
end
due = redis.call('ZRANGEBYSCORE', K.album_timers(), '-inf', now, 'LIMIT', 0, limit)
for _, member in ipairs(due) do
  local u, g = string.match(member, '^(-?%d+):(.+)$')
  local ids = redis.call('LRANGE', K.album(member), 0, -1)
  if u and #ids > 0 then
    redis.call('ZADD', K.album_timers(), now + tonumber(ARGV[5]), member)
    out[#out + 1] = 'a'; out[#out + 1] = u; out[#out + 1] = g
    out[#out + 1] = table.concat(ids, ',')
  else
    redis.call('ZREM', K.album_timers(), member)
  end
end
return out
