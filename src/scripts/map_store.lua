-- Remember which message is whose copy, in both directions; for an album,
-- also each original's list of all the album's copies (/del deletes it whole).
-- ARGV[1] key base   ARGV[2] ttl s   ARGV[3] '1' = the pairs are one album
-- then groups of 4: chat_a msg_a chat_b msg_b
-- Returns 1.
local ttl = ARGV[2]
local copies = {}
local i = 4
while i <= #ARGV do
  local ca, ma, cb, mb = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local ka, kb = K.message_map(ca, ma), K.message_map(cb, mb)
  redis.call('HSET', ka, ma, cb .. ':' .. mb)
  redis.call('EXPIRE', ka, ttl)
  redis.call('HSET', kb, mb, ca .. ':' .. ma)
  redis.call('EXPIRE', kb, ttl)
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
