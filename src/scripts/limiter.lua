-- Shared limiter functions, prepended to every script that uses them
-- (see src/limiter.rs). GCRA ("virtual scheduling"): a budget is one number,
-- the theoretical arrival time (TAT, ms) of the next message.

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
-- the wait in ms from `now`. ARGV layout for the caller: base, chat interval,
-- chat burst, global interval, global burst.
local function reserve_send(base, chat, now, n, ci, cb, gi, gb)
  local t = now
  for _ = 1, n do
    local c = gcra_reserve(base .. 'rl:c:' .. chat, now, ci, cb)
    if c > t then t = c end
    local g = gcra_reserve(base .. 'rl:g', t, gi, gb)
    if g > t then t = g end
  end
  return math.ceil(t - now)
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

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end
