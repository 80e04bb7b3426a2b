-- Mark a report as sent to the moderators (`q`), never re-creating a
-- report hash that expired meanwhile.
-- ARGV[1] key base   ARGV[2] report id
-- Returns 1 when marked, 0 when the report is gone.
local rk = K.report(ARGV[2])
if redis.call('EXISTS', rk) == 0 then return 0 end
redis.call('HSET', rk, 'q', '1')
return 1
