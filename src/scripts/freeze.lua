-- Telegram answered 429 with retry_after: no replica may send to that chat
-- before it has passed. When several chats get 429 within a second, the
-- global budget freezes too (Telegram is throttling the bot as a whole).
-- ARGV[1] key base   ARGV[2] chat   ARGV[3] retry_after ms   ARGV[4] chats within 1 s that freeze all
-- Returns 1 when the global budget was frozen too.
local now = now_ms()
local until_ms = now + tonumber(ARGV[3])
local function push(key)
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < until_ms then
    redis.call('SET', key, string.format('%.3f', until_ms), 'PX', tonumber(ARGV[3]) + 60000)
  end
end
push(K.chat_budget(ARGV[2]))
local recent = K.recent_429()
redis.call('ZADD', recent, now, ARGV[2])
redis.call('ZREMRANGEBYSCORE', recent, '-inf', now - 1000)
redis.call('PEXPIRE', recent, 2000)
if redis.call('ZCARD', recent) >= tonumber(ARGV[4]) then
  push(K.global_budget())
  return 1
end
return 0
