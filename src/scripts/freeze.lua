-- Telegram answered 429 with retry_after: no replica may send to that chat
-- before it has passed. When several chats get 429 within a second, the
-- global budget freezes too (Telegram is throttling the bot as a whole).
-- GCRA lets a send start (burst - 1) intervals before the budget's TAT, so
-- a frozen budget's TAT is set that much past the deadline: the first send
-- after a freeze starts exactly at the deadline, never earlier.
-- ARGV[1] key base   ARGV[2] chat   ARGV[3] retry_after ms   ARGV[4] chats within 1 s that freeze all
-- ARGV[5..8] chat interval ms, chat burst, global interval ms, global burst
-- Returns 1 when the global budget was frozen too.
local now = now_ms()
local retry = tonumber(ARGV[3])
local until_ms = now + retry
local function push(key, interval, burst)
  local target = until_ms + (burst - 1) * interval
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < target then
    redis.call('SET', key, string.format('%.3f', target), 'PX',
      math.ceil(target - now + burst * interval) + 60000)
  end
end
local o = outbound_args(5)
push(K.chat_budget(ARGV[2]), o[1], o[2])
-- While frozen, sends into the chat book the global budget at once, not at
-- their (late) chat slot: a frozen chat's queue never holds up other chats.
local fk = K.frozen(ARGV[2])
if tonumber(redis.call('GET', fk) or '0') < until_ms then
  redis.call('SET', fk, string.format('%.3f', until_ms), 'PX', retry)
end
local recent = K.recent_429()
redis.call('ZADD', recent, now, ARGV[2])
redis.call('ZREMRANGEBYSCORE', recent, '-inf', now - 1000)
redis.call('PEXPIRE', recent, 2000)
if redis.call('ZCARD', recent) >= tonumber(ARGV[4]) then
  push(K.global_budget(), o[3], o[4])
  return 1
end
return 0
