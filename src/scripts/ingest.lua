-- Write one batch of updates into the partition streams, atomically.
-- ARGV[1] key base   ARGV[2] fence token ('' = webhook, no fence)
-- ARGV[3] next offset ('' = none; stored as given, with the time)   ARGV[4] dedupe marker ttl s   ARGV[5] stream length limit
-- then per update 4 values: update_id, partition, chat key, raw JSON
-- Returns {added, duplicates}; -1 when the fence token is stale (a deposed
-- poller writes nothing and must not confirm the batch to Telegram); -2 when
-- a partition stream holds ARGV[5] entries already: nothing is written and
-- the caller retries later (entries are never trimmed before they are handled).
if ARGV[2] ~= '' and redis.call('GET', K.poller_lease()) ~= ARGV[2] then
  return -1
end
local limit = tonumber(ARGV[5])
local i = 6
while i <= #ARGV do
  if redis.call('XLEN', K.stream(ARGV[i + 1])) >= limit then
    return -2
  end
  i = i + 4
end
local added, dups = 0, 0
i = 6
while i <= #ARGV do
  local uid, part, chat, raw = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  -- Markers live in small hashes of 128 ids (compact listpacks in Redis):
  -- about 10 bytes per update instead of a key each.
  local n = tonumber(uid)
  local bucket = K.seen(math.floor(n / 128))
  if redis.call('HSETNX', bucket, n % 128, '1') == 1 then
    redis.call('EXPIRE', bucket, ARGV[4])
    redis.call('XADD', K.stream(part), '*', 'u', uid, 'c', chat, 'd', raw)
    added = added + 1
  else
    dups = dups + 1
  end
  i = i + 4
end
-- The offset follows the last batch even when it is lower than the stored
-- one: Telegram restarts update ids at a random value after a week without
-- updates. Only the fenced lease holder gets here, so no stale poller can
-- move it back. Its time tells a starting poller whether it is still usable.
if ARGV[3] ~= '' then
  redis.call('SET', K.poller_offset(), ARGV[3])
  redis.call('SET', K.poller_offset_at(), string.format('%d', math.floor(now_ms())))
end
return {added, dups}
