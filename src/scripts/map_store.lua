-- Remember which message is whose copy, in both directions, and the
-- recipient's newest copy ids (never content) for report evidence.
-- ARGV[1] key base   ARGV[2] ttl s   then groups of 4: chat_a msg_a chat_b msg_b
-- Returns 1.
local ttl = ARGV[2]
local EVIDENCE_KEPT = 50
local i = 3
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
  i = i + 4
end
return 1
