-- Trim a partition stream below ARGV[3], but never past an entry that is
-- still pending for any consumer (nothing unhandled is ever deleted).
-- ARGV[1] key base   ARGV[2] partition   ARGV[3] min id to keep   ARGV[4] consumer group
-- Returns the entries left in the stream.
local stream = K.stream(ARGV[2])
local function key(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms or 0), tonumber(seq or 0)
end
local keep = ARGV[3]
local ok, summary = pcall(redis.call, 'XPENDING', stream, ARGV[4])
if ok and summary[1] > 0 and summary[2] then
  local pms, pseq = key(summary[2])
  local kms, kseq = key(keep)
  if pms < kms or (pms == kms and pseq < kseq) then keep = summary[2] end
end
redis.call('XTRIM', stream, 'MINID', keep)
return redis.call('XLEN', stream)
