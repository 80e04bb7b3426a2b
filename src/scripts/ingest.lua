-- Write one batch of updates into the partition streams, atomically.
-- KEYS[1] poller lease   KEYS[2] offset   KEYS[3..] the partition streams touched
-- ARGV[1] fence token ('' = webhook, no fence)   ARGV[2] next offset ('' = none)
-- ARGV[3] seen-marker bucket prefix   ARGV[4] marker ttl s   ARGV[5] stream prefix
-- ARGV[6] stream max length, then per update 4 values:
--   update_id, partition, chat key, raw JSON
-- Returns {added, duplicates}, or -1 when the fence token is stale: a deposed
-- poller writes nothing and must not confirm the batch to Telegram.
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
local added, dups = 0, 0
local i = 7
while i <= #ARGV do
  local uid, part, chat, raw = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  -- Markers live in small hashes of 128 ids (compact listpacks in Redis):
  -- about 10 bytes per update instead of a key each.
  local n = tonumber(uid)
  local bucket = ARGV[3] .. math.floor(n / 128)
  if redis.call('HSETNX', bucket, n % 128, '1') == 1 then
    redis.call('EXPIRE', bucket, ARGV[4])
    redis.call('XADD', ARGV[5] .. part, 'MAXLEN', '~', ARGV[6], '*',
      'u', uid, 'c', chat, 'd', raw)
    added = added + 1
  else
    dups = dups + 1
  end
  i = i + 4
end
if ARGV[2] ~= '' then
  local cur = tonumber(redis.call('GET', KEYS[2]) or '0')
  if tonumber(ARGV[2]) > cur then
    redis.call('SET', KEYS[2], ARGV[2])
  end
end
return {added, dups}
