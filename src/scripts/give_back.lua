-- A worker stops with entries it read but did not finish (it stopped taking
-- work, or was handing over): mark them idle for long, so the next owner
-- adopts them at once instead of waiting out the partition lease.
-- ARGV[1] key base   ARGV[2] partition   ARGV[3] consumer   ARGV[4] group   ARGV[5] idle ms to set
-- Returns how many entries were given back.
local stream = K.stream(ARGV[2])
local total = 0
local start = '-'
while true do
  local page = redis.call('XPENDING', stream, ARGV[4], start, '+', 500, ARGV[3])
  if #page == 0 then break end
  local ids = {}
  for _, e in ipairs(page) do ids[#ids + 1] = e[1] end
  redis.call('XCLAIM', stream, ARGV[4], ARGV[3], 0, unpack(ids), 'IDLE', ARGV[5], 'JUSTID')
  total = total + #ids
  if #page < 500 then break end
  start = '(' .. ids[#ids]
end
return total
