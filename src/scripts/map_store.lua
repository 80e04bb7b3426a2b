-- Remember which message is whose copy, in both directions.
-- ARGV[1] key base   ARGV[2] ttl s   then groups of 4: chat_a msg_a chat_b msg_b
-- Returns 1.
local ttl = ARGV[2]
local i = 3
while i <= #ARGV do
  local ca, ma, cb, mb = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local ka, kb = K.message_map(ca, ma), K.message_map(cb, mb)
  redis.call('HSET', ka, ma, cb .. ':' .. mb)
  redis.call('EXPIRE', ka, ttl)
  redis.call('HSET', kb, mb, ca .. ':' .. ma)
  redis.call('EXPIRE', kb, ttl)
  i = i + 4
end
return 1
