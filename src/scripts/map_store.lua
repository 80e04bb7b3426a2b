-- Remember which message is whose copy, in both directions; the recipient's
-- newest copy ids (never content) for report evidence; and for an album,
-- each original's list of all the album's copies (/del deletes it whole).
-- ARGV[1] key base   ARGV[2] ttl s   ARGV[3] '1' = the pairs are one album
-- then groups of 4: chat_a msg_a chat_b msg_b
-- Returns 1.
local ttl = ARGV[2]
local EVIDENCE_KEPT = 50
local copies = {}
local i = 4
while i <= #ARGV do
  local ca, ma, cb, mb = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local ka, kb = K.message_map(ca, ma), K.message_map(cb, mb)
  redis.call('HSET', ka, ma, cb .. ':' .. mb)
  redis.call('EXPIRE', ka, ttl)
  redis.call('HSET', kb, mb, ca .. ':' .. ma)
  redis.call('EXPIRE', kb, ttl)
  -- The recipient's newest copies, ids only, for report evidence.
  local cid = redis.call('HGET', K.user(cb), 'c')
  if cid then
    local ek = K.evidence(cb)
    redis.call('LPUSH', ek, cid .. ':' .. mb)
    redis.call('LTRIM', ek, 0, EVIDENCE_KEPT - 1)
    redis.call('EXPIRE', ek, ttl)
  end
  copies[#copies + 1] = mb
  i = i + 4
end
if ARGV[3] == '1' and #copies > 1 then
  local all = table.concat(copies, ',')
  i = 4
  while i <= #ARGV do
    redis.call('SET', K.album_copies(ARGV[i], ARGV[i + 1]), all, 'EX', ttl)
    i = i + 4
  end
end
return 1
